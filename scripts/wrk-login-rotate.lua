-- POST /login flat out, rotating over LOGIN_USERS users (email pattern LOGIN_EMAIL_PATTERN with %d,
-- 1..N), so that no account has more than a few attempts in flight: the product reserves a
-- throttle slot per attempt (LOGIN_MAX_FAILURES, default 5, per email) before hashing, and a
-- single account hammered by 8 connections mostly answers 429 without hashing at all.
--   LOGIN_USERS=8 LOGIN_EMAIL_PATTERN='contention-login-%d@example.com' BENCH_PASSWORD=... \
--   wrk -t1 -c8 -d10s -s scripts/wrk-login-rotate.lua URL_BASE/login
-- Prints the same WRKSUMMARY line as scripts/bench/wrk-login.lua, plus statuses.
local users = tonumber(os.getenv("LOGIN_USERS") or "8")
local pattern = os.getenv("LOGIN_EMAIL_PATTERN") or "contention-login-%d@example.com"
local password = os.getenv("BENCH_PASSWORD") or "bench-password-1"
local threads = {}
local counter = 0

function setup(thread)
  thread:set("offset", #threads)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  s200, s429, s503, sother = 0, 0, 0, 0
  counter = offset or 0
end

function request()
  counter = counter + 1
  local body = string.format('{"email":"%s","password":"%s"}', string.format(pattern, (counter % users) + 1), password)
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
  if status == 200 then s200 = s200 + 1
  elseif status == 429 then s429 = s429 + 1
  elseif status == 503 then s503 = s503 + 1
  else sother = sother + 1 end
end

function done(summary, latency, requests)
  local n, a, b, c, d = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    n = n + (t:get("non2xx") or 0)
    a = a + (t:get("s200") or 0); b = b + (t:get("s429") or 0)
    c = c + (t:get("s503") or 0); d = d + (t:get("sother") or 0)
  end
  io.write(string.format("WRKSUMMARY requests=%d req_per_s=%.2f p50_ms=%.1f p99_ms=%.1f max_ms=%.1f non2xx=%d status200=%d status429=%d status503=%d other=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, n, a, b, c, d))
end
