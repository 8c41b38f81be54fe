-- Activity (ARGV[6] = 'activity': extends an active session only) or keep-alive
-- (ARGV[6] = 'keepalive': extends an active or prompting session, announces 'extended').
-- KEYS[3] session hash, ARGV[5] digest.
-- Returns {outcome, state, remaining, prompt_in, idle, prompt, emitted...} where outcome is
-- 'ok', 'missing', 'gone' (expired or ended: never revived) or 'prompt_open'.
local key, digest, mode = KEYS[3], ARGV[5], ARGV[6]
local s = load(key)
if not s then return {'missing'} end
local state, remaining, prompt_in, due, emitted = settle(s, digest)
local function reply(outcome)
  local out = {outcome, state, remaining, prompt_in, s.idle, s.prompt}
  for _, e in ipairs(emitted) do out[#out + 1] = e end
  return out
end
if state == 'expired' or state == 'ended' then return reply('gone') end
if mode == 'activity' and state == 'prompt' then return reply('prompt_open') end
redis.call('HSET', key, 'last', ARGV[1], 'state', 'active')
s.last, s.state = NOW, 'active'
state, remaining, prompt_in, due = judge(s, NOW)
redis.call('ZADD', DUE, due, digest)
redis.call('PEXPIRE', key, s.idle + s.grace + RETENTION)
if mode == 'keepalive' then
  emit('extended', digest, s, state, remaining, prompt_in)
  emitted[#emitted + 1] = 'extended'
end
return reply('ok')
