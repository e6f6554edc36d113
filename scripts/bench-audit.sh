#!/usr/bin/env bash
# Audit log at scale: seeds 1,000,000 audit events into a PostgreSQL schema of its own (INSERT ... SELECT
# generate_series), starts the built server on it, and times GET /admin/audit?user_id= for the first page and
# for a deep page (reached by following next_before), plus the same without a filter and with event=; then
# prints EXPLAIN (ANALYZE, BUFFERS) of the queries the server runs for those pages, and the machine.
#
# Needs go, psql, curl and PostgreSQL (13+) and Redis on 127.0.0.1. Everything it creates (the schema, Redis
# keys under its own prefix, the binary and a temp dir) is removed on exit, unless BENCH_KEEP=1 keeps the schema.
#   BENCH_DATABASE_URL  (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable)
#   BENCH_REDIS_URL     (default redis://127.0.0.1:6379/8)
#   BENCH_ROWS          events in all (default 1000000)
#   BENCH_HOT_ROWS      events of the one user whose pages are timed, spread over the whole time (default 20000;
#                       the others get about 100 each, one event every 2.5 s back from now)
#   BENCH_LIMIT         page size (default 100)   BENCH_DEEP_PAGE  which page is "deep" (default 150)
#   BENCH_REPEAT        timed requests per page (default 50)      BENCH_PORT  the server's port (default 18095)
set -euo pipefail
cd "$(dirname "$0")/.."

db_url="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
redis_url="${BENCH_REDIS_URL:-redis://127.0.0.1:6379/8}"
rows="${BENCH_ROWS:-1000000}"
hot_rows="${BENCH_HOT_ROWS:-20000}"
limit="${BENCH_LIMIT:-100}"
deep_page="${BENCH_DEEP_PAGE:-150}"
repeat="${BENCH_REPEAT:-50}"
suffix="$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
schema="bench_audit_$suffix"
prefix="benchaudit$suffix:"
tmp="$(mktemp -d)"
server_pid=""
hot_user="00000000-0000-4000-8000-00000000beef"

log() { printf '# %s\n' "$*" >&2; }
cleanup() {
  set +e
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  if [ "${BENCH_KEEP:-}" != 1 ]; then
    psql "$db_url" -qX -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1
  else
    log "kept schema $schema"
  fi
  redis-cli -u "$redis_url" --scan --pattern "$prefix*" 2>/dev/null | xargs -r redis-cli -u "$redis_url" DEL >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
for tool in go psql curl redis-cli; do command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }; done

psql_s() { psql "$db_url" -qAtX -v ON_ERROR_STOP=1 -c "SET search_path TO $schema" -c "$1"; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
case "$db_url" in *\?*) app_db="$db_url&search_path=$schema" ;; *) app_db="$db_url?search_path=$schema" ;; esac
port="${BENCH_PORT:-18095}"
port_free "$port" || { echo "127.0.0.1:$port is taken: set BENCH_PORT" >&2; exit 1; }
url="http://127.0.0.1:$port"
export APP_ENV=production DATABASE_URL="$app_db" REDIS_URL="$redis_url" SESSION_KEY_PREFIX="$prefix" \
  SESSION_SECRET="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" HTTP_ADDR="127.0.0.1:$port" LOG_LEVEL=warn

log "building the server"
go build -o "$tmp/api" .
psql "$db_url" -qX -v ON_ERROR_STOP=1 -c "CREATE SCHEMA $schema" >/dev/null
(cd "$tmp" && ./api migrate >/dev/null)
admin_email="admin-$suffix@example.com"
admin_password="bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
(cd "$tmp" && printf '%s\n' "$admin_password" | ./api create-user --email "$admin_email" --name Bench --role admin --password-stdin >/dev/null)

log "seeding $rows events: $hot_rows of user $hot_user spread over the whole time, about 100 each for the others"
start=$(date +%s.%N)
psql_s "INSERT INTO audit_events (id, at, event, actor_id, user_id, ip, user_agent, details)
SELECT gen_random_uuid(), now() - make_interval(secs => g * 2.5),
       (ARRAY['login_succeeded','login_failed','logout','session_revoked','reauthenticated'])[1 + g % 5],
       u, u, '198.51.100.' || (g % 250), 'Mozilla/5.0 (X11; Linux x86_64) bench', jsonb_build_object('n', g)
FROM generate_series(1, $rows) AS g,
LATERAL (SELECT CASE WHEN g % ($rows / $hot_rows) = 0 THEN '$hot_user'::uuid
             ELSE ('00000000-0000-4000-8000-' || lpad(to_hex(g / 100), 12, '0'))::uuid END AS u) AS x" >/dev/null
psql_s "VACUUM ANALYZE audit_events" >/dev/null
log "seeded in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s; table $(psql_s "SELECT pg_size_pretty(pg_total_relation_size('audit_events'))") with indexes"

(cd "$tmp" && exec ./api) >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do curl -fs -o /dev/null "$url/readyz" && break; sleep 0.1; done
cookie="$(curl -fsS -D - -o /dev/null -H 'Content-Type: application/json' \
  --data "{\"email\":\"$admin_email\",\"password\":\"$admin_password\"}" "$url/login" |
  tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: *\(sessionId=[^;]*\).*/\1/p' | head -1)"
[ -n "$cookie" ] || { echo "admin login failed" >&2; tail "$tmp/server.log" >&2; exit 1; }

get() { curl -fsS -b "$cookie" "$url$1"; }
next_of() { sed -n 's/.*"next_before":"\([^"]*\)".*/\1/p'; }
# cursor_at QUERY PAGE: the before= of page PAGE (1 = first page, no cursor) of /admin/audit?QUERY
cursor_at() {
  local cursor="" i
  for ((i = 1; i < $2; i++)); do
    cursor="$(get "/admin/audit?$1&limit=$limit${cursor:+&before=$cursor}" | next_of)"
    [ -n "$cursor" ] || { echo "page $i of $1 is the last" >&2; exit 1; }
  done
  printf '%s' "$cursor"
}
# timeit LABEL PATH: REPEAT timed GETs (after 5 warm-ups) -> n, median, p95, max in ms; checks the page is full
timeit() {
  local i
  for i in 1 2 3 4 5; do get "$2" >/dev/null; done
  local n_events
  n_events="$(get "$2" | { grep -o '"event":' || true; } | wc -l)"
  for ((i = 0; i < repeat; i++)); do
    curl -fsS -o /dev/null -w '%{time_total}\n' -b "$cookie" "$url$2"
  done | sort -g | awk -v label="$1" -v n_events="$n_events" '{ a[NR] = $1 * 1000 }
    END { p95 = a[int(0.95 * NR + 0.999999)]; med = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
          printf "%-44s events/page=%d n=%d median_ms=%.2f p95_ms=%.2f max_ms=%.2f\n", label, n_events, NR, med, p95, a[NR] }'
}

deep="$(cursor_at "user_id=$hot_user" "$deep_page")"
deep_all="$(cursor_at "event=login_failed" "$deep_page")"
echo "## GET /admin/audit over $rows events (limit=$limit, deep page = page $deep_page, $repeat timed requests each)"
timeit "user_id=<hot user>, first page" "/admin/audit?user_id=$hot_user&limit=$limit"
timeit "user_id=<hot user>, page $deep_page" "/admin/audit?user_id=$hot_user&limit=$limit&before=$deep"
timeit "user_id=<a user with 100 events>, first page" "/admin/audit?user_id=00000000-0000-4000-8000-000000000064&limit=$limit"
timeit "no filter, first page" "/admin/audit?limit=$limit"
timeit "event=login_failed, first page" "/admin/audit?event=login_failed&limit=$limit"
timeit "event=login_failed, page $deep_page" "/admin/audit?event=login_failed&limit=$limit&before=$deep_all"

# The statements the server runs (GORM: SELECT * ... LIMIT limit+1), with the deep page's cursor as a literal.
offset=$(( (deep_page - 1) * limit - 1 ))
read -r deep_at deep_id < <(psql_s "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), id FROM audit_events
  WHERE user_id = '$hot_user' ORDER BY at DESC, id DESC OFFSET $offset LIMIT 1" | tr '|' ' ')
echo
echo "## EXPLAIN (ANALYZE, BUFFERS), first page of the hot user"
psql_s "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM audit_events WHERE user_id = '$hot_user' ORDER BY at DESC, id DESC LIMIT $((limit + 1))"
echo
echo "## EXPLAIN (ANALYZE, BUFFERS), page $deep_page of the hot user"
psql_s "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM audit_events WHERE user_id = '$hot_user' AND (at, id) < ('$deep_at', '$deep_id')
  ORDER BY at DESC, id DESC LIMIT $((limit + 1))"
echo
echo "## machine"
echo "nproc=$(nproc); cpu=$(sed -n 's/^model name\t*: //p' /proc/cpuinfo | head -1); $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo);" \
  "$(go version | cut -d' ' -f3); postgres $(psql "$db_url" -qAtX -c 'show server_version'); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "load: $(uptime | sed 's/.*load average/load average/')"
