-- Prepended to hit.lua and stats_fold.lua (services/counter/store.py, stats_fold.py).
-- ARGV[1] is the site's key prefix, e.g. "pulse:{default}:" (names mirror
-- services/counter/keys.py). Every key is built by site_key(), from the prefix, and must
-- be one the caller declared in KEYS: a key built but not declared is a bug in the
-- caller's list ("undeclared key ...", answered 500, not an outage), so servers and
-- proxies that route or check by KEYS see every key a script touches.
local P = ARGV[1]
local CHUNK = 500
local declared = {}
for i = 1, #KEYS do declared[KEYS[i]] = true end
local function site_key(name)
  local k = P .. name
  if not declared[k] then error('undeclared key ' .. k) end
  return k
end

-- one command over many items (members, field-value pairs...), CHUNK items a call
local function call_in_chunks(command, key, items, width)
  local step = CHUNK * width
  for first = 1, #items, step do
    redis.call(command, key, unpack(items, first, math.min(first + step - 1, #items)))
  end
end
