-- Prepended to every session script (store.py), before anything else. Every key a script
-- touches goes through call(): a key the caller did not declare in KEYS is an error, not
-- a silent write to a slot the script does not own (a cluster routes a call by its
-- declared keys; a slot move, Dragonfly and cluster proxies rely on them). No session
-- script calls redis.call itself (tests/session/test_session_buckets.py checks).
local DECLARED = {}
for i = 1, #KEYS do DECLARED[KEYS[i]] = true end

local function call(command, key, ...)
  if key == nil or not DECLARED[key] then
    return error({err = 'ERR undeclared key ' .. tostring(key) .. ' in ' .. command})
  end
  return redis.call(command, key, ...)
end

-- PUBLISH names a channel, not a key: on a cluster it reaches every node.
local function publish(channel, message)
  return redis.call('PUBLISH', channel, message)
end
