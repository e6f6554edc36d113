-- wrk script for scripts/bench/me-throughput.sh.
-- Counts non-2xx responses in every thread (response() runs per response, so its cost is part of
-- wrk's CPU use) and prints one machine-readable line in done():
--   WRKSUMMARY requests=.. duration_s=.. req_per_s=.. p50_ms=.. p90_ms=.. p99_ms=.. p999_ms=..
--              max_ms=.. mean_ms=.. stdev_ms=.. non2xx=.. err_connect=.. err_read=.. err_write=..
--              err_timeout=..
-- The session cookie comes from the command line (-H "Cookie: ...").
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do
    n = n + (t:get("non2xx") or 0)
  end
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "WRKSUMMARY requests=%d duration_s=%.3f req_per_s=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f mean_ms=%.3f stdev_ms=%.3f non2xx=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    latency.max / 1000, latency.mean / 1000, latency.stdev / 1000,
    n, e.connect, e.read, e.write, e.timeout))
end
