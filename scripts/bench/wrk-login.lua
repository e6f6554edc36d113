-- POST /login with a fixed user, for a rough login-throughput check:
--   BENCH_EMAIL=... BENCH_PASSWORD=... wrk -t1 -c4 -d10s -s scripts/bench/wrk-login.lua URL_BASE/login
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"email":"%s","password":"%s"}',
  os.getenv("BENCH_EMAIL") or "bench-me@example.com", os.getenv("BENCH_PASSWORD") or "bench-password-1")

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non2xx = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do n = n + (t:get("non2xx") or 0) end
  io.write(string.format("WRKSUMMARY requests=%d req_per_s=%.2f p50_ms=%.1f p99_ms=%.1f max_ms=%.1f non2xx=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, n))
end
