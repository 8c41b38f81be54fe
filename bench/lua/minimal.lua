-- The minimal durable handler's one script call per batch (bench/baselines.py "minimal").
-- ARGV[1] the operation, ARGV[2] the batch's items joined by "\n".
--   hit       count the batch's hits: one HINCRBY, returns the number of hits
--   status    read each session's last activity: one HGET per id, returns the values
--   activity  store each session's last activity: one HSET per id, returns the count
local op, items = ARGV[1], ARGV[2]
if op == 'hit' then
  local n = 0
  for _ in string.gmatch(items, '[^\n]+') do n = n + 1 end
  redis.call('HINCRBY', KEYS[1], 'hits', n)
  return n
end
local out = {}
for id in string.gmatch(items, '[^\n]+') do
  local key = KEYS[1] .. ':' .. id
  if op == 'status' then
    out[#out + 1] = redis.call('HGET', key, 'last') or ''
  else
    redis.call('HSET', key, 'last', ARGV[3])
    out[#out + 1] = 1
  end
end
return out
