-- One wrk script for every benchmark request shape.
--   wrk ... -s bench.lua URL -- <kind> <seconds> <run-id> [ids-file] [path]
-- kinds: hit (JSON POST /v1/hit, a distinct visitor per request), widget (the same, shaped
-- as widget.js sends it: see measured()), pixel (GET /v1/hit.gif,
-- one of 256 browser User-Agents; both from a distinct X-Forwarded-For address, so every
-- pixel hit is a distinct visitor too, in every run), get (GET <path>), activity (POST
-- /v1/sessions/<id>/activity), status (GET /v1/sessions/<id>), ids read from ids-file.
--
-- Exact counting: for <seconds> each connection sends measured requests; after that it
-- sends only a cheap filler (GET /__bench_filler, answered 404) until every measured
-- request of the thread has its answer, then the thread stops. So no measured request is
-- in flight when wrk exits and the 2xx count below is exact. Throughput is measured
-- requests over the measured phase, timed with gettimeofday through LuaJIT's ffi.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_usec; } bench_timeval;
int gettimeofday(bench_timeval *tv, void *tz);
]]
local tv = ffi.new("bench_timeval")
local function now()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) + tonumber(tv.tv_usec) / 1e6
end

local threads = {}
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

local kind, seconds, run, ids, path
local origin = nil  -- the widget's page origin: the counter's own (allowed without configuration)
local run_bits = 0  -- the run id's first 32 bits (visitor_address)
local n = 0
local t_start, t_end, deadline = nil, nil, nil
sent, answered, s2xx, s3xx, s4xx, s5xx, fillers = 0, 0, 0, 0, 0, 0, 0
first, last = 0, 0

local filler = nil
local ua = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 "
local json_headers = { ["Content-Type"] = "application/json", ["User-Agent"] = ua .. "bench" }
-- The pixel's User-Agents: 256 browser strings (four browser families, 64 versions each).
-- A portal's traffic repeats User-Agents (a few hundred distinct strings carry nearly all
-- of it), so each is parsed once and then found in the services' per-UA caches; a new
-- string per request would measure the parser, not the service (docs/benchmarks.md).
local pixel_agents = {}
for v = 0, 63 do
  table.insert(pixel_agents, string.format(
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.%d.0 Safari/537.36", 100 + v % 32, v))
  table.insert(pixel_agents, string.format(
    "Mozilla/5.0 (X11; Linux x86_64; rv:%d.0) Gecko/20100101 Firefox/%d.0", 100 + v, 100 + v))
  table.insert(pixel_agents, string.format(
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_%d like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.%d Mobile/15E148 Safari/604.1", v % 8, v))
  table.insert(pixel_agents, string.format(
    "Mozilla/5.0 (Linux; Android 14; SM-S91%d) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Mobile Safari/537.36", v % 10, 100 + v))
end

function init(args)
  kind = args[1] or "get"
  seconds = tonumber(args[2] or "10")
  run = args[3] or "r"
  path = args[5] or "/"
  ids = {}
  if args[4] and args[4] ~= "-" then
    for line in io.lines(args[4]) do table.insert(ids, line) end
  end
  filler = wrk.format("GET", "/__bench_filler")
  origin = string.format("http://%s:%s", wrk.host, wrk.port)
  n = tid * 7919  -- spread the session ids the threads start from
  run_bits = (tonumber(string.sub(run, 1, 8), 16) or 0) % 4294967296
end

-- Each visitor comes from an address of its own, through the trusted proxy (the
-- services trust 127.0.0.1 by default): X-Forwarded-For, as behind nginx. The run id is
-- in the address (a unique-local IPv6 one), so the visitors of one run are not those of
-- the run before: a pixel visitor is its address and User-Agent, and a repeat run with
-- the same addresses would be the same people inside their visit window (no new visits).
local function visitor_address()
  return string.format("fd00:%x:%x:%x:%x:%x::1", math.floor(run_bits / 65536), run_bits % 65536, tid,
                       math.floor(n / 65536) % 65536, n % 65536)
end

local function measured()
  n = n + 1
  if kind == "hit" then
    local body = string.format(
      '{"site":"default","kind":"pageview","path":"/p/%d","visitor":"b%s-%d-%d"}',
      n % 1000, run, tid, n)
    return wrk.format("POST", "/v1/hit", { ["Content-Type"] = "application/json",
      ["User-Agent"] = ua .. "bench", ["X-Forwarded-For"] = visitor_address() }, body)
  elseif kind == "widget" then
    -- what widget.js sends for a page view: text/plain (no CORS preflight), the page's
    -- Origin, an event id and the visitor's sequence number (retries are recognised by
    -- them), and ?stats=1: the answer is the footer's figures (200 with JSON), not a 204
    local body = string.format(
      '{"site":"default","kind":"pageview","path":"/p/%d","visitor":"w%s-%d-%d","member":false,' ..
      '"referrer":"https://www.google.com/","id":"%s%x%07x","seq":1,"query":null}',
      n % 1000, run, tid, n, string.sub(run, 1, 6), tid, n)
    return wrk.format("POST", "/v1/hit?stats=1", { ["Content-Type"] = "text/plain;charset=UTF-8",
      ["Origin"] = origin, ["User-Agent"] = ua .. "bench", ["X-Forwarded-For"] = visitor_address() }, body)
  elseif kind == "pixel" then
    return wrk.format("GET", string.format("/v1/hit.gif?site=default&path=/p/%d", n % 1000),
      { ["User-Agent"] = pixel_agents[(n % #pixel_agents) + 1], ["X-Forwarded-For"] = visitor_address() })
  elseif kind == "activity" then
    return wrk.format("POST", "/v1/sessions/" .. ids[(n % #ids) + 1] .. "/activity", json_headers, "{}")
  elseif kind == "status" then
    return wrk.format("GET", "/v1/sessions/" .. ids[(n % #ids) + 1])
  end
  return wrk.format("GET", path)
end

local verified = false

function request()
  if tid == 0 and not verified then
    -- wrk calls request() once in thread 0 to verify the script before any thread runs
    verified = true
    return filler
  end
  local t = now()
  if deadline == nil then
    t_start = t
    deadline = t + seconds
    first = t
  end
  if t < deadline then
    sent = sent + 1
    return measured()
  end
  fillers = fillers + 1
  return filler
end

function response(status, headers, body)
  if status == 404 then
    -- the filler (measured requests never answer 404 in a correct setup)
  else
    answered = answered + 1
    last = now()
    if status < 300 then s2xx = s2xx + 1
    elseif status < 400 then s3xx = s3xx + 1
    elseif status < 500 then s4xx = s4xx + 1
    else s5xx = s5xx + 1 end
  end
  if deadline ~= nil and last >= deadline - 0.0 and answered == sent and now() >= deadline then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local t = { sent = 0, answered = 0, s2xx = 0, s3xx = 0, s4xx = 0, s5xx = 0, fillers = 0 }
  local first_all, last_all = nil, 0
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + (thread:get(k) or 0) end
    local f, l = thread:get("first"), thread:get("last")
    if f and f > 0 and (first_all == nil or f < first_all) then first_all = f end
    if l and l > last_all then last_all = l end
  end
  io.write(string.format(
    'BENCH {"sent":%d,"answered":%d,"s2xx":%d,"s3xx":%d,"s4xx":%d,"s5xx":%d,"fillers":%d,' ..
    '"first":%.6f,"last":%.6f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"wrk_requests":%d}\n',
    t.sent, t.answered, t.s2xx, t.s3xx, t.s4xx, t.s5xx, t.fillers, first_all or 0, last_all,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    summary.requests))
end
