#!/usr/bin/env bash
# Runs the real-browser test against a running API.
# Everything is on localhost, never 127.0.0.1: browsers refuse passkeys (WebAuthn) on an IP address.
#   API_URL    the API (default http://localhost:8080); it must have been started with
#              APP_ENV=development COOKIE_SECURE=false COOKIE_SAMESITE=Lax CORS_ALLOWED_ORIGINS=http://localhost:$SPA_PORT
#              FRONTEND_URL=http://localhost:$SPA_PORT (the passkeys' RP ID is then localhost and the SPA their
#              origin; or WEBAUTHN_RP_ID=localhost WEBAUTHN_RP_ORIGINS=http://localhost:$SPA_PORT) and, for the
#              walks through mail, MAIL_URL at a Mailpit
#   MAILPIT_API  that Mailpit's HTTP API (e.g. http://127.0.0.1:8025); unset, the walks through mail
#              (verification link, forgot password -> reset page -> login) are skipped
#   SPA_PORT   port of the trusted SPA origin, http://localhost:$SPA_PORT (default 5173)
#   EVIL_PORT  port of an untrusted origin, http://localhost:$EVIL_PORT: NOT in CORS_ALLOWED_ORIGINS nor in
#              WEBAUTHN_RP_ORIGINS, but on the RP ID (default 5174)
#   CHROMIUM   browser binary (default /usr/bin/chromium; Debian package "chromium")
#   SCREENSHOT_DIR        where spa-logged-in.png, spa-logged-out.png, spa-reset-password.png, spa-two-factor.png,
#                         spa-two-factor-login.png, spa-passkeys.png and spa-passkey-second-step.png go
#                         (default docs/; CI points it elsewhere so the tree stays clean)
#   BROWSER_TEST_TIMEOUT  bound for the node test run in seconds (default 300)
# Starts two static servers (listening on 127.0.0.1, opened as localhost), checks that the API trusts the SPA
# origin and has passkeys on, runs `node --test`, stops what it started. Exits non-zero on any failure; every
# wait is bounded.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

export API_URL="${API_URL:-http://localhost:8080}"
export API_URL="${API_URL%/}"
export SPA_PORT="${SPA_PORT:-5173}"
export EVIL_PORT="${EVIL_PORT:-5174}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ -n "${SCREENSHOT_DIR:-}" ]; then
  mkdir -p "$SCREENSHOT_DIR"
  SCREENSHOT_DIR="$(cd "$SCREENSHOT_DIR" && pwd)"
  export SCREENSHOT_DIR
fi

fail() { echo "tests/browser/run.sh: $*" >&2; exit 2; }

[ -x "$CHROMIUM" ] || fail "$CHROMIUM not found (apt-get install -y chromium, or set CHROMIUM)"
command -v node >/dev/null || fail "node not found"
command -v curl >/dev/null || fail "curl not found"
if [ ! -d node_modules/playwright-core ]; then
  timeout 600 npm ci --no-audit --no-fund >&2
fi
for port in "$SPA_PORT" "$EVIL_PORT"; do
  if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/"; then
    fail "port $port is already in use (set SPA_PORT / EVIL_PORT)"
  fi
done

pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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
wait_for "http://localhost:$SPA_PORT/" 10
wait_for "http://localhost:$EVIL_PORT/" 10
for pid in "${pids[@]}"; do
  kill -0 "$pid" 2>/dev/null || fail "a static server exited (port taken?)"
done
wait_for "$API_URL/healthz" 30

# The test needs an API that trusts the SPA origin; say so plainly instead of failing in the browser.
case "$API_URL" in
  http://localhost:* | http://localhost) ;;
  *) fail "API_URL must be on http://localhost (got $API_URL): the SPA runs there, and the API must be on the same site" ;;
esac
allowed="$(curl -s -o /dev/null -D - --max-time 5 -X OPTIONS "$API_URL/login" \
  -H "Origin: http://localhost:$SPA_PORT" -H 'Access-Control-Request-Method: POST' \
  -H 'Access-Control-Request-Headers: content-type' | tr -d '\r' |
  sed -n 's/^[Aa]ccess-[Cc]ontrol-[Aa]llow-[Oo]rigin: *//p')"
if [ "$allowed" != "http://localhost:$SPA_PORT" ]; then
  fail "$API_URL does not allow the SPA origin http://localhost:$SPA_PORT (got Access-Control-Allow-Origin '${allowed}'); start it with CORS_ALLOWED_ORIGINS=http://localhost:$SPA_PORT COOKIE_SAMESITE=Lax COOKIE_SECURE=false"
fi
# Passkeys off (no origin), their routes answer 404; on, GET /passkeys without a session is 401.
passkeys="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$API_URL/passkeys")"
if [ "$passkeys" != 401 ]; then
  fail "$API_URL has passkeys off (GET /passkeys answered $passkeys, not 401); start it with FRONTEND_URL=http://localhost:$SPA_PORT, or WEBAUTHN_RP_ORIGINS=http://localhost:$SPA_PORT"
fi

echo "browser test: API $API_URL, SPA http://localhost:$SPA_PORT, untrusted origin http://localhost:$EVIL_PORT, $CHROMIUM"
rc=0
timeout -k 10 "${BROWSER_TEST_TIMEOUT:-300}" node --test --test-reporter=spec "$here/spa.test.mjs" || rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "tests/browser/run.sh: the browser test overran ${BROWSER_TEST_TIMEOUT:-300} s" >&2
fi
exit "$rc"
