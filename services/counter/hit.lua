-- Record a batch of hits of ONE site atomically (one EVALSHA per site per commit).
--
-- KEYS[1]  the site's totals key: routes the call to the site's slot ({site} hash tag).
--          Every other key is built from the same prefix, so it lives in that slot too.
-- ARGV[1]  key prefix, e.g. "pulse:{default}:"  (names mirror services/counter/keys.py)
-- ARGV[2]  visit window (ms)            ARGV[3]  online window (ms)
-- ARGV[4]  dedupe TTL (s)               ARGV[5]  rate limits enabled ("1"/"0")
-- ARGV[6]  max hits per visitor/minute  ARGV[7]  max hits per IP/minute
-- ARGV[8]  max new visits per IP/hour   ARGV[9]  visitor state TTL (ms, cleanup only)
-- then 11 fields per hit:
--   kind ("p" pageview, "h" heartbeat, "d" download), visitor digest, member ("1"/"0"),
--   bot ("1"/"0"), now (epoch ms, from the service's clock), day, month, hour,
--   path digest, event digest ("" if none), IP digest ("" if none)
--
-- Returns one code per hit: 0 counted, 4 counted and started a visit,
-- 1 bot, 2 duplicate, 3 rate limited.
--
-- Semantics compare the timestamps passed in, never Redis' own clock or key expiry:
-- TTLs here only clean up.

local P = ARGV[1]
local visit_ms = tonumber(ARGV[2])
local online_ms = tonumber(ARGV[3])
local dedupe_s = tonumber(ARGV[4])
local limits_on = ARGV[5] == '1'
local max_visitor_minute = tonumber(ARGV[6])
local max_ip_minute = tonumber(ARGV[7])
local max_new_visits_hour = tonumber(ARGV[8])
local visitor_ttl_ms = tonumber(ARGV[9])
local HEAD = 9
local FIELDS = 11

local function bump(key_list, field)
  for _, key in ipairs(key_list) do
    redis.call('HINCRBY', key, field, 1)
  end
end

local function limited_counter(key, ttl_s)
  local count = redis.call('INCR', key)
  if count == 1 then
    redis.call('EXPIRE', key, ttl_s)
  end
  return count
end

local results = {}
local latest = 0
for i = HEAD + 1, #ARGV, FIELDS do
  local kind = ARGV[i]
  local vd = ARGV[i + 1]
  local member = ARGV[i + 2]
  local bot = ARGV[i + 3]
  local now_s = ARGV[i + 4]
  local now = tonumber(now_s)
  local day = ARGV[i + 5]
  local month = ARGV[i + 6]
  local hour = ARGV[i + 7]
  local pd = ARGV[i + 8]
  local ed = ARGV[i + 9]
  local ipd = ARGV[i + 10]
  if now > latest then latest = now end

  local day_key = P .. 'day:' .. day
  local month_key = P .. 'month:' .. month
  local totals_key = P .. 'totals'
  local code

  if bot == '1' then
    redis.call('ZADD', P .. 'online:bots', now_s, vd)
    bump({day_key, month_key, totals_key}, 'bot_hits')
    code = 1
  elseif ed ~= '' and redis.call('EXISTS', P .. 'event:' .. ed) == 1 then
    code = 2
  else
    local visitor_key = P .. 'visitor:' .. vd
    local last = tonumber(redis.call('HGET', visitor_key, 'last') or '')
    local idle = (last == nil) or (now - last >= visit_ms)
    local starts_visit = idle and kind == 'p'
    local limited = false
    if limits_on then
      local minute = string.format('%d', math.floor(now / 60000))
      if limited_counter(P .. 'rate:visitor:' .. vd .. ':' .. minute, 120) > max_visitor_minute then
        limited = true
      end
      if ipd ~= '' and limited_counter(P .. 'rate:ip:' .. ipd .. ':' .. minute, 120) > max_ip_minute then
        limited = true
      end
      if not limited and starts_visit and ipd ~= '' then
        local hour_bucket = string.format('%d', math.floor(now / 3600000))
        if limited_counter(P .. 'rate:new-visits:' .. ipd .. ':' .. hour_bucket, 7200) > max_new_visits_hour then
          limited = true
        end
      end
    end

    if limited then
      code = 3
    else
      if ed ~= '' then
        redis.call('SET', P .. 'event:' .. ed, '1', 'EX', dedupe_s)
      end
      redis.call('HSET', visitor_key, 'last', now_s)
      redis.call('PEXPIRE', visitor_key, visitor_ttl_ms)
      local paths_key = P .. 'visit-paths:' .. vd
      if idle then
        redis.call('DEL', paths_key)
      end
      local audience, other = 'guests', 'members'
      if member == '1' then audience, other = 'members', 'guests' end
      redis.call('ZADD', P .. 'online:' .. audience, now_s, vd)
      redis.call('ZREM', P .. 'online:' .. other, vd)
      redis.call('PFADD', P .. 'uv:day:' .. day, vd)
      redis.call('PFADD', P .. 'uv:month:' .. month, vd)
      code = 0
      if kind == 'p' then
        local hour_key = P .. 'hour:' .. hour
        bump({day_key, month_key, hour_key, totals_key}, 'pageviews')
        if starts_visit then
          bump({day_key, month_key, hour_key, totals_key}, 'visits')
          code = 4
        end
        if redis.call('SADD', paths_key, 'v:' .. pd) == 1 then
          redis.call('HINCRBY', P .. 'page:' .. pd, 'views', 1)
        end
      elseif kind == 'd' then
        if redis.call('SADD', paths_key, 'd:' .. pd) == 1 then
          redis.call('HINCRBY', P .. 'page:' .. pd, 'downloads', 1)
          bump({day_key, month_key, totals_key}, 'downloads')
        end
      end
      redis.call('PEXPIRE', paths_key, visitor_ttl_ms)
    end
  end
  results[#results + 1] = code
end

-- Forget visitors whose last hit left the online window (cleanup; reads use ZCOUNT).
local cutoff = string.format('%d', latest - online_ms)
for _, audience in ipairs({'members', 'guests', 'bots'}) do
  local key = P .. 'online:' .. audience
  redis.call('ZREMRANGEBYSCORE', key, '-inf', cutoff)
  redis.call('PEXPIRE', key, online_ms + 600000)
end
return results
