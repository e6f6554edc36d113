# shellcheck shell=bash disable=SC2154  # PID_<name> variables are set by scripts/bench/lib.sh (printf -v)
# Helpers for scripts/bench-*.sh and scripts/load-test.sh (sourced, not run).
#
# Builds and starts the product in production mode against the local PostgreSQL and Redis
# (database 8, key prefix benchsess:), and reuses the bench helpers of scripts/bench (lib.sh) for
# starting processes by PID, waiting for a quiet machine and measuring CPU. Everything talks to
# 127.0.0.1 only.
#
# Environment (all optional):
#   BENCH_PRODUCT_ADDR (127.0.0.1:18090)
#   BENCH_PRODUCT_REDIS_DB (8)      BENCH_PRODUCT_PREFIX (benchsess:)
#   BENCH_PRODUCT_DATABASE_URL (postgres://postgres@127.0.0.1:5432/test?sslmode=disable)
#   BENCH_PRODUCT_BIN (/tmp/sessauth-bench)
#   BENCH_SKIP_BUILD=1              use the existing binary

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PRODUCT_DIR="$(cd "$SCRIPTS_DIR/.." && pwd)"
BENCH="$SCRIPTS_DIR/bench"
# start_bg, stop_started, wait_http, wait_quiet, cpu_ticks, busy_ticks, redis_pid, ...
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"

port_free() { ! (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
# 127.0.0.1:18090 unless taken (this machine is shared): then the first free of 18190, 18290, ...
if [ -n "${BENCH_PRODUCT_ADDR:-}" ]; then
  PRODUCT_ADDR="$BENCH_PRODUCT_ADDR"
else
  PRODUCT_ADDR=127.0.0.1:18090
  for _p in 18090 18190 18290 18390 18490; do
    if port_free "127.0.0.1:$_p"; then PRODUCT_ADDR="127.0.0.1:$_p"; break; fi
  done
  [ "$PRODUCT_ADDR" = 127.0.0.1:18090 ] || echo "# 127.0.0.1:18090 is taken: the product listens on $PRODUCT_ADDR" >&2
fi
PRODUCT_URL="http://$PRODUCT_ADDR"
PRODUCT_DB="${BENCH_PRODUCT_REDIS_DB:-8}"
PRODUCT_PREFIX="${BENCH_PRODUCT_PREFIX:-benchsess:}"
PRODUCT_BIN="${BENCH_PRODUCT_BIN:-/tmp/sessauth-bench}"
PRODUCT_DATABASE_URL="${BENCH_PRODUCT_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
RP=(redis-cli -h 127.0.0.1 -p 6379 -n "$PRODUCT_DB")
UA_DEFAULT="bench-scripts/1.0 (curl)"

need() { command -v "$1" >/dev/null 2>&1 || { echo "missing tool: $1" >&2; return 1; }; }

ensure_wrk() {
  command -v wrk >/dev/null 2>&1 && return 0
  echo "installing wrk (apt-get install -y wrk)" >&2
  apt-get install -y wrk >&2 || { apt-get update >&2 && apt-get install -y wrk >&2; }
}

# ensure_services: start PostgreSQL / Redis when they do not answer (as the brief of this repo says).
ensure_services() {
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "Redis is down: starting it" >&2
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    for _ in $(seq 50); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  if ! psql "$PRODUCT_DATABASE_URL" -qAtX -c 'select 1' >/dev/null 2>&1; then
    echo "PostgreSQL is down: starting it" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
    for _ in $(seq 100); do psql "$PRODUCT_DATABASE_URL" -qAtX -c 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
  fi
}

# One secret per script run: 48 random bytes, base64 (64 characters).
BENCH_SESSION_SECRET="${BENCH_SESSION_SECRET:-$(head -c 48 /dev/urandom | base64 -w0)}"

# PRODUCT_ENV: the command prefix that runs a program with the product's production environment
# (env execs the program, so a PID from start_bg is the server's own). The server runs in an empty
# directory so that no .env of a work tree leaks into the measurement. BENCH_PRODUCT_EXTRA_ENV adds
# "KEY=value KEY2=value2" (no spaces inside values).
PRODUCT_RUN_DIR="$(mktemp -d /tmp/sessauth-bench-run.XXXXXX)"
read -r -a _extra_env <<<"${BENCH_PRODUCT_EXTRA_ENV:-}"
PRODUCT_ENV=(env -C "$PRODUCT_RUN_DIR" APP_ENV=production
  DATABASE_URL="$PRODUCT_DATABASE_URL"
  REDIS_URL="redis://127.0.0.1:6379/$PRODUCT_DB"
  SESSION_SECRET="$BENCH_SESSION_SECRET"
  MFA_ENCRYPTION_KEY="$BENCH_SESSION_SECRET"
  COOKIE_SECURE=true
  HTTP_ADDR="$PRODUCT_ADDR"
  SESSION_KEY_PREFIX="$PRODUCT_PREFIX"
  "${_extra_env[@]}")
product_env() { "${PRODUCT_ENV[@]}" "$@"; }

build_product() {
  if [ "${BENCH_SKIP_BUILD:-}" = 1 ] && [ -x "$PRODUCT_BIN" ]; then return 0; fi
  echo "building: (cd $PRODUCT_DIR && go build -o $PRODUCT_BIN .)" >&2
  (cd "$PRODUCT_DIR" && go build -o "$PRODUCT_BIN" .)
}

migrate_product() {
  echo "migrating: $PRODUCT_BIN migrate" >&2
  product_env "$PRODUCT_BIN" migrate >&2
}

# start_product: build, migrate, start (PID in PID_product), wait for /healthz and /readyz.
start_product() {
  if ! port_free "$PRODUCT_ADDR"; then
    echo "$PRODUCT_ADDR is already in use: set BENCH_PRODUCT_ADDR" >&2
    return 1
  fi
  build_product
  migrate_product
  start_bg product "${PRODUCT_ENV[@]}" "$PRODUCT_BIN"
  PRODUCT_PID="$PID_product"
  wait_http "$PRODUCT_URL/healthz" 30 || { tail -20 "$BENCH_LOG_DIR/product.log" >&2; return 1; }
  wait_http "$PRODUCT_URL/readyz" 30 || { tail -20 "$BENCH_LOG_DIR/product.log" >&2; return 1; }
  echo "product serving on $PRODUCT_URL, server pid $PRODUCT_PID" >&2
}

# del_prefix: delete every key under the product's bench prefix in its bench database.
del_prefix() {
  "${RP[@]}" --scan --pattern "${PRODUCT_PREFIX}*" | xargs -r -n 1000 "${RP[@]}" unlink >/dev/null
}
count_prefix() { "${RP[@]}" --scan --pattern "${PRODUCT_PREFIX}*" | wc -l; }
used_memory() { "${RP[@]}" info memory | tr -d '\r' | sed -n 's/^used_memory://p'; }

# register EMAIL PASSWORD NAME: prints the HTTP code (201, 409, or 429 when the per-IP limit hit).
register() {
  curl -sS -o /dev/null -w '%{http_code}' -X POST "$PRODUCT_URL/register" \
    -H 'Content-Type: application/json' -A "$UA_DEFAULT" \
    --data "{\"email\":\"$1\",\"password\":\"$2\",\"name\":\"$3\"}"
}

# ensure_user EMAIL PASSWORD NAME: register through HTTP; when the per-IP register limit answers
# 429, fall back to the product's own CLI (create-user --password-stdin).
ensure_user() {
  local code
  code=$(register "$1" "$2" "$3")
  case "$code" in
    201|409) return 0 ;;
    429) printf '%s' "$2" | product_env "$PRODUCT_BIN" create-user --email "$1" --name "$3" --role user \
           --password-stdin >/dev/null 2>&1 || true; return 0 ;;
    *) echo "POST /register $1 answered $code" >&2; return 1 ;;
  esac
}

# login EMAIL PASSWORD [USER_AGENT]: prints "name=value time_total_s" of the session cookie.
login() {
  local tmpd code t
  tmpd=$(mktemp -d)
  read -r code t < <(curl -sS -D "$tmpd/h" -o "$tmpd/b" -w '%{http_code} %{time_total}\n' -X POST \
    "$PRODUCT_URL/login" -H 'Content-Type: application/json' -A "${3:-$UA_DEFAULT}" \
    --data "{\"email\":\"$1\",\"password\":\"$2\"}")
  if [ "$code" != 200 ]; then
    echo "POST /login $1 answered $code: $(cat "$tmpd/b")" >&2; rm -rf "$tmpd"; return 1
  fi
  echo "$(tr -d '\r' <"$tmpd/h" | sed -n 's/^[Ss]et-[Cc]ookie: *\(\(__Host-\)\{0,1\}sessionId=[^;]*\).*/\1/p' | head -1) $t"
  rm -rf "$tmpd"
}

# stats: numbers (seconds) on stdin -> "n=.. min_ms=.. p50_ms=.. mean_ms=.. p90_ms=.. max_ms=.."
stats() {
  sort -g | awk '{ a[NR] = $1 * 1000; s += $1 * 1000 }
    END { if (NR == 0) { print "n=0"; exit }
          p50 = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
          i90 = int(0.9 * NR + 0.999999); if (i90 < 1) i90 = 1
          printf "n=%d min_ms=%.2f p50_ms=%.2f mean_ms=%.2f p90_ms=%.2f max_ms=%.2f\n", NR, a[1], p50, s / NR, a[i90], a[NR] }'
}
# median: numbers on stdin -> their median
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# Peak resident memory of a process: VmHWM is the peak since start (or since reset_hwm).
vm_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; }
reset_hwm() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null || echo "cannot reset VmHWM of $1" >&2; }

# field NAME LINE: value of NAME=value in a "k=v k=v" line
field() { sed -n "s/.*[ ^]$1=\([^ ]*\).*/\1/p" <<<" $2"; }

machine_line() {
  echo "# host: $(nproc) cpus, $(sed -n 's/^model name\t*: //p' /proc/cpuinfo | head -1), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r); $(go version | cut -d' ' -f3), redis $(redis-cli info server | tr -d '\r' | sed -n 's/^redis_version://p'), postgres $(psql "$PRODUCT_DATABASE_URL" -qAtX -c 'show server_version' 2>/dev/null), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
  echo "# load before: $(uptime | sed 's/.*load average/load average/')"
}

cleanup_product_dir() { rm -rf "$PRODUCT_RUN_DIR"; }
