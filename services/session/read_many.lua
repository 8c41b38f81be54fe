-- Status reads of many sessions in one call (no write: reads never extend a session).
-- KEYS[1] the due-time index (routes the call to the {session} slot, which every session
-- hash shares); ARGV[1] the prefix of session hashes; ARGV[2] the digests, space-separated.
-- Returns, per digest, its stored fields {created, last, idle, prompt, grace, maxlife,
-- state}, '' where a field is missing (a key that does not exist gives only '').
local replies = {}
for digest in string.gmatch(ARGV[2], '%S+') do
  local v = redis.call('HMGET', ARGV[1] .. digest, 'created', 'last', 'idle', 'prompt', 'grace', 'maxlife', 'state')
  for j = 1, 7 do
    if not v[j] then v[j] = '' end
  end
  replies[#replies + 1] = v
end
return replies
