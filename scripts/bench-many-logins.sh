#!/usr/bin/env bash
# usage: scripts/bench-many-logins.sh
#
# What one account's history costs everybody else: user A logs in over and over (an attacker with one
# self-registered account), user B only reads GET /me. Measured twice, after A made 10 logins and
# after A made MANY_LOGINS (5000):
#   login:  LOGIN_SAMPLES (200) sequential POST /login of A, curl time_total, median and p99;
#   /me:    B's GET /me (wrk -t2 -c64, scripts/bench/me-throughput.sh) while LOGIN_CONNS (8)
#           connections post A's logins flat out (scripts/bench/wrk-login.lua), p99.
# Prints both ratios (after MANY / after 10; the target is at most 1.5) and the slowest Redis command
# of the product in SLOWLOG over the whole run (the target is under 5 ms): the threshold is set to
# 1 ms for the run and put back afterwards.
#
# Product: production mode as scripts/bench-me.sh (Redis db 8, prefix benchsess:), with a cheap
# Argon2 cost (ARGON2_MEMORY_KIB=64, ARGON2_ITERATIONS=1) so that hashing does not hide the cost of
# the Redis side, which is what this measures, and MAX_SESSIONS_PER_USER at its default (50).
# Environment: MANY_LOGINS (5000), LOGIN_SAMPLES (200), LOGIN_CONNS (8), BENCH_DURATION (10s),
#   bench-lib.sh's. Deletes benchsess:* of Redis db 8 at the end.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
export BENCH_PRODUCT_EXTRA_ENV="ARGON2_MEMORY_KIB=64 ARGON2_ITERATIONS=1 LOGIN_MAX_FAILURES=1000000 ${BENCH_PRODUCT_EXTRA_ENV:-}"
# shellcheck source=bench-lib.sh
. "$HERE/bench-lib.sh"
tmp="$(mktemp -d)"
slow_before=""
restore() {
  [ -n "$slow_before" ] && "${RP[@]}" config set slowlog-log-slower-than "$slow_before" >/dev/null 2>&1
  del_prefix 2>/dev/null || true
  stop_started
  cleanup_product_dir
  rm -rf "$tmp"
}
trap restore EXIT
trap 'exit 130' INT TERM

MANY="${MANY_LOGINS:-5000}"
SAMPLES="${LOGIN_SAMPLES:-200}"
LOGIN_CONNS="${LOGIN_CONNS:-8}"
DUR="${BENCH_DURATION:-10s}"
PW=bench-password-1
USER_A=many-logins-a@example.com
USER_B=many-logins-b@example.com

need wrk || ensure_wrk
ensure_services
del_prefix
start_product
ensure_user "$USER_A" "$PW" A
ensure_user "$USER_B" "$PW" B
read -r COOKIE_B _ < <(login "$USER_B" "$PW")
[ -n "$COOKIE_B" ] || { echo "no cookie for $USER_B" >&2; exit 1; }

slow_before=$("${RP[@]}" config get slowlog-log-slower-than | sed -n 2p)
"${RP[@]}" config set slowlog-log-slower-than 1000 >/dev/null
"${RP[@]}" slowlog reset >/dev/null

# logins N: N logins of A, 8 at a time.
logins() {
  seq "$1" | xargs -P 8 -I{} curl -sS -o /dev/null -X POST "$PRODUCT_URL/login" \
    -H 'Content-Type: application/json' --data "{\"email\":\"$USER_A\",\"password\":\"$PW\"}"
}

# measure LABEL: prints "LABEL login_p50_ms login_p99_ms me_p99_ms me_req_per_s".
measure() {
  local label="$1" times me
  times="$tmp/login-$label.txt"
  for _ in $(seq "$SAMPLES"); do login "$USER_A" "$PW" | awk '{print $2 * 1000}'; done | sort -n >"$times"
  BENCH_EMAIL="$USER_A" BENCH_PASSWORD="$PW" wrk -t1 -c"$LOGIN_CONNS" -d"$(( ${DUR%s} + 3 ))s" \
    -s "$BENCH/wrk-login.lua" "$PRODUCT_URL/login" >"$tmp/wrk-login-$label.txt" 2>&1 &
  local wpid=$!
  sleep 1
  me=$(BENCH_COOKIE="$COOKIE_B" BENCH_DURATION="$DUR" "$BENCH/me-throughput.sh" "$PRODUCT_URL" "me-$label" 2>/dev/null)
  wait "$wpid" || true
  awk -v label="$label" -v me="$me" '{ v[NR] = $1 } END {
      split(me, f, " "); for (i in f) { split(f[i], kv, "="); m[kv[1]] = kv[2] }
      printf "%s login_p50_ms=%.2f login_p99_ms=%.2f me_p99_ms=%s me_req_per_s=%s\n", label,
        v[int(NR * 0.5) + 1], v[int(NR * 0.99) + 1], m["p99_ms"], m["req_per_s"] }' "$times"
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
logins 10
few=$(measure after-10)
echo "$few"
echo "# $MANY more logins of A ..." >&2
logins "$MANY"
many=$(measure "after-$MANY")
echo "$many"
echo "# index of A: $("${RP[@]}" --scan --pattern "${PRODUCT_PREFIX}s:*" | xargs -r -n1 "${RP[@]}" zcard | sort -n | tail -1) entries (cap 50)"

awk -v a="$few" -v b="$many" 'function get(s, k,   n, f, i, kv) { n = split(s, f, " ");
    for (i = 2; i <= n; i++) { split(f[i], kv, "="); if (kv[1] == k) return kv[2] } }
  BEGIN { printf "ratio login_p50=%.2f login_p99=%.2f me_p99=%.2f (target <= 1.5)\n",
    get(b, "login_p50_ms") / get(a, "login_p50_ms"), get(b, "login_p99_ms") / get(a, "login_p99_ms"),
    get(b, "me_p99_ms") / get(a, "me_p99_ms") }'

# SLOWLOG (redis-cli --no-raw): an entry starts "N) 1) (integer) <id>", its third line is
# "3) (integer) <duration µs>", its arguments follow, the command first; the product's entries name its
# key prefix (this script's own SCAN and UNLINK are left out).
read -r max_us max_cmd < <("${RP[@]}" --no-raw slowlog get 100000 | awk -v prefix="$PRODUCT_PREFIX" '
  function settle() { if (ours && cmd != "SCAN" && cmd != "UNLINK" && dur > max) { max = dur; maxcmd = cmd }
    ours = 0; dur = 0; cmd = "" }
  /^[0-9]+\) 1\) \(integer\)/ { settle(); next }
  /^ +3\) \(integer\)/ && !dur { dur = $3 + 0; next }
  /^ +4\) +1\) "/ && cmd == "" { cmd = $3; gsub(/"/, "", cmd); cmd = toupper(cmd) }
  index($0, prefix) { ours = 1 }
  END { settle(); print max + 0, (maxcmd == "" ? "-" : maxcmd) }')
echo "slowlog: slowest product command ${max_us} µs (${max_cmd}) over the run (logged from 1 ms; target under 5 ms)"
