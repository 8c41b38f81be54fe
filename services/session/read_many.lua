-- Status reads of many sessions in one call (no write: reads never extend a session).
-- KEYS[1..] the session hashes. Returns, per key, its stored fields
-- {created, last, idle, prompt, grace, maxlife, state}, '' where a field is missing
-- (a key that does not exist gives only '').
local replies = {}
for i = 1, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 'created', 'last', 'idle', 'prompt', 'grace', 'maxlife', 'state')
  for j = 1, 7 do
    if not v[j] then v[j] = '' end
  end
  replies[i] = v
end
return replies
