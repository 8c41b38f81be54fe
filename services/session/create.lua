-- Create a session. KEYS[3] session hash. ARGV[5] digest, ARGV[6] idle ms, ARGV[7] prompt ms,
-- ARGV[8] grace ms, ARGV[9] max lifetime ms (0: none), ARGV[10] subject.
-- Returns {'ok', state, remaining, prompt_in} or {'exists'} (an id collision: retry).
local key, digest = KEYS[3], ARGV[5]
if redis.call('EXISTS', key) == 1 then return {'exists'} end
redis.call('HSET', key, 'created', ARGV[1], 'last', ARGV[1], 'idle', ARGV[6], 'prompt', ARGV[7],
  'grace', ARGV[8], 'maxlife', ARGV[9], 'subject', ARGV[10], 'state', 'active')
local s = load(key)
local state, remaining, prompt_in, due = judge(s, NOW)
redis.call('ZADD', DUE, due, digest)
redis.call('PEXPIRE', key, s.idle + s.grace + RETENTION)
emit('created', digest, s, state, remaining, prompt_in)
return {'ok', state, remaining, prompt_in, s.idle, s.prompt}
