#!/usr/bin/env bash
# shellcheck disable=SC2154  # PID_peer, PID_floor1, ...: set by scripts/bench/lib.sh (printf -v)
# usage: scripts/bench-me.sh
#
# GET /me throughput of the product against the express-seed peer and the two Go floors, measured
# the same way (scripts/bench/me-throughput.sh: wrk -t2 -c64 -d10s, one session cookie), interleaved
# on this machine in the same minutes:
#   warm-up (product 3 s, peer 15 s, floors 3 s; not recorded), then BENCH_ROUNDS (3) rounds of
#   product, peer, floor1 (one Redis GET), floor2 (Redis GET + PostgreSQL PK SELECT).
# Prints each run's req/s, p50, p99, non-2xx, then the medians over rounds of the per-round ratios
# product/peer and product/floor1 (req/s), and the product's p99 against 1.5 x floor1's p99.
#
# The product is built from this repo (go build -o /tmp/sessauth-bench .) and runs with
# APP_ENV=production, PostgreSQL db test, Redis db 8, SESSION_KEY_PREFIX=benchsess:, a random
# 48-byte SESSION_SECRET and COOKIE_SECURE=true (wrk sends the cookie anyway: a raw header),
# on 127.0.0.1:18090, after `/tmp/sessauth-bench migrate` (AUTO_MIGRATE is off in production).
# The peer (:3100) and floors (:8091/:8092) use Redis db 9 (scripts/bench/lib.sh).
# Everything started here is stopped by PID on exit; benchsess:* of Redis db 8 is deleted. Traffic
# to 127.0.0.1 only. Runs disturbed by other load on this shared machine are marked NOISY.
#
# Environment: BENCH_ROUNDS (3), BENCH_DURATION (10s), BENCH_CONNS (64), BENCH_THREADS (2),
#   BENCH_WARMUP (3s), BENCH_WARMUP_PEER (15s), BENCH_QUIET_MAX (120 s max wait for a quiet
#   machine before each run), BENCH_QUIET_THRESHOLD (25 = % of 200), and those of bench-lib.sh.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench-lib.sh
. "$HERE/bench-lib.sh"
trap 'del_prefix 2>/dev/null || true; stop_started; cleanup_product_dir' EXIT
trap 'exit 130' INT TERM

ROUNDS="${BENCH_ROUNDS:-3}"
WARMUP="${BENCH_WARMUP:-3s}"
WARMUP_PEER="${BENCH_WARMUP_PEER:-15s}"
RUN_DIR="$BENCH_LOG_DIR/bench-me-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RUN_DIR"
exec > >(tee "$RUN_DIR/run.log") 2>&1

ensure_wrk
need curl; need redis-cli; need psql; need node
ensure_services
echo "# bench-me $(date -u +%Y-%m-%dT%H:%M:%SZ)  log: $RUN_DIR"
machine_line
echo "# wrk: ${BENCH_THREADS:-2} threads, ${BENCH_CONNS:-64} connections, ${BENCH_DURATION:-10s}, GET /me with one session cookie; $ROUNDS rounds"

ensure_peer_deps
build_floor
start_product
start_peer peer 3100
start_floor floor1 redis 8091
start_floor floor2 redis-pg 8092
PEER=http://127.0.0.1:3100 F1=http://127.0.0.1:8091 F2=http://127.0.0.1:8092

# The product's cookie: one register (201/409) and one login, reused by every product run, so the
# per-IP register limit is not spent by each run.
ensure_user bench-me@example.com bench-password-1 Bench
read -r PRODUCT_COOKIE _ < <(login bench-me@example.com bench-password-1)
[ -n "$PRODUCT_COOKIE" ] || { echo "no product cookie" >&2; exit 1; }

echo "# warm-up (product $WARMUP, peer $WARMUP_PEER, floors $WARMUP; not recorded)"
BENCH_COOKIE="$PRODUCT_COOKIE" BENCH_DURATION="$WARMUP" "$BENCH/me-throughput.sh" "$PRODUCT_URL" warmup-product 2>/dev/null
BENCH_DURATION="$WARMUP_PEER" "$BENCH/me-throughput.sh" "$PEER" warmup-peer 2>/dev/null
BENCH_DURATION="$WARMUP" "$BENCH/me-throughput.sh" "$F1" warmup-floor1 2>/dev/null
BENCH_DURATION="$WARMUP" "$BENCH/me-throughput.sh" "$F2" warmup-floor2 2>/dev/null

declare -A RPS P99
NOISY=0
# A run is marked NOISY when the machine's busy time that no measured process (server, Redis,
# PostgreSQL, wrk) accounts for exceeds BENCH_NOISE_MAX (50 points of 200): on an idle machine this
# "unattributed" share is the loopback's kernel time, 10-20.
run() { # name round url pid [cookie]
  local name="$1" r="$2" url="$3" pid="$4" cookie="${5:-}" q out detail un label="$1-r$2"
  q=$(wait_quiet)
  out=$(BENCH_COOKIE="$cookie" BENCH_SERVER_PID="$pid" "$BENCH/me-throughput.sh" "$url" "$label" 2>"$RUN_DIR/wrk-$label.txt") || {
    cat "$RUN_DIR/wrk-$label.txt"; return 1; }
  detail=$(grep '^# ' "$RUN_DIR/wrk-$label.txt" | tail -1)
  un=$(sed -n 's/.*unattributed=\(-*[0-9]*\)%.*/\1/p' <<<"$detail")
  if [ "${un:-0}" -gt "${BENCH_NOISE_MAX:-50}" ] || [[ "$q" == NOT-* ]]; then detail="$detail NOISY"; NOISY=$((NOISY + 1)); fi
  echo "$detail before:$q"
  echo "$out"
  RPS[$name,$r]=$(field req_per_s "$out")
  P99[$name,$r]=$(field p99_ms "$out")
}
echo "# interleaved GET /me runs"
for r in $(seq "$ROUNDS"); do
  run product "$r" "$PRODUCT_URL" "$PRODUCT_PID" "$PRODUCT_COOKIE"
  run peer "$r" "$PEER" "$PID_peer"
  run floor1 "$r" "$F1" "$PID_floor1"
  run floor2 "$r" "$F2" "$PID_floor2"
done

echo "# summary (per round: req/s and p99 ms)"
for name in product peer floor1 floor2; do
  line="$name:"
  for r in $(seq "$ROUNDS"); do line="$line r$r=${RPS[$name,$r]}/${P99[$name,$r]}ms"; done
  echo "$line  median_req_per_s=$(for r in $(seq "$ROUNDS"); do echo "${RPS[$name,$r]}"; done | median) median_p99_ms=$(for r in $(seq "$ROUNDS"); do echo "${P99[$name,$r]}"; done | median)"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ printf "%.3f", (b > 0 ? a / b : 0) }'; }
rp=$(for r in $(seq "$ROUNDS"); do ratio "${RPS[product,$r]}" "${RPS[peer,$r]}"; echo; done | median)
rf=$(for r in $(seq "$ROUNDS"); do ratio "${RPS[product,$r]}" "${RPS[floor1,$r]}"; echo; done | median)
rq=$(for r in $(seq "$ROUNDS"); do ratio "${P99[product,$r]}" "${P99[floor1,$r]}"; echo; done | median)
pp99=$(for r in $(seq "$ROUNDS"); do echo "${P99[product,$r]}"; done | median)
f99=$(for r in $(seq "$ROUNDS"); do echo "${P99[floor1,$r]}"; done | median)
verdict=$(awk -v p="$pp99" -v f="$f99" 'BEGIN{ print (p <= 1.5 * f) ? "within" : "OVER" }')
echo "RATIO product/peer req_per_s median=$rp"
echo "RATIO product/floor1 req_per_s median=$rf"
echo "P99 product median=${pp99}ms vs 1.5 x floor1 median p99 = $(awk -v f="$f99" 'BEGIN{printf "%.3f", 1.5 * f}')ms: $verdict (median per-round p99 ratio product/floor1 = $rq)"
echo "# runs marked NOISY (other load on the machine): $NOISY of $((ROUNDS * 4))"
echo "# product log: $BENCH_LOG_DIR/product.log; wrk reports: $RUN_DIR"
