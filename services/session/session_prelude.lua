-- Shared by every session script (prepended by store.py). It mirrors state_machine.py:
-- keep the two in step (tests/session/test_session_lua_parity.py compares them).
--
-- Common arguments of every script (all keys of one session bucket, one slot; touch.lua
-- may be given several buckets on one server, and sets DUE and STREAM per touch):
--   KEYS[1] the bucket's due-time index (ZSET: member = session digest, score = next
--           transition ms)
--   KEYS[2] the bucket's event stream
--   KEYS[3..] the session hashes the script reads or writes (every key declared: every
--           key use goes through call(), see declared_keys.lua)
--   ARGV[1] now (ms)   ARGV[2] stream MAXLEN (~)   ARGV[3] pub/sub channel
--   ARGV[4] how long an expired or ended session is kept as a tombstone (ms)
local DUE, STREAM = KEYS[1], KEYS[2]
local NOW = tonumber(ARGV[1])
local MAXLEN, CHANNEL, RETENTION = ARGV[2], ARGV[3], tonumber(ARGV[4])

local function evaluate(last, created, idle, prompt, grace, maxlife, ended, now)
  if ended then return 'ended', 0, 0, false end
  local idle_end = last + idle
  local prompt_at = idle_end - prompt
  local expire_at = idle_end
  local hard = false
  if maxlife > 0 then
    hard = created + maxlife
    if hard < expire_at then expire_at = hard end
    if now >= hard then return 'expired', 0, 0, false end
  end
  if now < prompt_at then
    local due = prompt_at
    if hard and hard < due then due = hard end
    return 'active', expire_at - now, math.min(prompt_at, expire_at) - now, due
  end
  if now < idle_end + grace then
    local due = idle_end + grace
    if hard and hard < due then due = hard end
    return 'prompt', math.max(0, expire_at - now), 0, due
  end
  return 'expired', 0, 0, false
end

-- Stored field names are one letter: with 100,000 live sessions every byte counts.
--   c created (ms)  l last activity (ms)  i idle timeout (ms)  p prompt length (ms)
--   g grace (ms)  m max lifetime (ms; absent: none)  u subject (absent: none)
--   s the state last announced
--   n the session's version: it goes up with every change (create, touch, announced
--     transition); every view of the session (answers, status reads, events) carries it, so
--     a tab and a stream order views without comparing two processes' clocks
local FIELDS = {'c', 'l', 'i', 'p', 'g', 'm', 'u', 's', 'n'}

local function load(key)
  local v = call('HMGET', key, unpack(FIELDS))
  if not v[1] then return nil end
  return {
    key = key, created = tonumber(v[1]), last = tonumber(v[2]), idle = tonumber(v[3]),
    prompt = tonumber(v[4]), grace = tonumber(v[5]), maxlife = tonumber(v[6]) or 0,
    subject = v[7] or '', state = v[8], version = tonumber(v[9]) or 0,
  }
end

local function judge(s, now)
  return evaluate(s.last, s.created, s.idle, s.prompt, s.grace, s.maxlife, s.state == 'ended', now)
end

-- A change of the session: its version goes up by one (s.version is the new one).
local function bump(s)
  s.version = call('HINCRBY', s.key, 'n', 1)
  return s.version
end

-- One transition: a new version, appended to the durable stream and published to every
-- process.
local function emit(etype, digest, s, state, remaining, prompt_in)
  local version = bump(s)
  call('XADD', STREAM, 'MAXLEN', '~', MAXLEN, '*',
    'type', etype, 'session', digest, 'subject', s.subject, 'at', string.format('%d', NOW),
    'state', state, 'remaining', tostring(remaining / 1000))
  publish(CHANNEL, cjson.encode({
    type = etype, session = digest, at = NOW, version = version, state = state,
    remaining = remaining / 1000, prompt_in = prompt_in / 1000,
    idle_timeout = s.idle / 1000, prompt_seconds = s.prompt / 1000,
  }))
end

local function bury(s, digest, state)
  call('HSET', s.key, 's', state)
  call('ZREM', DUE, digest)
  call('PEXPIRE', s.key, RETENTION)
end

-- Bring the announced state up to date with NOW, announcing what changed (once: the
-- stored state records what has been announced). Returns the current evaluation and
-- the list of announced event types.
local function settle(s, digest)
  local state, remaining, prompt_in, due = judge(s, NOW)
  local emitted = {}
  if state == 'prompt' and s.state == 'active' then
    call('HSET', s.key, 's', 'prompt')
    call('ZADD', DUE, due, digest)
    s.state = 'prompt'
    emit('prompt', digest, s, state, remaining, prompt_in)
    emitted[#emitted + 1] = 'prompt'
  elseif state == 'expired' and s.state ~= 'expired' and s.state ~= 'ended' then
    bury(s, digest, 'expired')
    s.state = 'expired'
    emit('expired', digest, s, state, 0, 0)
    emitted[#emitted + 1] = 'expired'
  end
  return state, remaining, prompt_in, due, emitted
end
