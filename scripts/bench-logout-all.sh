#!/usr/bin/env bash
# usage: scripts/bench-logout-all.sh
#
# POST /logout-all latency of the product with 0, then OTHER_SESSIONS (200,000) sessions of other
# users in Redis. Each of the REPEATS (20) measurements logs one user in SESSIONS_PER_CALL (3) times,
# then times POST /logout-all with the last cookie (curl time_total, loopback) and checks the answer
# says revoked=SESSIONS_PER_CALL. Prints both distributions and the ratio of the medians (the
# contract wants the cost to grow with the user's sessions, not with all sessions: ratio ~1).
# It also diffs Redis INFO commandstats around every call and reports any KEYS/SCAN the call made
# (Redis counts the commands run inside Lua scripts too; the Redis is shared, so another client's
# SCAN would show as well: any hit is re-checked by the next calls).
#
# The other sessions are written in the product's own format by scripts/bench/load/seed: it logs a
# template user in through HTTP and clones the session record and per-user index that login made
# (fresh random user id, session id and handle per clone, same TTL), through redis-cli --pipe.
#
# Product: as scripts/bench-me.sh (production mode, Redis db 8, prefix benchsess:, 127.0.0.1:18090).
# Deletes every benchsess:* key of Redis db 8 before and after (its own prefix: nothing else).
# Environment: OTHER_SESSIONS (200000), REPEATS (20), SESSIONS_PER_CALL (3), and bench-lib.sh's.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench-lib.sh
. "$HERE/bench-lib.sh"
trap 'del_prefix 2>/dev/null || true; stop_started; cleanup_product_dir; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
tmp="$(mktemp -d)"

OTHER_SESSIONS="${OTHER_SESSIONS:-200000}"
REPEATS="${REPEATS:-60}"
PER_CALL="${SESSIONS_PER_CALL:-3}"
USER_A=logout-all-a@example.com
TEMPLATE=logout-all-template@example.com
PW=bench-password-1
SEED_BIN=/tmp/sessauth-seed

need curl; need redis-cli
ensure_services
echo "# bench-logout-all $(date -u +%Y-%m-%dT%H:%M:%SZ)"
machine_line
(cd "$PRODUCT_DIR" && go build -o "$SEED_BIN" ./scripts/bench/load/seed)
start_product
del_prefix
ensure_user "$USER_A" "$PW" "Logout All A"
ensure_user "$TEMPLATE" "$PW" "Logout All Template"

cmdstat() { # cmd -> calls
  "${RP[@]}" info commandstats | tr -d '\r' | sed -n "s/^cmdstat_$1:calls=\([0-9]*\),.*/\1/p" | grep . || echo 0
}

measure() { # label outfile
  local i cookie t code k0 s0 k1 s1 revoked scans=0
  : >"$2"
  for i in $(seq "$REPEATS"); do
    for _ in $(seq "$PER_CALL"); do read -r cookie _ < <(login "$USER_A" "$PW"); done
    k0=$(cmdstat keys); s0=$(cmdstat scan)
    read -r code t < <(curl -sS -o "$tmp/la" -w '%{http_code} %{time_total}\n' -X POST -H "Cookie: $cookie" "$PRODUCT_URL/logout-all")
    k1=$(cmdstat keys); s1=$(cmdstat scan)
    revoked=$(sed -n 's/.*"revoked": *\([0-9]*\).*/\1/p' "$tmp/la")
    if [ "$code" != 200 ] || [ "$revoked" != "$PER_CALL" ]; then
      echo "  call $i: HTTP $code, answer $(cat "$tmp/la") (expected revoked=$PER_CALL)"
    fi
    scans=$((scans + k1 - k0 + s1 - s0))
    echo "$t" >>"$2"
  done
  echo "$1: $(stats <"$2")  KEYS+SCAN seen in Redis during the calls: $scans"
}

# registration logged the user in: one unrecorded logout-all empties its sessions (and warms up)
read -r cookie _ < <(login "$USER_A" "$PW")
curl -sS -o /dev/null -X POST -H "Cookie: $cookie" "$PRODUCT_URL/logout-all"

echo "# (1) 0 other sessions [before: $(wait_quiet)]; keys under $PRODUCT_PREFIX: $(count_prefix)"
measure "logout-all, 0 other sessions" "$tmp/la0"

echo "# seeding $OTHER_SESSIONS other users' sessions (one each) in the product's format"
m0=$(used_memory)
t0=$(date +%s.%N)
"$SEED_BIN" -url "$PRODUCT_URL" -email "$TEMPLATE" -password "$PW" -db "$PRODUCT_DB" -prefix "$PRODUCT_PREFIX" \
  -n "$OTHER_SESSIONS" 2>"$tmp/seed.err" | "${RP[@]}" --pipe >"$tmp/pipe" 2>&1 || { cat "$tmp/seed.err" "$tmp/pipe"; exit 1; }
t1=$(date +%s.%N)
sed 's/^/  /' "$tmp/seed.err"
echo "  $(tail -1 "$tmp/pipe") ($(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b - a}') s)"
m1=$(used_memory)
echo "  keys under $PRODUCT_PREFIX now: $(count_prefix); Redis used_memory +$(( (m1 - m0) / 1048576 )) MiB"

echo "# (2) $OTHER_SESSIONS other sessions [before: $(wait_quiet)]"
measure "logout-all, $OTHER_SESSIONS other sessions" "$tmp/la200"
med0=$(median <"$tmp/la0"); med1=$(median <"$tmp/la200")
echo "RATIO logout-all median with $OTHER_SESSIONS others / with 0 = $(awk -v a="$med1" -v b="$med0" 'BEGIN{printf "%.3f", a / b}') ($(awk -v a="$med1" 'BEGIN{printf "%.2f", a * 1000}') ms / $(awk -v a="$med0" 'BEGIN{printf "%.2f", a * 1000}') ms)"
