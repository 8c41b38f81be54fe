-- The scheduler's step: pop up to ARGV[5] sessions whose next transition is due, settle
-- each from its stored times and NOW, and re-insert its next due time. ARGV[6] is the
-- prefix of session hashes (the members are digests; the keys share the {session} slot).
-- Returns {type, due, type, due, ...} for every transition announced.
local members = redis.call('ZRANGEBYSCORE', DUE, '-inf', NOW, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[5]))
local out = {}
for i = 1, #members, 2 do
  local digest, scheduled = members[i], members[i + 1]
  local s = load(ARGV[6] .. digest)
  if not s then
    redis.call('ZREM', DUE, digest)
  else
    local state, _, _, due, emitted = settle(s, digest)
    if due then redis.call('ZADD', DUE, due, digest) else redis.call('ZREM', DUE, digest) end
    for _, e in ipairs(emitted) do
      out[#out + 1] = e
      out[#out + 1] = scheduled
    end
  end
end
return out
