#!/usr/bin/env bash
# usage: scripts/bench-login-contention.sh
#
# How much a flood of logins (Argon2id hashing) hurts everybody else's GET /me, and what it costs in
# memory. In CONTENTION_ROUNDS (2) interleaved pairs:
#   idle:     GET /me of user M, wrk -t2 -c64 -d10s (scripts/bench/me-throughput.sh), nothing else;
#   contended: the same while wrk posts /login flat out with 8 connections, rotating over
#             LOGIN_USERS (8) users (scripts/wrk-login-rotate.lua, modelled on
#             scripts/bench/wrk-login.lua; it starts 1 s before and ends 2 s after the /me run).
#             One user is not enough: the product reserves a throttle slot per attempt before
#             hashing, so a 6th concurrent attempt for one email answers 429 without hashing
#             (shown once, below).
# Prints the /me throughput ratio contended/idle and p99 ratio contended/idle (medians over the
# pairs), the login throughput meanwhile, and the server's peak RSS (VmHWM, reset before each run
# through /proc/PID/clear_refs) during the idle /me runs, the contended runs, and bursts of
# BURST (200) concurrent logins (scripts/bench/load -burst-logins): (a) one user from one IP, as a naive
# client would send them; (b) spread over BURST_USERS (40) users and as many X-Forwarded-For
# addresses (the product runs with TRUSTED_PROXIES=127.0.0.1 here), so that the throttle does not
# answer them and every one of them asks for an Argon2id hash.
#
# Product: as scripts/bench-me.sh (production, Redis db 8, prefix benchsess:, 127.0.0.1:18090,
# default HASH_CONCURRENCY and Argon2 cost). Deletes benchsess:* of Redis db 8 at the end.
# Environment: CONTENTION_ROUNDS (2), LOGIN_CONNS (8), LOGIN_USERS (8), BURST (200), BURST_USERS (40),
#   BENCH_DURATION (10s), bench-lib.sh's.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
export BENCH_PRODUCT_EXTRA_ENV="TRUSTED_PROXIES=127.0.0.1 ${BENCH_PRODUCT_EXTRA_ENV:-}"
# shellcheck source=bench-lib.sh
. "$HERE/bench-lib.sh"
trap 'kill "${lpid:-}" 2>/dev/null || true; del_prefix 2>/dev/null || true; stop_started; cleanup_product_dir; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
tmp="$(mktemp -d)"

ROUNDS="${CONTENTION_ROUNDS:-2}"
LOGIN_CONNS="${LOGIN_CONNS:-8}"
BURST="${BURST:-200}"
LOGIN_USERS="${LOGIN_USERS:-8}"
BURST_USERS="${BURST_USERS:-40}"
DUR="${BENCH_DURATION:-10s}"
DUR_S="${DUR%s}"
USER_M=contention-me@example.com
USER_L=contention-login@example.com
PATTERN_L='contention-login-%d@example.com'
PW=bench-password-1
LOAD_BIN=/tmp/sessauth-load

ensure_wrk
need curl; need redis-cli
ensure_services
echo "# bench-login-contention $(date -u +%Y-%m-%dT%H:%M:%SZ)"
machine_line
(cd "$PRODUCT_DIR" && go build -o "$LOAD_BIN" ./scripts/bench/load)
start_product
del_prefix
ensure_user "$USER_M" "$PW" "Contention Me"
ensure_user "$USER_L" "$PW" "Contention Login"
for i in $(seq "$(( LOGIN_USERS > BURST_USERS ? LOGIN_USERS : BURST_USERS ))"); do
  ensure_user "$(printf "$PATTERN_L" "$i")" "$PW" "Contention Login $i"
done
read -r COOKIE_M _ < <(login "$USER_M" "$PW")
echo "server RSS after start: $(vm_kib "$PRODUCT_PID" VmRSS) KiB"
BENCH_COOKIE="$COOKIE_M" BENCH_DURATION=3s "$BENCH/me-throughput.sh" "$PRODUCT_URL" warmup >/dev/null 2>&1

me_run() { # label -> prints me-throughput's line; wrk report in $tmp/<label>.txt
  BENCH_COOKIE="$COOKIE_M" BENCH_SERVER_PID="$PRODUCT_PID" BENCH_DURATION="$DUR" \
    "$BENCH/me-throughput.sh" "$PRODUCT_URL" "$1" 2>"$tmp/$1.txt"
}
declare -A RPS P99 HWM
for r in $(seq "$ROUNDS"); do
  echo "# round $r: idle [before: $(wait_quiet)]; server VmRSS now $(vm_kib "$PRODUCT_PID" VmRSS) KiB"
  reset_hwm "$PRODUCT_PID"
  out=$(me_run "me-idle-r$r"); echo "$out"; grep '^# ' "$tmp/me-idle-r$r.txt" | tail -1
  RPS[idle,$r]=$(field req_per_s "$out"); P99[idle,$r]=$(field p99_ms "$out")
  HWM[idle,$r]=$(vm_kib "$PRODUCT_PID" VmHWM)
  echo "peak RSS (VmHWM) during idle /me: ${HWM[idle,$r]} KiB"

  echo "# round $r: /me while $LOGIN_CONNS connections post /login flat out [before: $(wait_quiet)]; server VmRSS now $(vm_kib "$PRODUCT_PID" VmRSS) KiB"
  reset_hwm "$PRODUCT_PID"
  LOGIN_USERS="$LOGIN_USERS" LOGIN_EMAIL_PATTERN="$PATTERN_L" BENCH_PASSWORD="$PW" \
    wrk -t1 -c"$LOGIN_CONNS" -d"$((DUR_S + 3))s" --timeout 10s \
    -s "$HERE/wrk-login-rotate.lua" "$PRODUCT_URL/login" >"$tmp/login-r$r.txt" 2>&1 &
  lpid=$!
  sleep 1
  out=$(me_run "me-contended-r$r"); echo "$out"; grep '^# ' "$tmp/me-contended-r$r.txt" | tail -1
  wait "$lpid" || true; lpid=
  RPS[cont,$r]=$(field req_per_s "$out"); P99[cont,$r]=$(field p99_ms "$out")
  HWM[cont,$r]=$(vm_kib "$PRODUCT_PID" VmHWM)
  echo "logins meanwhile ($LOGIN_CONNS conns, $((DUR_S + 3)) s from 1 s before): $(grep '^WRKSUMMARY' "$tmp/login-r$r.txt" | sed 's/^WRKSUMMARY //')"
  grep -E 'Socket errors|Non-2xx' "$tmp/login-r$r.txt" || true
  echo "peak RSS (VmHWM) during /me + logins: ${HWM[cont,$r]} KiB"
done

echo "# for comparison: scripts/bench/wrk-login.lua, $LOGIN_CONNS connections on ONE user, 5 s [before: $(wait_quiet)]"
BENCH_EMAIL="$USER_L" BENCH_PASSWORD="$PW" wrk -t1 -c"$LOGIN_CONNS" -d5s --timeout 10s -s "$BENCH/wrk-login.lua" \
  "$PRODUCT_URL/login" >"$tmp/login-one.txt" 2>&1 || true
echo "one user: $(grep '^WRKSUMMARY' "$tmp/login-one.txt" | sed 's/^WRKSUMMARY //')"
curl -sS -o /dev/null -w 'a login of that user right after: HTTP %{http_code}\n' -X POST "$PRODUCT_URL/login" \
  -H 'Content-Type: application/json' --data "{\"email\":\"$USER_L\",\"password\":\"$PW\"}"
sleep 1

burst() { # outfile label extra-flags...
  local out="$1" label="$2"; shift 2
  echo "# burst of $BURST concurrent logins, $label [before: $(wait_quiet)]"
  reset_hwm "$PRODUCT_PID"
  "$LOAD_BIN" -url "$PRODUCT_URL" -burst-logins "$BURST" -pid "$PRODUCT_PID" -password "$PW" \
    -request-timeout 60s -register=false "$@" >"$out" 2>&1 || true
  cat "$out"
}
burst "$tmp/burst1.txt" "one user, one IP" -login-email "$USER_L"
sleep 2
burst "$tmp/burst2.txt" "$BURST_USERS users, distinct X-Forwarded-For" -login-email "$PATTERN_L" -login-users "$BURST_USERS" -spoof-xff
hwm_burst1=$(sed -n 's/.*peak_rss_kib=\([0-9]*\).*/\1/p' "$tmp/burst1.txt")
hwm_burst2=$(sed -n 's/.*peak_rss_kib=\([0-9]*\).*/\1/p' "$tmp/burst2.txt")
echo "product log lines mentioning errors: $(grep -ciE '"level":"(error|warn)"|level=(error|warn)' "$BENCH_LOG_DIR/product.log" || true)"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ printf "%.3f", (b > 0 ? a / b : 0) }'; }
echo "# summary"
for r in $(seq "$ROUNDS"); do
  echo "round $r: idle ${RPS[idle,$r]} req/s p99 ${P99[idle,$r]} ms; contended ${RPS[cont,$r]} req/s p99 ${P99[cont,$r]} ms; VmHWM idle ${HWM[idle,$r]} KiB, contended ${HWM[cont,$r]} KiB"
done
echo "RATIO /me req_per_s contended/idle median=$(for r in $(seq "$ROUNDS"); do ratio "${RPS[cont,$r]}" "${RPS[idle,$r]}"; echo; done | median)"
echo "RATIO /me p99 contended/idle median=$(for r in $(seq "$ROUNDS"); do ratio "${P99[cont,$r]}" "${P99[idle,$r]}"; echo; done | median)"
echo "PEAK_RSS_MIB idle_me=$(for r in $(seq "$ROUNDS"); do echo "${HWM[idle,$r]}"; done | sort -n | tail -1 | awk '{printf "%.1f", $1/1024}') me_plus_logins=$(for r in $(seq "$ROUNDS"); do echo "${HWM[cont,$r]}"; done | sort -n | tail -1 | awk '{printf "%.1f", $1/1024}') burst_one_user=$(awk -v k="${hwm_burst1:-0}" 'BEGIN{printf "%.1f", k/1024}') burst_spread=$(awk -v k="${hwm_burst2:-0}" 'BEGIN{printf "%.1f", k/1024}')"
