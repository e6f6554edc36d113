# shellcheck shell=bash
# Helpers for the bench scripts (sourced, not run): me-throughput.sh and scripts/bench-lib.sh.
# Processes started with start_bg are remembered by PID and stopped by PID (never by name), since
# other people's processes share this machine.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PEER_DIR="$BENCH_DIR/peers/express-seed"

# Redis database used by every bench server (peer and floors), so that the seeded keys and
# sessions never mix with anything else in the shared Redis. Postgres: database `test`.
BENCH_REDIS_DB="${BENCH_REDIS_DB:-9}"
BENCH_REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379/$BENCH_REDIS_DB}"
BENCH_DATABASE_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
BENCH_LOG_DIR="${BENCH_LOG_DIR:-${TMPDIR:-/tmp}/bench-logs}"
mkdir -p "$BENCH_LOG_DIR"

STARTED_PIDS=()

# start_bg NAME CMD...: run CMD in the background, log to $BENCH_LOG_DIR/NAME.log, print nothing.
# The PID is in the variable PID_<NAME> and in STARTED_PIDS.
start_bg() {
  local name="$1"; shift
  "$@" >"$BENCH_LOG_DIR/$name.log" 2>&1 &
  local pid=$!
  STARTED_PIDS+=("$pid")
  printf -v "PID_${name//-/_}" '%s' "$pid"
  echo "started $name pid=$pid (log $BENCH_LOG_DIR/$name.log)" >&2
}

stop_started() {
  local pid
  for pid in "${STARTED_PIDS[@]:-}"; do
    [ -n "$pid" ] || continue
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
    fi
  done
  for pid in "${STARTED_PIDS[@]:-}"; do
    [ -n "$pid" ] || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  STARTED_PIDS=()
}

# wait_http URL [seconds]: wait until URL answers 200.
wait_http() {
  local url="$1" secs="${2:-30}" i
  for i in $(seq $((secs * 10))); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)" = 200 ]; then return 0; fi
    sleep 0.1
  done
  echo "timeout waiting for $url" >&2
  return 1
}

# cpu_ticks PID...: sum of utime+stime (clock ticks) of the given live processes.
cpu_ticks() {
  local t=0 p v
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    v=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null) || continue
    t=$((t + ${v:-0}))
  done
  echo "$t"
}

# pg_sample: one line "pid ticks" per live PostgreSQL process (server + backends).
# (cat, not awk FILES: mawk stops at the first process that vanished between glob and read)
pg_sample() { cat /proc/[0-9]*/stat 2>/dev/null | awk '$2 == "(postgres)" { print $1, $14 + $15 }' || true; }

# pg_sampler FILE: append pg_sample to FILE every 0.5 s until killed. Backends that exit during a
# run (pgx closes a connection whose query was cancelled when wrk hangs up) keep their last sample.
pg_sampler() { while :; do pg_sample >>"$1"; echo "--" >>"$1"; sleep 0.5; done; }

# pg_ticks_delta FILE: CPU ticks used by PostgreSQL processes between the first and the last
# sample block in FILE (a process first seen later counts from 0: it started during the run).
pg_ticks_delta() {
  awk '$1 == "--" { blk++; next }
       { if (!($1 in last)) first[$1] = (blk == 0 ? $2 : 0); last[$1] = $2 }
       END { t = 0; for (p in last) t += last[p] - first[p]; print t }' "$1"
}

# busy_ticks: "busy total" ticks of the whole machine from /proc/stat (all CPUs).
busy_ticks() { awk '/^cpu /{ b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat; }

# machine_busy_pct SECONDS: busy percent of the whole machine (200 = both cores) over SECONDS.
machine_busy_pct() {
  local b0 t0 b1 t1
  read -r b0 t0 < <(busy_ticks); sleep "${1:-1}"; read -r b1 t1 < <(busy_ticks)
  awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) -v n="$(nproc)" 'BEGIN{printf "%.0f", (t > 0 ? b / t : 0) * n * 100}'
}

# wait_quiet [MAX_SECONDS] [THRESHOLD]: this machine is shared (other sessions may run loads on
# it). Wait until the background load over 1 s is under THRESHOLD percent (default 25, of 200),
# at most MAX_SECONDS (default 120). Prints "quiet=<busy>%" or "NOT-quiet=<busy>%".
wait_quiet() {
  local max="${1:-${BENCH_QUIET_MAX:-120}}" thr="${2:-${BENCH_QUIET_THRESHOLD:-25}}" b i
  for ((i = 0; i < max; i++)); do
    b=$(machine_busy_pct 1)
    if [ "$b" -lt "$thr" ]; then echo "quiet=${b}%"; return 0; fi
  done
  echo "NOT-quiet=${b}%"
}

redis_pid() { redis-cli -h 127.0.0.1 -p 6379 info server 2>/dev/null | awk -F: '/^process_id:/{gsub(/\r/,"",$2); print $2}'; }

build_floor() {
  (cd "$BENCH_DIR/floor" && go build -o "$BENCH_DIR/floor/floor" .)
}

# ensure_peer_deps: npm ci from the peer's package-lock.json (node_modules is not committed).
ensure_peer_deps() {
  if [ ! -d "$PEER_DIR/node_modules" ]; then
    (cd "$PEER_DIR" && npm ci --no-audit --no-fund >&2)
  fi
}

# start_peer NAME PORT [extra env assignments...]
start_peer() {
  local name="$1" port="$2"; shift 2
  start_bg "$name" env PORT="$port" REDIS_URL="$BENCH_REDIS_URL" DATABASE_URL="$BENCH_DATABASE_URL" \
    COOKIE_SECURE=false "$@" "$PEER_DIR/start.sh"
  wait_http "http://127.0.0.1:$port/healthz" 60
}

# start_floor NAME MODE PORT
start_floor() {
  local name="$1" mode="$2" port="$3"
  start_bg "$name" env FLOOR_MODE="$mode" FLOOR_ADDR="127.0.0.1:$port" REDIS_URL="$BENCH_REDIS_URL" \
    DATABASE_URL="$BENCH_DATABASE_URL" "$BENCH_DIR/floor/floor"
  wait_http "http://127.0.0.1:$port/healthz" 30
}
