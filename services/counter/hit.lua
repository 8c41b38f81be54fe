-- Record a batch of hits of ONE site atomically (one EVALSHA per site per commit).
--
-- KEYS[1]  the site's totals key: routes the call to the site's slot ({site} hash tag).
-- KEYS[2..] every other key the script may touch for these hits, each once (a superset:
--          services/counter/store.py batch_keys, names from services/counter/keys.py):
--          calendar, uv, online, visitor, retry, page, rate, top and profile keys, and
--          the never-written 'absent' key. The script builds each key from ARGV[1]
--          through site_key(), which raises "undeclared key ..." for a key not in KEYS,
--          so servers and proxies that route or check by KEYS see every key. While the
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
--   statistics dimensions ("" for none; see the STATISTICS block below)
--   (one argument for the whole batch: the client encodes one string, not 13 per hit)
-- ARGV[12] the growth bounds, joined by "|" (see "Bounded growth" below): new per-path
--   records per IP and hour, path retention (s), views that keep a path, event ids
--   remembered per visitor, bot hits per IP and minute, bots in the online window
-- ARGV[13] statistics: rows kept per dimension and bucket (counter.top_entries)
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

local P = ARGV[1]
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
local CHUNK = 500

-- Every key is built here, from the prefix, and must be one the caller declared in KEYS:
-- a key built but not declared is a bug in services/counter/store.py (batch_keys).
local declared = {}
for i = 1, #KEYS do declared[KEYS[i]] = true end
local function site_key(name)
  local k = P .. name
  if not declared[k] then error('undeclared key ' .. k) end
  return k
end

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

-- ---- STATISTICS (issue 14): dimensions, bounded top lists, hour/weekday profile ----
-- The record's last field holds the hit's dimension keys joined by tabs, in the order
-- of DIMENSIONS (services/counter/dimensions.py), then the local weekday (1-7).
-- Per bucket (day:<D>, month:<M>) and dimension, named by SiteKeys.top_counts/top_rank:
--   top:<bucket>:<dimension>:c  hash, field = key, value '<visits>:<pageviews>:<rank>'
--                               (exact counts since the key was admitted, and its rank
--                               score), plus field '(other)' = '<visits>:<pageviews>:0'
--   top:<bucket>:<dimension>:r  ZSET of the same keys ('(other)' excepted) by rank score,
--                               kept once the bucket overflowed (when '(other)' exists):
--                               a dimension with few keys (devices...) never needs one
-- Top N, not first N (Space-Saving, Metwally et al. 2005): at most ARGV[13] keys are
-- listed. A key not listed, arriving when the bucket is full, evicts the lowest-ranked
-- key (ties: the lowest key by byte order, as the ZSET orders them): the evicted key's
-- exact visits and pageviews move into '(other)' and the new key is ranked at the
-- evicted key's score plus its weight, its counts exact from admission. Every key whose
-- weight in the bucket exceeds 1/N of the bucket's weight is listed, whatever arrived
-- before or between its hits. The weight is the visit (pageviews for 'bots', which has
-- no visits): the API and the page sort by visits, and a visit is what the per-address
-- limit on new visits bounds, where one visitor can reload pages a hundred times a
-- minute. A hit of weight 0 (a pageview inside a visit) of a key not listed in a full
-- bucket counts in '(other)'. So the rows of a bucket, '(other)' included, add up to
-- what the bucket counted.
-- The batch's hits are decided first (visits, duplicates, limits); then each bucket's
-- dimension reads the rows of the batch's keys and '(other)' in one HMGET. Where no key
-- of the batch can be evicted (each is listed, or there is room for every new one), its
-- sums per key are added at once: each only adds to its own row and rank, so the rows
-- are those of the hits one by one. Otherwise the bucket's hits are counted one by one,
-- in order, reading the ranking's lowest members only when an eviction needs them. Both
-- are written once per batch (one HSET, one ZADD). An eviction within the batch carries
-- the evicted key's pending counts to '(other)'.
-- Referrer '=' is the site's own host: a visit it starts counts as '(direct)', its
-- pageview in no referrer row. Bots count (pageviews only) in the 'bots' dimension.
-- Visits by local hour of day and weekday: hash profile:month:<M>, fields hHH, wN, and
-- by hour of day per day: hash profile:day:<D>, fields hHH.
local top_entries = tonumber(ARGV[13]) or 0
local DIMENSIONS = {'pages', 'referrers', 'campaigns', 'browsers', 'os', 'devices', 'countries', 'bots'}
local DIM_FIELDS = '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)$'
local COUNTS = '^(%d+):(%d+):(%d+)$'
local COUNTS_SCORE = ':(%d+)$'
local load_all  -- defined below
local OTHER = '(other)'
local NONE = {}

-- Per (bucket, dimension), the ranking as the batch so far left it:
--   entries: key -> entry {key, listed, stored (listed when the batch began), gone
--            (stored, then evicted), score, v, p (the row's counts now), at (index in
--            live)}, or false: neither listed nor stored
--   live:    the listed entries the batch looked at; a binary min-heap by (score, key)
--            (heapify) when the bucket's hits are counted one by one
--   the stored ranks the batch did not look at keep their order (nothing is written
--   before the end): the two lowest are read first, all of them if more are needed.
--   unread:  stored keys evicted without being looked at: their counts are read at the end
local tops, top_order = {}, {}
local function top_of(bucket, dimension)
  local id = bucket .. ':' .. dimension
  local top = tops[id]
  if not top then
    local base = 'top:' .. id
    -- (absent until needed, i.e. false: gone, unread, count, chunk, read_all, all, ranked, other)
    top = {h = site_key(base .. ':c'), r = site_key(base .. ':r'), entries = {}, live = {}, at = 1, ov = 0, op = 0}
    tops[id] = top
    top_order[#top_order + 1] = top
  end
  return top
end

local function lower(a, b)
  return a.score < b.score or (a.score == b.score and a.key < b.key)
end

local function heap_swap(heap, i, j)
  heap[i], heap[j] = heap[j], heap[i]
  heap[i].at, heap[j].at = i, j
end

local function heap_down(heap, i)  -- after the entry at i ranked higher
  local n = #heap
  while true do
    local low, left = i, 2 * i
    if left <= n and lower(heap[left], heap[low]) then low = left end
    if left + 1 <= n and lower(heap[left + 1], heap[low]) then low = left + 1 end
    if low == i then return end
    heap_swap(heap, i, low)
    i = low
  end
end

local function heap_push(heap, entry)
  local i = #heap + 1
  heap[i], entry.at = entry, i
  while i > 1 and lower(heap[i], heap[math.floor(i / 2)]) do
    heap_swap(heap, i, math.floor(i / 2))
    i = math.floor(i / 2)
  end
end

local function heap_pop(heap)
  local n = #heap
  heap_swap(heap, 1, n)
  local entry = heap[n]
  heap[n] = nil
  heap_down(heap, 1)
  return entry
end

local function push(top, list, key)
  local items = top[list] or {}
  top[list] = items
  items[#items + 1] = key
end

-- the lowest stored key the batch has not looked at, and its score (nil: none left)
local function stored_lowest(top)
  while true do
    local chunk = top.chunk
    if chunk then
      while top.at < #chunk do
        local key = chunk[top.at]
        if top.entries[key] == nil then return key, tonumber(chunk[top.at + 1]) end
        top.at = top.at + 2
      end
    end
    if top.read_all then return nil end
    if not top.ranked then  -- no ranking yet: the rows, sorted as the ranking would be
      load_all(top)
      local keys = {}
      for key, value in pairs(top.all) do
        if key ~= OTHER then keys[#keys + 1] = {key, tonumber(string.match(value, COUNTS_SCORE))} end
      end
      table.sort(keys, function(a, b) return a[2] < b[2] or (a[2] == b[2] and a[1] < b[1]) end)
      chunk = {}
      for index, pair in ipairs(keys) do chunk[2 * index - 1], chunk[2 * index] = pair[1], pair[2] end
      top.chunk, top.read_all = chunk, true
    elseif chunk then  -- past the two lowest: all of them (at most top_entries)
      top.chunk, top.read_all = redis.call('ZRANGE', top.r, 0, -1, 'WITHSCORES'), true
    else
      top.chunk = redis.call('ZRANGE', top.r, 0, 1, 'WITHSCORES')
      top.read_all = #top.chunk < 4
    end
    top.at = 1
  end
end

-- evict the lowest-ranked key; its score (nil: nothing listed)
local function evict_lowest(top)
  local key, score = stored_lowest(top)
  local low = top.live[1]
  if low and (key == nil or low.score < score or (low.score == score and low.key < key)) then
    heap_pop(top.live)
    low.listed = false
    top.ov, top.op = top.ov + low.v, top.op + low.p
    if low.stored and not low.gone then
      low.gone = true
      push(top, 'gone', low.key)
    end
    return low.score
  end
  if key == nil then return nil end
  top.entries[key] = {key = key, listed = false, stored = true, gone = true}
  push(top, 'gone', key)
  push(top, 'unread', key)
  return score
end

-- every stored row, once (at most top_entries + 1)
load_all = function(top)
  if top.all then return end
  local flat = redis.call('HGETALL', top.h)
  local all = {}
  for index = 1, #flat, 2 do all[flat[index]] = flat[index + 1] end
  top.all, top.other, top.ranked = all, all[OTHER] or '', all[OTHER] ~= nil
  if not top.count then top.count = #flat / 2 - (top.ranked and 1 or 0) end
end

-- The stored rows of the batch's keys (each once) and of '(other)', in one HMGET, before the bucket counts anything: '(other)' exists once the bucket
-- overflowed, and only then does the bucket keep a ranking (a dimension with few keys
-- never needs one). Each key gets its entry: listed (appended to live) or false.
local function read_rows(top, keys)
  local values
  if #keys < CHUNK then
    values = redis.call('HMGET', top.h, OTHER, unpack(keys))
  else
    values = redis.call('HMGET', top.h, OTHER, unpack(keys, 1, CHUNK - 1))
    for at = CHUNK, #keys, CHUNK do
      local part = redis.call('HMGET', top.h, unpack(keys, at, math.min(at + CHUNK - 1, #keys)))
      for index = 1, #part do values[at + index] = part[index] end
    end
  end
  top.other, top.ranked = values[1] or '', values[1] ~= false
  local live, entries = top.live, top.entries
  for index, key in ipairs(keys) do
    local value, entry = values[index + 1], false
    if key ~= OTHER then
      if value then
        local v, p, score = string.match(value, COUNTS)
        entry = {key = key, listed = true, stored = true, gone = false, score = tonumber(score), v = tonumber(v), p = tonumber(p)}
        live[#live + 1] = entry
      end
      entries[key] = entry
    end
  end
end

local function heapify(heap)
  for index, entry in ipairs(heap) do entry.at = index end
  for index = math.floor(#heap / 2), 1, -1 do heap_down(heap, index) end
end

local function listed_count(top)
  if not top.count then  -- without a ranking, the rows are the listed keys
    top.count = top.ranked and redis.call('ZCARD', top.r) or redis.call('HLEN', top.h)
  end
  return top.count
end

local function count_top(top, key, visits, pageviews, weight)
  if key == OTHER then  -- a key that names the row of the rest is counted there
    top.ov, top.op = top.ov + visits, top.op + pageviews
    return
  end
  local entry = top.entries[key]  -- read_rows gave every key of the batch its entry
  if not entry or not entry.listed then
    listed_count(top)
    local floor = 0
    if top.count < top_entries then
      top.count = top.count + 1
    else
      floor = weight > 0 and evict_lowest(top) or nil
      if floor == nil then  -- nothing to rank it by, or nothing to evict
        top.ov, top.op = top.ov + visits, top.op + pageviews
        return
      end
    end
    if not entry then
      entry = {key = key, stored = false, gone = false}
      top.entries[key] = entry
    end
    entry.listed, entry.score, entry.v, entry.p, entry.moved = true, floor, 0, 0, true
    heap_push(top.live, entry)
  end
  entry.v, entry.p, entry.changed = entry.v + visits, entry.p + pageviews, true
  if weight > 0 then
    entry.score, entry.moved = entry.score + weight, true
    heap_down(top.live, entry.at)
  end
end

-- a key's sums, where apply_sums made sure nothing is evicted: no heap to keep
local function add_sums(top, key, visits, pageviews, weight)
  if key == OTHER then
    top.ov, top.op = top.ov + visits, top.op + pageviews
    return
  end
  local entry = top.entries[key]
  if not entry or not entry.listed then  -- admitted: apply_sums counted the room
    top.count = top.count + 1
    if not entry then
      entry = {key = key, stored = false, gone = false}
      top.entries[key] = entry
    end
    entry.listed, entry.score, entry.v, entry.p, entry.moved = true, 0, 0, 0, true
    top.live[#top.live + 1] = entry
  end
  entry.v, entry.p, entry.changed = entry.v + visits, entry.p + pageviews, true
  if weight > 0 then entry.score, entry.moved = entry.score + weight, true end
end

local function call_in_chunks(command, key, items, width)
  local step = CHUNK * width
  for first = 1, #items, step do
    redis.call(command, key, unpack(items, first, math.min(first + step - 1, #items)))
  end
end

local function row(v, p, score)
  return string.format('%d:%d:%d', v, p, score)
end

-- Once per batch: evictions out, the rows and '(other)' written, the ranking updated
-- (or, the batch a bucket first overflows, built from its rows).
local function stats_flush()
  for _, top in ipairs(top_order) do
    local unread = top.unread or NONE
    if top.ov > 0 or top.op > 0 or #unread > 0 then
      local values
      if top.all then
        values = {top.all[OTHER] or false}
        for index = 1, #unread do values[index + 1] = top.all[unread[index]] end
      else
        local names = {OTHER}
        for index = 1, #unread do names[index + 1] = unread[index] end
        values = {}
        for first = 1, #names, CHUNK do
          local part = redis.call('HMGET', top.h, unpack(names, first, math.min(first + CHUNK - 1, #names)))
          for index = 1, #part do values[first + index - 1] = part[index] end
        end
        if top.other then values[1] = top.other end
      end
      for index = 1, #values do
        local v, p = string.match(values[index] or '', COUNTS)
        if v then top.ov, top.op = top.ov + tonumber(v), top.op + tonumber(p) end
      end
    end
    -- the evicted keys out (one re-admitted since is written again just below)
    call_in_chunks('HDEL', top.h, top.gone or NONE, 1)
    local rows, scores = {}, {}
    for _, entry in ipairs(top.live) do
      if entry.changed then rows[#rows + 1], rows[#rows + 2] = entry.key, row(entry.v, entry.p, entry.score) end
      if entry.moved then scores[#scores + 1], scores[#scores + 2] = entry.score, entry.key end
    end
    local overflowed = top.ov > 0 or top.op > 0
    if overflowed then rows[#rows + 1], rows[#rows + 2] = OTHER, row(top.ov, top.op, 0) end
    call_in_chunks('HSET', top.h, rows, 2)
    if top.ranked then
      call_in_chunks('ZREM', top.r, top.gone or NONE, 1)
      call_in_chunks('ZADD', top.r, scores, 2)
    elseif overflowed then  -- the first overflow: rank every row
      local flat, ranking = redis.call('HGETALL', top.h), {}
      for index = 1, #flat, 2 do
        if flat[index] ~= OTHER then
          ranking[#ranking + 1], ranking[#ranking + 2] = tonumber(string.match(flat[index + 1], COUNTS_SCORE)), flat[index]
        end
      end
      call_in_chunks('ZADD', top.r, ranking, 2)
    end
  end
end

local function split_dims(dims)
  if dims == '' then return nil end
  local f = {string.match(dims, DIM_FIELDS)}
  if #f ~= 9 then return nil end
  return f
end

-- What one noted hit counts in DIMENSIONS[index]: the key ('' for nothing), its visits
-- and pageviews. ``visit`` is 1 for a pageview that started a visit, 0 for another
-- pageview of a person, -1 for a bot's pageview (counted in 'bots' only).
local function stat_of(index, f, visit)
  if visit < 0 then
    if index == 8 then return f[8], 0, 1 end
    return '', 0, 0
  end
  if index == 8 then return '', 0, 0 end
  local key = f[index]
  if index == 2 and key == '=' then
    if visit == 1 then return '(direct)', 1, 0 end
    return '', 0, 0
  end
  return key, visit, 1
end

-- The batch's noted hits, in hit order (replayed one by one for a bucket that must
-- evict), and their sums per day, dimension and key (applied at once where nothing can
-- be evicted, which gives the same rows as one by one: see stats_apply).
local noted_f, noted_visit, noted_day, noted_month, noted = {}, {}, {}, {}, 0
-- day -> {month = M, [index] = per_key}; per_key: the keys in order (1..n), and per key {v, p}
local sums, sum_days = {}, {}

local function stats_note(f, day, month, visit)
  noted = noted + 1
  noted_f[noted], noted_visit[noted], noted_day[noted], noted_month[noted] = f, visit, day, month
  local group = sums[day]
  if not group then
    group = {month = month}
    sums[day] = group
    sum_days[#sum_days + 1] = day
  end
  for index = 1, #DIMENSIONS do
    local key, visits, pageviews = stat_of(index, f, visit)
    if key ~= '' then
      local per_key = group[index]
      if not per_key then
        per_key = {}
        group[index] = per_key
      end
      local counts = per_key[key]
      if not counts then
        counts = {0, 0}
        per_key[key] = counts
        per_key[#per_key + 1] = key
      end
      counts[1], counts[2] = counts[1] + visits, counts[2] + pageviews
    end
  end
end

-- a counted pageview of a person
local profile_keys = {}
local function stats_pageview(dims, day, month, hour, starts_visit)
  local f = split_dims(dims)
  if not f then return end
  stats_note(f, day, month, starts_visit and 1 or 0)
  if starts_visit then
    local keys = profile_keys[day]
    if not keys then
      keys = {site_key('profile:month:' .. month), site_key('profile:day:' .. day)}
      profile_keys[day] = keys
    end
    local hh = 'h' .. string.sub(hour, 12, 13)
    add_by(keys[1], hh, 1)
    add_by(keys[1], 'w' .. f[9], 1)
    add_by(keys[2], hh, 1)
  end
end

-- a bot's pageview
local function stats_bot(dims, day, month)
  local f = split_dims(dims)
  if f then stats_note(f, day, month, -1) end
end

-- One bucket's dimension: its keys' sums at once when no key of the batch can be
-- evicted (every key already listed, or room for all the new ones): each count then only
-- adds to its own row and rank, in any order, exactly as one by one. Otherwise the
-- batch's hits one by one, in order (an eviction depends on what came before).
local function apply_sums(top, per_key, index, unit, bucket)
  local weight_of_pageviews = DIMENSIONS[index] == 'bots'
  read_rows(top, per_key)
  local new = 0
  for _, key in ipairs(per_key) do
    if key ~= OTHER and not top.entries[key] then new = new + 1 end
  end
  if new == 0 or listed_count(top) + new <= top_entries then
    for _, key in ipairs(per_key) do
      local counts = per_key[key]
      add_sums(top, key, counts[1], counts[2], weight_of_pageviews and counts[2] or counts[1])
    end
    return
  end
  heapify(top.live)
  local of_bucket = unit == 'day' and noted_day or noted_month
  for n = 1, noted do
    if of_bucket[n] == bucket then
      local key, visits, pageviews = stat_of(index, noted_f[n], noted_visit[n])
      if key ~= '' then count_top(top, key, visits, pageviews, weight_of_pageviews and pageviews or visits) end
    end
  end
end

-- Once per batch, before stats_flush: the noted hits into each bucket's ranking.
local function stats_apply()
  local months, month_order = {}, {}
  for _, day in ipairs(sum_days) do
    local group = sums[day]
    for index, dimension in ipairs(DIMENSIONS) do
      if group[index] then apply_sums(top_of('day:' .. day, dimension), group[index], index, 'day', day) end
    end
    local days = months[group.month]
    if not days then
      days = {}
      months[group.month] = days
      month_order[#month_order + 1] = group.month
    end
    days[#days + 1] = group
  end
  for _, month in ipairs(month_order) do
    local groups = months[month]
    for index, dimension in ipairs(DIMENSIONS) do
      local per_key = groups[1][index]
      if #groups > 1 then  -- the batch crossed midnight within the month: the days' sums added
        per_key = {}
        for _, group in ipairs(groups) do
          for _, key in ipairs(group[index] or NONE) do
            local counts, into = group[index][key], per_key[key]
            if not into then
              into = {0, 0}
              per_key[key] = into
              per_key[#per_key + 1] = key
            end
            into[1], into[2] = into[1] + counts[1], into[2] + counts[2]
          end
        end
      end
      if per_key and #per_key > 0 then apply_sums(top_of('month:' .. month, dimension), per_key, index, 'month', month) end
    end
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
    end
  end
  return redis.call('HINCRBY', key, field, 1)
end

local function expire_rate_counters()
  for _, key in ipairs(rate_order) do redis.call('EXPIRE', key, rate_ttl[key]) end
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

local function after_increment(key, field, total, n)
  local pd = string.match(key, ':page:(.+)$')
  if pd == nil or (field ~= 'views' and field ~= 'downloads') then return end
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
expire_rate_counters()
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
        if path_record_allowed(pd, ipd, now) and redis.call('HSETNX', visitor_key, 'v:' .. pd, '1') == 1 then
          bump(site_key('page:' .. pd), 'views')
        end
      elseif kind == 'd' then
        -- past the address's path budget the download still counts for the site (no
        -- per-visit field is written for a path without a record: that bounds the hash)
        local allowed = path_record_allowed(pd, ipd, now)
        if not allowed or redis.call('HSETNX', visitor_key, 'd:' .. pd, '1') == 1 then
          if allowed then bump(site_key('page:' .. pd), 'downloads') end
          bump(day_key, 'downloads')
          bump(month_key, 'downloads')
          bump(totals_key, 'downloads')
        end
      end
    end
  end
  results[#results + 1] = code
end

stats_apply()  -- STATISTICS: the batch's hits into the rankings, then
stats_flush()  -- evictions, rows and rankings written, once per batch

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
write_retry_state()

for _, vd in ipairs(written_order) do
  local visitor_key = site_key('visitor:' .. vd)
  redis.call('HSET', visitor_key, 'last', written[vd])
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
