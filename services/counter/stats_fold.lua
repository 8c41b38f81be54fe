-- Count a site's statistics log into its top lists (one EVALSHA per fold; the caller,
-- services/counter/stats_fold.py, folds after the writes and before every read of them).
--
-- KEYS[1]  the site's statistics log (stats:log): routes the call to the site's slot.
-- KEYS[2..] the never-written 'absent' key (a half-moved slot refuses the call whole:
--          TRYAGAIN, resent) and the top-list keys of every day and month the caller
--          found in the entries it read (SiteKeys.top_keys of each dimension).
-- ARGV[1]  key prefix, e.g. "pulse:{default}:"
-- ARGV[2]  rows kept per dimension and bucket (counter.top_entries)
-- ARGV[3]  entries to fold at most (from the head of the log)
--
-- The log's entries are hit.lua's, one per batch, in the order the batches ran: records
-- '<visit>|<day>|<month>|<dimensions>' joined by "\n", visit 1 (the pageview started a
-- visit), 0 (another pageview of a person), -1 (a bot's pageview). The fold counts them
-- in that order and trims them in the same call, so each is counted once, whichever
-- process folds. It stops before the first entry whose days or months were not declared
-- (another process folded what the caller read, and newer entries came): the caller
-- reads again. Returns {entries folded, entries left}.
--
-- A record's dimensions are the hit's keys joined by tabs, in the order of DIMENSIONS
-- (services/counter/dimensions.py), then the local weekday (1-7).
-- Per bucket (day:<D>, month:<M>) and dimension, named by SiteKeys.top_counts/top_rank:
--   top:<bucket>:<dimension>:c  hash, field = key, value '<visits>:<pageviews>:<rank>'
--                               (exact counts since the key was admitted, and its rank
--                               score), plus field '(other)' = '<visits>:<pageviews>:0'
--   top:<bucket>:<dimension>:r  ZSET of the same keys ('(other)' excepted) by rank score,
--                               kept once the bucket overflowed (when '(other)' exists):
--                               a dimension with few keys (devices...) never needs one
-- Top N, not first N (Space-Saving, Metwally et al. 2005): at most ARGV[2] keys are
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
-- Each bucket's dimension reads the rows of the fold's keys and '(other)' in one HMGET.
-- Where no key of the fold can be evicted (each is listed, or there is room for every
-- new one), its sums per key are added at once: each only adds to its own row and rank,
-- so the rows are those of the hits one by one. Otherwise the bucket's records are
-- counted one by one, in order, reading the ranking's lowest members only when an
-- eviction needs them. Both are written once per fold (one HSET, one ZADD). An eviction
-- within the fold carries the evicted key's pending counts to '(other)'.
-- Referrer '=' is the site's own host: a visit it starts counts as '(direct)', its
-- pageview in no referrer row. Bots count (pageviews only) in the 'bots' dimension.
local top_entries = tonumber(ARGV[2])
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

local function heap_down(heap, i)  -- after the entry at i ranked higher (or replaced the root)
  -- ``lower`` written out: this runs at every eviction, the fold's hottest loop
  local n = #heap
  local entry = heap[i]
  local score, key = entry.score, entry.key
  while true do
    local left = 2 * i
    if left > n then break end
    local child = heap[left]
    local right = heap[left + 1]
    if right and (right.score < child.score or (right.score == child.score and right.key < child.key)) then
      left, child = left + 1, right
    end
    if not (child.score < score or (child.score == score and child.key < key)) then break end
    heap[i], child.at = child, i
    i = left
  end
  heap[i], entry.at = entry, i
end

local function heap_push(heap, entry)
  local i = #heap + 1
  while i > 1 do
    local up = math.floor(i / 2)
    local parent = heap[up]
    if not lower(entry, parent) then break end
    heap[i], parent.at = parent, i
    i = up
  end
  heap[i], entry.at = entry, i
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
    top.root_free = true  -- the admitted key takes the root's place (count_top)
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
    -- admitted, ranked at the floor plus its weight (one table, one sift into the heap)
    if entry then
      entry.listed, entry.score, entry.v, entry.p, entry.moved, entry.changed =
        true, floor + weight, visits, pageviews, true, true
    else
      entry = {key = key, stored = false, gone = false, listed = true, score = floor + weight, v = visits,
               p = pageviews, moved = true, changed = true, at = 0}
      top.entries[key] = entry
    end
    if top.root_free then  -- one sift from the root, not a pop and a push
      top.root_free = false
      top.live[1] = entry
      heap_down(top.live, 1)
    else
      heap_push(top.live, entry)
    end
    return
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
  -- stat_of, inlined (the fold's hottest loop): a person's pageview counts in the first
  -- seven dimensions, a bot's in 'bots' (8) only
  local first, last = 1, 7
  if visit < 0 then first, last = 8, 8 end
  for index = first, last do
    local key, visits, pageviews = f[index], visit, 1
    if visit < 0 then
      visits = 0
    elseif index == 2 and key == '=' then
      if visit == 1 then key, pageviews = '(direct)', 0 else key = '' end
    end
    if key ~= '' then
      local per_key = group[index]
      if not per_key then
        per_key = {}
        group[index] = per_key
      end
      local counts = per_key[key]
      if counts then
        counts[1], counts[2] = counts[1] + visits, counts[2] + pageviews
      else
        per_key[key] = {visits, pageviews}
        per_key[#per_key + 1] = key
      end
    end
  end
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

-- ---- the fold -------------------------------------------------------------------------
local log_key = site_key('stats:log')
local STAT = '^(-?%d)|([^|]*)|([^|]*)|(.*)$'
local entries = redis.call('LRANGE', log_key, 0, tonumber(ARGV[3]) - 1)
local known = {}  -- day .. '|' .. month -> declared by the caller
local folded = 0
-- a record and its dimensions in one match (STAT and DIM_FIELDS): 3 + 9 captures
local RECORD = '^(-?%d)|([^|]*)|([^|]*)|' .. string.sub(DIM_FIELDS, 2)
local last_day, last_month, last_known = nil, nil, false
for _, entry in ipairs(entries) do
  local records, n = {}, 0  -- four slots a record: visit, day, month, dimensions (or false)
  for rec in string.gmatch(entry, '[^\n]+') do
    local visit, day, month, d1, d2, d3, d4, d5, d6, d7, d8, d9 = string.match(rec, RECORD)
    local f = false
    if visit then
      f = {d1, d2, d3, d4, d5, d6, d7, d8, d9}
    else  -- not well formed: the record is skipped, but its day still must be declared
      visit, day, month = string.match(rec, STAT)
    end
    if visit then
      if day ~= last_day or month ~= last_month then
        local pair = day .. '|' .. month
        if known[pair] == nil then
          known[pair] = declared[P .. 'top:day:' .. day .. ':pages:c'] == true
            and declared[P .. 'top:month:' .. month .. ':pages:c'] == true
        end
        last_day, last_month, last_known = day, month, known[pair]
      end
      if not last_known then records = nil break end
      records[n + 1], records[n + 2], records[n + 3], records[n + 4] = tonumber(visit), day, month, f
      n = n + 4
    end
  end
  if not records then break end
  for at = 1, n, 4 do
    local f = records[at + 3]
    if f then stats_note(f, records[at + 1], records[at + 2], records[at]) end
  end
  folded = folded + 1
end
stats_apply()
stats_flush()
if folded > 0 then redis.call('LTRIM', log_key, folded, -1) end
return {folded, redis.call('LLEN', log_key)}
