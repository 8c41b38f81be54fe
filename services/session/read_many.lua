-- Status reads of many sessions in one call (no write: reads never extend a session).
-- KEYS[1] the due-time index (routes the call to the {session} slot, which every session
-- hash shares); ARGV[1] the prefix of session hashes; ARGV[2] the digests, space-separated.
-- Returns, per digest, its stored fields {created, last, idle, prompt, grace, maxlife,
-- state} (field names: see session_prelude.lua), '' where a field is missing (a key that does not exist gives only '').
local replies = {}
for digest in string.gmatch(ARGV[2], '%S+') do
  local v = redis.call('HMGET', ARGV[1] .. digest, 'c', 'l', 'i', 'p', 'g', 'm', 's')
  for j = 1, 7 do
    if not v[j] then v[j] = '' end
  end
  if v[7] ~= '' and v[6] == '' then v[6] = '0' end  -- no max lifetime stored: none
  replies[#replies + 1] = v
end
return replies
