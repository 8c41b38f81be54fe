-- Status reads of many sessions in one call (no write: reads never extend a session).
-- KEYS[1] a due-time index (of the first session's bucket: first, as in every session
--         script, it routes the call; not read here),
-- KEYS[2..] the session hashes to read, every key the script touches declared.
-- Returns, per session hash, its stored fields {created, last, idle, prompt, grace,
-- maxlife, state, version} (field names: see session_prelude.lua), '' where a field is missing
-- (a key that does not exist gives only '').
local replies = {}
for i = 2, #KEYS do
  local v = call('HMGET', KEYS[i], 'c', 'l', 'i', 'p', 'g', 'm', 's', 'n')
  for j = 1, 8 do
    if not v[j] then v[j] = '' end
  end
  if v[7] ~= '' and v[6] == '' then v[6] = '0' end  -- no max lifetime stored: none
  replies[#replies + 1] = v
end
return replies
