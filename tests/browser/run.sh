#!/usr/bin/env bash
# Runs the real-browser test against a running API.
#   API_URL    the API (default http://127.0.0.1:8080); it must have been started with
#              APP_ENV=development COOKIE_SECURE=false COOKIE_SAMESITE=Lax CORS_ALLOWED_ORIGINS=http://127.0.0.1:$SPA_PORT
#   SPA_PORT   port of the trusted SPA origin (default 5173)
#   EVIL_PORT  port of an origin NOT in CORS_ALLOWED_ORIGINS (default 5174)
#   CHROMIUM   browser binary (default /usr/bin/chromium; Debian package "chromium")
#   BROWSER_TEST_TIMEOUT  bound for the node test run in seconds (default 300)
# Starts two static servers on 127.0.0.1, runs `node --test`, stops what it started.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

export API_URL="${API_URL:-http://127.0.0.1:8080}"
export API_URL="${API_URL%/}"
export SPA_PORT="${SPA_PORT:-5173}"
export EVIL_PORT="${EVIL_PORT:-5174}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$CHROMIUM" ]; then
  echo "tests/browser/run.sh: $CHROMIUM not found (apt-get install -y chromium)" >&2
  exit 2
fi
if [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund >&2
fi

pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT INT TERM

node "$here/static-server.mjs" "$here/spa" "$SPA_PORT" &
pids+=($!)
node "$here/static-server.mjs" "$here/evil" "$EVIL_PORT" &
pids+=($!)

wait_for() { # url seconds
  local deadline=$((SECONDS + $2))
  until curl -fs -o /dev/null --max-time 2 "$1"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "tests/browser/run.sh: $1 did not answer within $2 s" >&2
      return 1
    fi
    sleep 0.2
  done
}
wait_for "http://127.0.0.1:$SPA_PORT/" 10
wait_for "http://127.0.0.1:$EVIL_PORT/" 10
wait_for "$API_URL/healthz" 30

rc=0
timeout -k 10 "${BROWSER_TEST_TIMEOUT:-300}" node --test --test-reporter=spec "$here/spa.test.mjs" || rc=$?
exit "$rc"
