-- Touches of many sessions in one call (the concurrent requests of one event-loop turn;
-- one touch is a batch of one). Each is decided on its own, exactly as if it ran alone.
-- The touches may be of several buckets (on one server; on a cluster a call is of one
-- bucket, a script's keys sharing a slot there): KEYS[1..2n] each bucket's due index and
-- event stream (the prelude's pair for the first), KEYS[ARGV[6]..] the session hashes,
-- one per touch and in the same order (every key the script touches is declared);
-- ARGV[5] the touches, one per line: "<now ms> <digest> <mode> <p>" with p the KEYS
-- position of the touch's bucket's due index, its stream at p + 1 (one argument for the
-- whole batch).
-- Mode 'activity' extends an active session only; 'keepalive' (the click) extends an
-- active or prompting session and announces 'extended'.
-- Returns one reply per touch: {outcome, state, remaining, prompt_in, idle, prompt, version,
-- emitted...} where outcome is 'ok', 'missing', 'gone' (expired or ended: never
-- revived) or 'prompt_open'.
local function touch(key, digest, mode, now_s)
  NOW = tonumber(now_s)
  local s = load(key)
  if not s then return {'missing'} end
  local state, remaining, prompt_in, due, emitted = settle(s, digest)
  local function reply(outcome)
    local out = {outcome, state, remaining, prompt_in, s.idle, s.prompt, s.version}
    for _, e in ipairs(emitted) do out[#out + 1] = e end
    return out
  end
  if state == 'expired' or state == 'ended' then return reply('gone') end
  if mode == 'activity' and state == 'prompt' then return reply('prompt_open') end
  call('HSET', key, 'l', now_s, 's', 'active')
  s.last, s.state = NOW, 'active'
  if mode == 'activity' then bump(s) end  -- a keepalive's 'extended' below is its new version
  state, remaining, prompt_in, due = judge(s, NOW)
  call('ZADD', DUE, due, digest)
  call('PEXPIRE', key, s.idle + s.grace + RETENTION)
  if mode == 'keepalive' then
    emit('extended', digest, s, state, remaining, prompt_in)
    emitted[#emitted + 1] = 'extended'
  end
  return reply('ok')
end

local first_hash = tonumber(ARGV[6])
local replies = {}
for now_s, digest, mode, at in string.gmatch(ARGV[5], '(%S+) (%S+) (%S+) (%d+)') do
  local due_at = tonumber(at)
  DUE, STREAM = KEYS[due_at], KEYS[due_at + 1]  -- the prelude's (the functions above use them)
  replies[#replies + 1] = touch(KEYS[first_hash + #replies], digest, mode, now_s)
end
return replies
