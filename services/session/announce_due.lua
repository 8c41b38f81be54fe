-- The scheduler's step for one bucket. The caller read the due members of the bucket's
-- index first (ZRANGEBYSCORE, no script) and declares their hashes: KEYS[3..] the session
-- hashes, ARGV[5] their digests, one per line, in the same order. Each is re-checked here,
-- atomically: one whose due time moved (touched meanwhile) or that another process
-- settled already is not due any more and is left alone. A member whose hash is gone is
-- dropped from the index. Returns {type, due, type, due, ...} for every transition announced.
local out = {}
local index = 2
for digest in string.gmatch(ARGV[5], '%S+') do
  index = index + 1
  local key = KEYS[index]
  local scheduled = call('ZSCORE', DUE, digest)
  if scheduled and tonumber(scheduled) <= NOW then
    local s = load(key)
    if not s then
      call('ZREM', DUE, digest)
    else
      local state, _, _, due, emitted = settle(s, digest)
      if due then call('ZADD', DUE, due, digest) else call('ZREM', DUE, digest) end
      for _, e in ipairs(emitted) do
        out[#out + 1] = e
        out[#out + 1] = scheduled
      end
    end
  end
end
return out
