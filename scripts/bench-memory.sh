#!/usr/bin/env bash
# usage: scripts/bench-memory.sh
#
# Redis memory per session of the product: growth of INFO used_memory over SESSIONS (100,000)
# sessions, one per user, each logged in with a 120-byte User-Agent, printed as bytes/session.
# The sessions are the product's own records: scripts/bench/load/seed logs a template user in through HTTP
# (120-byte User-Agent) and clones the session record and that user's index (fresh random user id,
# session id and handle per clone, same TTL), through redis-cli --pipe. MEMORY USAGE of one clone's
# keys and the template record itself are printed too.
# Cross-check (REAL_USERS, default 100; 0 skips it): that many distinct users are created with the
# product's CLI (create-user --password-stdin) and each logs in once through HTTP with the same
# User-Agent; their used_memory growth per session is printed beside the clones' figure.
# Reference (PEER_REFERENCE=1): the express-seed peer's record format, written by
# scripts/bench/gen-sessions.mjs under the prefix benchpeerfmt: in the same database, then deleted.
#
# Product: as scripts/bench-me.sh (production, Redis db 8, prefix benchsess:, 127.0.0.1:18090).
# Deletes every benchsess:* key of Redis db 8 before and after (its own prefix: nothing else).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench-lib.sh
. "$HERE/bench-lib.sh"
trap 'del_prefix 2>/dev/null || true; stop_started; cleanup_product_dir; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
tmp="$(mktemp -d)"

SESSIONS="${SESSIONS:-100000}"
REAL_USERS="${REAL_USERS:-100}"
UA120="$(printf 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 bench-ua-pad-%s' xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx | cut -c1-120)"
TEMPLATE=memory-template@example.com
PW=bench-password-1
SEED_BIN=/tmp/sessauth-seed

need curl; need redis-cli
ensure_services
echo "# bench-memory $(date -u +%Y-%m-%dT%H:%M:%SZ); User-Agent ${#UA120} bytes"
machine_line
(cd "$PRODUCT_DIR" && go build -o "$SEED_BIN" ./scripts/bench/load/seed)
start_product
del_prefix
ensure_user "$TEMPLATE" "$PW" "Memory Template"
seed() { "$SEED_BIN" -url "$PRODUCT_URL" -email "$TEMPLATE" -password "$PW" -user-agent "$UA120" \
  -db "$PRODUCT_DB" -prefix "$PRODUCT_PREFIX" "$@"; }

# The template's own session exists before m0 (and the second seed run replaces it by another).
seed -describe 2>"$tmp/describe"
sed 's/^/  /' "$tmp/describe"
sleep 1
m0=$(used_memory); d0=$("${RP[@]}" info memory | tr -d '\r' | sed -n 's/^used_memory_dataset://p')
seed -n "$SESSIONS" 2>/dev/null | "${RP[@]}" --pipe >"$tmp/pipe" 2>&1 || { cat "$tmp/pipe"; exit 1; }
sleep 1
m1=$(used_memory); d1=$("${RP[@]}" info memory | tr -d '\r' | sed -n 's/^used_memory_dataset://p')
echo "  $(tail -1 "$tmp/pipe")"
keys=$(count_prefix)
echo "keys under $PRODUCT_PREFIX: $keys (expected 2 per session: record + index, plus the template's)"
echo "MEMORY used_memory grew $((m1 - m0)) bytes for $SESSIONS sessions: $(( (m1 - m0) / SESSIONS )) bytes/session (used_memory_dataset: $(( (d1 - d0) / SESSIONS )) bytes/session)"

# one clone's keys
# (sed -n 1p reads to the end: no SIGPIPE under pipefail)
rec=$("${RP[@]}" --scan --pattern "${PRODUCT_PREFIX}*" | grep -E "^${PRODUCT_PREFIX}[A-Za-z0-9_-]{40,}\$" | sed -n 1p)
idx=$("${RP[@]}" --scan --pattern "${PRODUCT_PREFIX}u:*" | sed -n 1p)
echo "other keys under the prefix: $("${RP[@]}" --scan --pattern "${PRODUCT_PREFIX}*" | grep -vE "^${PRODUCT_PREFIX}([A-Za-z0-9_-]{40,}|u:.*)\$" | tr '\n' ' ')"
echo "one clone: record $rec: MEMORY USAGE $("${RP[@]}" memory usage "$rec") B, STRLEN $("${RP[@]}" strlen "$rec") B, TTL $("${RP[@]}" ttl "$rec") s"
echo "           index  ${idx:-none}: MEMORY USAGE $("${RP[@]}" memory usage "$idx" 2>/dev/null) B, $("${RP[@]}" type "$idx") of $("${RP[@]}" hlen "$idx" 2>/dev/null) fields, TTL $("${RP[@]}" ttl "$idx") s"

if [ "${PEER_REFERENCE:-1}" = 1 ] && command -v node >/dev/null; then
  # the express-seed peer's record (connect-redis JSON: cookie block + userId/email/role, no index),
  # as scripts/bench/gen-sessions.mjs writes it, under a prefix of our own in the same db
  pp="benchpeerfmt:"
  sleep 1; p0=$(used_memory)
  node "$BENCH/gen-sessions.mjs" "$SESSIONS" "$pp" | "${RP[@]}" --pipe >"$tmp/pipe2" 2>&1
  sleep 1; p1=$(used_memory)
  echo "MEMORY reference, the peer's format (gen-sessions.mjs, one key per session, no user index, no IP/User-Agent): $(( (p1 - p0) / SESSIONS )) bytes/session"
  "${RP[@]}" --scan --pattern "${pp}*" | xargs -r -n 1000 "${RP[@]}" unlink >/dev/null
fi

if [ "$REAL_USERS" -gt 0 ]; then
  echo "# cross-check: $REAL_USERS distinct users created with the CLI, each logged in once through HTTP"
  run_id=$(date +%s)
  for i in $(seq "$REAL_USERS"); do
    printf '%s' "$PW" | product_env "$PRODUCT_BIN" create-user --email "mem-$run_id-$i@example.com" \
      --name "Mem $i" --role user --password-stdin >/dev/null 2>>"$tmp/cli.err" || { echo "create-user failed:"; tail -3 "$tmp/cli.err"; exit 1; }
  done
  sleep 1
  r0=$(used_memory)
  for i in $(seq "$REAL_USERS"); do login "mem-$run_id-$i@example.com" "$PW" "$UA120" >/dev/null; done
  sleep 1
  r1=$(used_memory)
  echo "MEMORY real logins: used_memory grew $((r1 - r0)) bytes for $REAL_USERS sessions: $(( (r1 - r0) / REAL_USERS )) bytes/session (small sample: client buffers add noise)"
  psql "$PRODUCT_DATABASE_URL" -qAtX -c "DELETE FROM users WHERE email LIKE 'mem-$run_id-%@example.com'" >/dev/null 2>&1 || true
fi
