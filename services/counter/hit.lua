-- Record a batch of hits of ONE site atomically (one EVALSHA per site per commit).
--
-- KEYS[1]  the site's totals key: routes the call to the site's slot ({site} hash tag).
-- KEYS[2..] every other key the script may touch for these hits, each once (a superset:
--          services/counter/store.py batch_keys, names from services/counter/keys.py):
--          calendar, uv, online, visitor, retry, page, rate, profile and statistics-log
--          keys, and the never-written 'absent' key (site_key() in site_keys.lua, which
--          is prepended, refuses any key not declared). While the
--          slot is half moved (classic MIGRATING/IMPORTING) the server answers TRYAGAIN
--          to a call whose keys are not all on one side, which the 'absent' key makes
--          every call: the script never runs on a half-moved slot (the caller resends).
-- ARGV[1]  key prefix, e.g. "pulse:{default}:"  (names mirror services/counter/keys.py)
-- ARGV[2]  visit window (ms)            ARGV[3]  online window (ms)
-- ARGV[4]  dedupe TTL (s)               ARGV[5]  rate limits enabled ("1"/"0")
-- ARGV[6]  max hits per visitor/minute  ARGV[7]  max hits per IP/minute
-- ARGV[8]  max new visits per IP/hour   ARGV[9]  visitor state TTL (ms, cleanup only)
-- ARGV[10] clean up the online window this call ("1"/"0"): the service asks at most once
--          a second per site (reads count by score, so cleanup timing changes no figure)
-- ARGV[11] the hits, one record per line ("\n"), each record 13 fields joined by "|":
--   kind ("p" pageview, "h" heartbeat, "d" download), visitor digest, member ("1"/"0"),
--   bot ("1"/"0"), now (epoch ms, from the service's clock), day, month, hour,
--   path digest, event digest ("" if none), IP digest ("" if none),
--   the visitor's sequence number ("" if none),
--   statistics dimensions ("" for none; see the STATISTICS part below)
--   (one argument for the whole batch: the client encodes one string, not 13 per hit)
-- ARGV[12] the growth bounds, joined by "|" (see "Bounded growth" below): new per-path
--   records per IP and hour, path retention (s), views that keep a path, event ids
--   remembered per visitor, bot hits per IP and minute, bots in the online window
--
-- Returns one code per hit: 0 counted, 4 counted and started a visit,
-- 1 bot, 2 duplicate, 3 rate limited.
--
-- Semantics compare the timestamps passed in, never Redis' own clock or key expiry:
-- TTLs here only clean up.
--
-- Hits are decided one by one, in order (visit window, duplicates, rate limits, each
-- visitor's paths), exactly as if each ran alone. Writes whose order within the batch
-- cannot matter are merged and applied once per key at the end: counter increments
-- (HINCRBY by the batch's sum), HyperLogLog adds, the online ZSETs (each visitor's
-- last hit wins, as it would one by one) and the visitor state (last hit time, TTLs).
-- The script is atomic, so no reader sees the batch half applied.

local visit_ms = tonumber(ARGV[2])
local online_ms = tonumber(ARGV[3])
local dedupe_s = tonumber(ARGV[4])
local limits_on = ARGV[5] == '1'
local max_visitor_minute = tonumber(ARGV[6])
local max_ip_minute = tonumber(ARGV[7])
local max_new_visits_hour = tonumber(ARGV[8])
local visitor_ttl_ms = tonumber(ARGV[9])
local cleanup = ARGV[10] == '1'
local RECORD = '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$'

local totals_key = site_key('totals')

-- counter increments of the batch: key -> field -> n
local incr, incr_keys = {}, {}
local function add_by(key, field, n)
  local fields = incr[key]
  if not fields then
    fields = {}
    incr[key] = fields
    incr_keys[#incr_keys + 1] = key
  end
  fields[field] = (fields[field] or 0) + n
end
local function bump(key, field)
  add_by(key, field, 1)
end

-- members to add per HyperLogLog key
local uv, uv_keys = {}, {}
local function uv_add(key, vd)
  local members = uv[key]
  if not members then
    members = {}
    uv[key] = members
    uv_keys[#uv_keys + 1] = key
  end
  members[#members + 1] = vd
end

-- online: every (audience, visitor, score) in hit order; the last one per visitor wins
local online_order = {}
local function seen_online(audience, vd, now_s)
  online_order[#online_order + 1] = {audience, vd, now_s}
end

-- visitor state: digest -> last hit (ms) or false (none), read once, written once
local last_of = {}
local written, written_order = {}, {}
-- A visitor whose hash is known to be empty in this batch (it had none: the script writes
-- 'last' with every field; or its visit ended and the hash was deleted): whether a path is
-- new to the visit is decided here, and its fields are written with 'last' in the one HSET
-- at the end instead of an HSETNX each (the AOF logs the key once, not once a path).
-- digest -> {[field] = true, [1..n] = fields in order}
local fresh_fields = {}
local function first_in_visit(vd, visitor_key, field)
  local fresh = fresh_fields[vd]
  if fresh == nil then
    return redis.call('HSETNX', visitor_key, field, '1') == 1
  end
  if fresh[field] then return false end
  fresh[field] = true
  fresh[#fresh + 1] = field
  return true
end

-- ---- STATISTICS (issue 14): dimensions, bounded top lists, hour/weekday profile ----
-- The record's last field holds the hit's dimension keys joined by tabs, in the order
-- of services/counter/dimensions.py DIMENSIONS, then the local weekday (1-7).
-- Visits by local hour of day and weekday are counted here (merged increments): hash
-- profile:month:<M>, fields hHH, wN, and by hour of day per day: hash profile:day:<D>,
-- fields hHH. The top lists are counted by stats_fold.lua, later, from the site's
-- statistics log (stats:log, a list): this script appends one entry per batch, the
-- batch's statistics records joined by "\n", each '<visit>|<day>|<month>|<dimensions>'
-- with visit 1 (the pageview started a visit), 0 (another pageview of a person) or -1
-- (a bot's pageview). The log is in Redis before the hits are acknowledged, and folded
-- in its order, so the top lists are those of the hits one by one.
local WEEKDAY = '^[^\t]*\t[^\t]*\t[^\t]*\t[^\t]*\t[^\t]*\t[^\t]*\t[^\t]*\t[^\t]*\t([^\t]*)$'
local stat_records = {}
local profile_keys = {}

-- a counted pageview of a person
local function stats_pageview(dims, day, month, hour, starts_visit)
  if dims == '' then return end
  local weekday = string.match(dims, WEEKDAY)
  if not weekday then return end
  stat_records[#stat_records + 1] = (starts_visit and '1|' or '0|') .. day .. '|' .. month .. '|' .. dims
  if starts_visit then
    local keys = profile_keys[day]
    if not keys then
      keys = {site_key('profile:month:' .. month), site_key('profile:day:' .. day)}
      profile_keys[day] = keys
    end
    local hh = 'h' .. string.sub(hour, 12, 13)
    add_by(keys[1], hh, 1)
    add_by(keys[1], 'w' .. weekday, 1)
    add_by(keys[2], hh, 1)
  end
end

-- a bot's pageview
local function stats_bot(dims, day, month)
  if dims ~= '' and string.match(dims, WEEKDAY) then
    stat_records[#stat_records + 1] = '-1|' .. day .. '|' .. month .. '|' .. dims
  end
end
-- ---- end of STATISTICS ------------------------------------------------------------

-- Rate-limit counters: one hash per site and UTC minute (rate:minute:<epoch min>; fields
-- v:<visitor>, i:<address>, b:<address> for bots) and per UTC hour (rate:hour:<epoch h>;
-- fields nv:<address> new visits, np:<address> new per-path records). So a batch declares
-- and expires two or three keys, not a few per hit; each hash expires its TTL after the
-- batch that last wrote it (it is written only during its own minute or hour).
local rate_ttl, rate_order = {}, {}
local rate_keys = {}  -- unit .. bucket number -> key (this batch)
-- Each counter is read once a batch (HGET, not logged) and counted here; each hash is
-- written once at the end (one HSET of the batch's changed fields, then its EXPIRE). The
-- same values as an HINCRBY per hit, but the append-only file logs a key once a batch,
-- not once a hit: the per-hit HINCRBYs were a quarter of the AOF bytes a hit wrote.
local rate_counts = {}  -- key -> field -> count (every field in it was counted this batch)
-- the hit's count of ``field`` in its UTC minute or hour, this hit included
local function limited_counter(unit, now, field)
  local minutes = unit == 'minute'
  local bucket = math.floor(now / (minutes and 60000 or 3600000))
  local ttl_s = minutes and 120 or 7200
  local key = rate_keys[unit .. bucket]
  if not key then
    key = site_key('rate:' .. unit .. ':' .. string.format('%d', bucket))
    rate_keys[unit .. bucket] = key
    if not rate_ttl[key] then
      rate_ttl[key] = ttl_s
      rate_order[#rate_order + 1] = key
      rate_counts[key] = {}
    end
  end
  local counts = rate_counts[key]
  local count = counts[field]
  if count == nil then
    count = tonumber(redis.call('HGET', key, field) or '0')
  end
  count = count + 1
  counts[field] = count
  return count
end

local function write_rate_counters()
  for _, key in ipairs(rate_order) do
    local values = {}
    for field, count in pairs(rate_counts[key]) do
      values[#values + 1] = field
      values[#values + 1] = string.format('%d', count)
    end
    call_in_chunks('HSET', key, values, 2)
    redis.call('EXPIRE', key, rate_ttl[key])
  end
end

-- ---- Bounded growth (issue 11) -------------------------------------------------------
-- Nothing a client chooses may grow Redis without bound:
--  * per-path records: a path without a record gets one only within the client address's
--    budget of new records per hour (past it the pageview still counts for the site, not
--    for the path); a new record expires after the retention period unless it reaches
--    the views that keep it (then it is made permanent);
--  * retried hits are recognised per visitor, not per hit: one 'retry:<visitor>' hash
--    with the highest sequence number seen and a window of the 64 before it (the widget's
--    offline queue holds at most 50), or, for clients that send only event ids, the last
--    few event ids; it lives dedupe_s after the visitor's last hit;
--  * bot hits are rate-limited per address, and the bots' online window is capped.
local bounds = {}
for value in string.gmatch(ARGV[12], '[^|]+') do bounds[#bounds + 1] = tonumber(value) end
local max_new_paths_hour, path_retention_s, path_keep_views = bounds[1], bounds[2], bounds[3]
local events_per_visitor, max_bot_ip_minute, max_online_bots = bounds[4], bounds[5], bounds[6]
local SEQ_WINDOW = 64
local EVENT_CHARS = 12

local page_state = {}  -- path digest -> 'known' | 'new' | 'refused' (this batch)
local function path_record_allowed(pd, ipd, now)
  local state = page_state[pd]
  if state == nil then
    if redis.call('EXISTS', site_key('page:' .. pd)) == 1 then
      state = 'known'
    elseif limits_on and ipd ~= '' and limited_counter('hour', now, 'np:' .. ipd) > max_new_paths_hour then
      state = 'refused'
    else
      state = 'new'
    end
    page_state[pd] = state
  end
  return state ~= 'refused'
end

local page_of_key = {}  -- per-path record key -> its path digest (this batch's)
local function bump_page(pd, field)
  local key = site_key('page:' .. pd)
  page_of_key[key] = pd
  bump(key, field)
end

local function after_increment(key, field, total, n)
  local pd = page_of_key[key]
  if pd == nil then return end  -- (a per-path record's fields are views and downloads)
  if page_state[pd] == 'new' and total < path_keep_views then
    redis.call('EXPIRE', key, path_retention_s)
  elseif total >= path_keep_views and total - n < path_keep_views then
    redis.call('PERSIST', key)
  end
end

local retry_state, retry_order = {}, {}  -- visitor digest -> {high, window, events, dirty}
local function retry_of(vd)
  local state = retry_state[vd]
  if state == nil then
    local stored = redis.call('HMGET', site_key('retry:' .. vd), 'hi', 'sw', 'ev')
    state = {high = tonumber(stored[1] or '-1'), window = stored[2] or '', events = stored[3] or ''}
    retry_state[vd] = state
    retry_order[#retry_order + 1] = vd
  end
  return state
end

-- True if this hit was seen before (a retry); otherwise remembers it when ``remember``.
local function retry_check(vd, sq, ed, remember)
  if sq == '' and ed == '' then return false end
  local state = retry_of(vd)
  if sq ~= '' then
    local seq = tonumber(sq)
    local behind = state.high - seq
    if behind >= 0 and behind < SEQ_WINDOW then
      if string.sub(state.window, behind + 1, behind + 1) == '1' then return true end
      if remember then
        state.window = string.sub(state.window, 1, behind) .. '1' .. string.sub(state.window, behind + 2)
      end
    elseif remember then  -- ahead of the window (or far behind it: the visitor restarted)
      local shift = math.min(SEQ_WINDOW, seq - state.high)
      if behind >= SEQ_WINDOW then shift = SEQ_WINDOW end
      state.window = string.sub('1' .. string.rep('0', shift - 1) .. state.window, 1, SEQ_WINDOW)
      state.high = seq
    end
  else
    local short = string.sub(ed, 1, EVENT_CHARS)
    for at = 1, #state.events, EVENT_CHARS do
      if string.sub(state.events, at, at + EVENT_CHARS - 1) == short then return true end
    end
    if remember then
      state.events = string.sub(state.events .. short, -events_per_visitor * EVENT_CHARS)
    end
  end
  if remember then state.dirty = true end
  return false
end

local function write_retry_state()
  for _, vd in ipairs(retry_order) do
    local state = retry_state[vd]
    if state.dirty then
      local retry_key = site_key('retry:' .. vd)
      redis.call('HSET', retry_key, 'hi', string.format('%d', state.high), 'sw', state.window, 'ev', state.events)
      redis.call('EXPIRE', retry_key, dedupe_s)
    end
  end
end

local function bot_limited(ipd, now)
  if not limits_on or ipd == '' then return false end
  return limited_counter('minute', now, 'b:' .. ipd) > max_bot_ip_minute
end

local function cap_online_bots()
  local bots_key = site_key('online:bots')
  local over = redis.call('ZCARD', bots_key) - max_online_bots
  if over > 0 then
    redis.call('ZREMRANGEBYRANK', bots_key, 0, over - 1)  -- the longest-gone bots leave first
  end
end
-- ---- end of bounded growth -------------------------------------------------------------

-- a local hour's calendar keys (the hour names its day and month), built once a batch
local calendars = {}
local function calendar_of(day, month, hour)
  local cal = calendars[hour]
  if not cal then
    cal = {day = site_key('day:' .. day), month = site_key('month:' .. month), hour = site_key('hour:' .. hour),
           uv_day = site_key('uv:day:' .. day), uv_month = site_key('uv:month:' .. month)}
    calendars[hour] = cal
  end
  return cal
end

local results = {}
local latest = 0
for rec in string.gmatch(ARGV[11], '[^\n]+') do
  local kind, vd, member, bot, now_s, day, month, hour, pd, ed, ipd, sq, dims = string.match(rec, RECORD)
  local now = tonumber(now_s)
  if now > latest then latest = now end

  local cal = calendar_of(day, month, hour)
  local day_key, month_key = cal.day, cal.month
  local code

  if bot == '1' and bot_limited(ipd, now) then
    code = 3
  elseif bot == '1' then
    seen_online('bots', vd, now_s)
    bump(day_key, 'bot_hits')
    bump(month_key, 'bot_hits')
    bump(totals_key, 'bot_hits')
    if kind == 'p' then stats_bot(dims, day, month) end  -- STATISTICS
    code = 1
  elseif retry_check(vd, sq, ed, false) then
    code = 2
  else
    local visitor_key = site_key('visitor:' .. vd)
    local last = last_of[vd]
    if last == nil then
      last = tonumber(redis.call('HGET', visitor_key, 'last') or '') or false
      last_of[vd] = last
      if last == false then fresh_fields[vd] = {} end
    end
    local idle = (last == false) or (now - last >= visit_ms)
    local starts_visit = idle and kind == 'p'
    local limited = false
    if limits_on then
      if limited_counter('minute', now, 'v:' .. vd) > max_visitor_minute then
        limited = true
      end
      if ipd ~= '' and limited_counter('minute', now, 'i:' .. ipd) > max_ip_minute then
        limited = true
      end
      if not limited and starts_visit and ipd ~= '' then
        if limited_counter('hour', now, 'nv:' .. ipd) > max_new_visits_hour then
          limited = true
        end
      end
    end

    if limited then
      code = 3
    else
      retry_check(vd, sq, ed, true)
      last_of[vd] = now
      if written[vd] == nil then written_order[#written_order + 1] = vd end
      written[vd] = now_s
      -- the visitor hash holds 'last' and one field per path seen in this visit
      if idle and last ~= false then
        redis.call('DEL', visitor_key)
        fresh_fields[vd] = {}
      end
      seen_online(member == '1' and 'members' or 'guests', vd, now_s)
      uv_add(cal.uv_day, vd)
      uv_add(cal.uv_month, vd)
      code = 0
      if kind == 'p' then
        local hour_key = cal.hour
        bump(day_key, 'pageviews')
        bump(month_key, 'pageviews')
        bump(hour_key, 'pageviews')
        bump(totals_key, 'pageviews')
        if starts_visit then
          bump(day_key, 'visits')
          bump(month_key, 'visits')
          bump(hour_key, 'visits')
          bump(totals_key, 'visits')
          code = 4
        end
        stats_pageview(dims, day, month, hour, starts_visit)  -- STATISTICS
        if path_record_allowed(pd, ipd, now) and first_in_visit(vd, visitor_key, 'v:' .. pd) then
          bump_page(pd, 'views')
        end
      elseif kind == 'd' then
        -- past the address's path budget the download still counts for the site (no
        -- per-visit field is written for a path without a record: that bounds the hash)
        local allowed = path_record_allowed(pd, ipd, now)
        if not allowed or first_in_visit(vd, visitor_key, 'd:' .. pd) then
          if allowed then bump_page(pd, 'downloads') end
          bump(day_key, 'downloads')
          bump(month_key, 'downloads')
          bump(totals_key, 'downloads')
        end
      end
    end
  end
  results[#results + 1] = code
end

if #stat_records > 0 then  -- STATISTICS: the batch's records, for stats_fold.lua
  redis.call('RPUSH', site_key('stats:log'), table.concat(stat_records, '\n'))
end

-- Apply the merged writes.
for _, key in ipairs(incr_keys) do
  for field, n in pairs(incr[key]) do
    after_increment(key, field, redis.call('HINCRBY', key, field, n), n)
  end
end

for _, key in ipairs(uv_keys) do
  call_in_chunks('PFADD', key, uv[key], 1)
end

-- Each visitor's last hit decides its audience and score, as one by one.
local final = {}
local final_order = {}
for _, entry in ipairs(online_order) do
  local audience, vd = entry[1], entry[2]
  local id = (audience == 'bots') and ('b\0' .. vd) or ('h\0' .. vd)
  if final[id] == nil then final_order[#final_order + 1] = id end
  final[id] = entry
end
local adds = {members = {}, guests = {}, bots = {}}
local removes = {members = {}, guests = {}}
for _, id in ipairs(final_order) do
  local entry = final[id]
  local audience, vd, now_s = entry[1], entry[2], entry[3]
  local list = adds[audience]
  list[#list + 1] = now_s
  list[#list + 1] = vd
  if audience == 'members' then
    removes.guests[#removes.guests + 1] = vd
  elseif audience == 'guests' then
    removes.members[#removes.members + 1] = vd
  end
end
for _, audience in ipairs({'members', 'guests', 'bots'}) do
  call_in_chunks('ZADD', site_key('online:' .. audience), adds[audience], 2)
end
for _, audience in ipairs({'members', 'guests'}) do
  call_in_chunks('ZREM', site_key('online:' .. audience), removes[audience], 1)
end
if #adds.bots > 0 then cap_online_bots() end
write_rate_counters()
write_retry_state()

for _, vd in ipairs(written_order) do
  local visitor_key = site_key('visitor:' .. vd)
  local fields = {'last', written[vd]}
  for _, field in ipairs(fresh_fields[vd] or {}) do
    fields[#fields + 1] = field
    fields[#fields + 1] = '1'
  end
  call_in_chunks('HSET', visitor_key, fields, 2)
  redis.call('PEXPIRE', visitor_key, visitor_ttl_ms)
end

-- Forget visitors whose last hit left the online window (cleanup; reads use ZCOUNT).
if cleanup then
  local cutoff = string.format('%d', latest - online_ms)
  for _, audience in ipairs({'members', 'guests', 'bots'}) do
    local online_key = site_key('online:' .. audience)
    redis.call('ZREMRANGEBYSCORE', online_key, '-inf', cutoff)
    redis.call('PEXPIRE', online_key, online_ms + 600000)
  end
end
return results
