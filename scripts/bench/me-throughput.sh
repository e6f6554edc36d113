#!/usr/bin/env bash
# usage: scripts/bench/me-throughput.sh URL_BASE [label]
#
# Registers (409 is fine) and logs in a user through the HTTP API at URL_BASE, takes the session
# cookie from the login response, checks GET /me answers 200 with it, then runs wrk against
# GET URL_BASE/me with that cookie and prints ONE line on stdout:
#   <label> req_per_s=<n> p50_ms=<n> p99_ms=<n> non2xx=<n>
# wrk's own report (with --latency distribution) and a '#' detail line go to stderr.
#
# Environment (all optional):
#   BENCH_DURATION (10s)  BENCH_CONNS (64)  BENCH_THREADS (2)  BENCH_TIMEOUT (5s, wrk --timeout)
#   BENCH_EMAIL (bench-me@example.com)  BENCH_PASSWORD (bench-password-1)  BENCH_NAME (Bench)
#   BENCH_COOKIE_NAME (sessionId)  BENCH_COOKIE (skip register/login, use this "name=value")
#   BENCH_SERVER_PID  if set, the '#' line also gives the server's CPU use during the run, with
#                     Redis's, PostgreSQL's (all its processes) and the whole machine's busy time
#                     (percent of one core; 200% = both cores of this machine), and what of
#                     that no process above accounts for ("unattributed": kernel softirq of the
#                     loopback traffic, and any other load on the machine). wrk's CPU is always
#                     given.
#   BENCH_WRK_SCRIPT  (wrk-me.lua beside this script)
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 URL_BASE [label]" >&2
  exit 2
fi
URL_BASE="${1%/}"
LABEL="${2:-$URL_BASE}"
HERE="$(cd "$(dirname "$0")" && pwd)"
DURATION="${BENCH_DURATION:-10s}"
CONNS="${BENCH_CONNS:-64}"
THREADS="${BENCH_THREADS:-2}"
TIMEOUT="${BENCH_TIMEOUT:-5s}"
EMAIL="${BENCH_EMAIL:-bench-me@example.com}"
PASSWORD="${BENCH_PASSWORD:-bench-password-1}"
NAME="${BENCH_NAME:-Bench}"
COOKIE_NAME="${BENCH_COOKIE_NAME:-sessionId}"
WRK_SCRIPT="${BENCH_WRK_SCRIPT:-$HERE/wrk-me.lua}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cookie="${BENCH_COOKIE:-}"
if [ -z "$cookie" ]; then
  body=$(printf '{"email":"%s","password":"%s","name":"%s"}' "$EMAIL" "$PASSWORD" "$NAME")
  code=$(curl -sS -o "$tmp/reg" -w '%{http_code}' -X POST "$URL_BASE/register" \
    -H 'Content-Type: application/json' --data "$body")
  case "$code" in
    201|409) ;;
    *) echo "POST /register answered $code: $(cat "$tmp/reg")" >&2; exit 1 ;;
  esac
  body=$(printf '{"email":"%s","password":"%s"}' "$EMAIL" "$PASSWORD")
  code=$(curl -sS -D "$tmp/hdr" -o "$tmp/login" -w '%{http_code}' -X POST "$URL_BASE/login" \
    -H 'Content-Type: application/json' --data "$body")
  if [ "$code" != 200 ]; then
    echo "POST /login answered $code: $(cat "$tmp/login")" >&2
    exit 1
  fi
  # name=value of the session cookie (fall back to the first Set-Cookie if the name differs)
  cookie=$(tr -d '\r' <"$tmp/hdr" | sed -n 's/^[Ss]et-[Cc]ookie: *\([^;]*\).*/\1/p' | grep "^$COOKIE_NAME=" | head -1 || true)
  if [ -z "$cookie" ]; then
    cookie=$(tr -d '\r' <"$tmp/hdr" | sed -n 's/^[Ss]et-[Cc]ookie: *\([^;]*\).*/\1/p' | head -1)
  fi
  if [ -z "$cookie" ]; then
    echo "POST /login set no cookie" >&2
    exit 1
  fi
fi

code=$(curl -sS -o "$tmp/me" -w '%{http_code}' -H "Cookie: $cookie" "$URL_BASE/me")
if [ "$code" != 200 ]; then
  echo "GET /me with the login cookie answered $code: $(cat "$tmp/me")" >&2
  exit 1
fi

clk=$(getconf CLK_TCK)
if [ -n "${BENCH_SERVER_PID:-}" ]; then
  # shellcheck source=lib.sh
  . "$HERE/lib.sh"
  rpid=$(redis_pid || true)
  s0=$(cpu_ticks "$BENCH_SERVER_PID"); r0=$(cpu_ticks $rpid)
  read -r mb0 mt0 < <(busy_ticks)
  pg_sample >"$tmp/pg"; echo "--" >>"$tmp/pg"
  pg_sampler "$tmp/pg" &
  sampler=$!
fi
t0=$(date +%s.%N)
/usr/bin/time -f '%U %S' -o "$tmp/wrktime" \
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout "$TIMEOUT" --latency \
  -H "Cookie: $cookie" -s "$WRK_SCRIPT" "$URL_BASE/me" >"$tmp/wrk" 2>&1 || {
  cat "$tmp/wrk" >&2
  echo "wrk failed" >&2
  exit 1
}
t1=$(date +%s.%N)
cat "$tmp/wrk" >&2

line=$(grep '^WRKSUMMARY' "$tmp/wrk" | tail -1)
get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')
pct() { awk -v t="$1" -v c="$clk" -v w="$wall" 'BEGIN{printf "%.0f", t / c / w * 100}'; }
read -r wu ws <"$tmp/wrktime"
detail="# $LABEL p90_ms=$(get p90_ms) p999_ms=$(get p999_ms) max_ms=$(get max_ms) requests=$(get requests) err_connect=$(get err_connect) err_read=$(get err_read) err_write=$(get err_write) err_timeout=$(get err_timeout) wrk_cpu=$(awk -v u="$wu" -v s="$ws" -v w="$wall" 'BEGIN{printf "%.0f", (u + s) / w * 100}')%"
if [ -n "${BENCH_SERVER_PID:-}" ]; then
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
  echo "--" >>"$tmp/pg"; pg_sample >>"$tmp/pg"
  s1=$(cpu_ticks "$BENCH_SERVER_PID"); r1=$(cpu_ticks $rpid)
  read -r mb1 mt1 < <(busy_ticks)
  machine=$(awk -v b=$((mb1 - mb0)) -v t=$((mt1 - mt0)) -v n="$(nproc)" 'BEGIN{printf "%.0f", (t > 0 ? b / t : 0) * n * 100}')
  pgt=$(pg_ticks_delta "$tmp/pg")
  known=$(awk -v u="$wu" -v s="$ws" -v w="$wall" -v c="$clk" -v t=$((s1 - s0 + r1 - r0 + pgt)) 'BEGIN{printf "%.0f", ((u + s) + t / c) / w * 100}')
  detail="$detail server_cpu=$(pct $((s1 - s0)))% redis_cpu=$(pct $((r1 - r0)))% postgres_cpu=$(pct "$pgt")% machine_busy=${machine}%/$(( $(nproc) * 100 ))% unattributed=$((machine - known))%"
fi
echo "$detail" >&2
echo "$LABEL req_per_s=$(get req_per_s) p50_ms=$(get p50_ms) p99_ms=$(get p99_ms) non2xx=$(get non2xx)"
