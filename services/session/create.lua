-- Create a session. KEYS[3] session hash. ARGV[5] digest, ARGV[6] idle ms, ARGV[7] prompt ms,
-- ARGV[8] grace ms, ARGV[9] max lifetime ms (0: none), ARGV[10] subject.
-- Returns {'ok', state, remaining, prompt_in, idle, prompt, version} or {'exists'} (an id
-- collision: retry).
local key, digest = KEYS[3], ARGV[5]
if call('EXISTS', key) == 1 then return {'exists'} end
call('HSET', key, 'c', ARGV[1], 'l', ARGV[1], 'i', ARGV[6], 'p', ARGV[7], 'g', ARGV[8], 's', 'active')
if ARGV[9] ~= '0' then call('HSET', key, 'm', ARGV[9]) end
if ARGV[10] ~= '' then call('HSET', key, 'u', ARGV[10]) end
local s = load(key)
local state, remaining, prompt_in, due = judge(s, NOW)
call('ZADD', DUE, due, digest)
call('PEXPIRE', key, s.idle + s.grace + RETENTION)
emit('created', digest, s, state, remaining, prompt_in)
return {'ok', state, remaining, prompt_in, s.idle, s.prompt, s.version}
