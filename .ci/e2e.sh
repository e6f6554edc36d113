#!/usr/bin/env bash
# End-to-end CI: the built server over real PostgreSQL and Redis, driven by the Postman collection
# (twice, to prove it is repeatable, then once through Prism's validating proxy, which fails on any
# answer that does not match api/openapi.yaml) and by the real-browser test. First, the OpenAPI
# document is linted (redocly, no problem allowed); last, the README's curl blocks run as written in
# bash and zsh (.ci/readme-commands.sh, on a server of its own with the embedded default).
# Needs PostgreSQL on 127.0.0.1:5432 (database "test") and Redis on 127.0.0.1:6379 already up;
# installs what is missing (npm packages with `npm ci`, Debian's chromium and zsh). The server sends its
# mail to Mailpit (the browser test reads a reset link from it): the one .ci/run started
# (TEST_MAIL_URL, TEST_MAILPIT_API), else one started here from MAILPIT_BIN or the CI cache, built there
# with `go install` when missing (as .ci/run does). Everything it starts or creates (server, proxy,
# static servers, its own Mailpit, the e2e_<random> schema, Redis keys under its own prefix, a temp
# dir) is removed on exit. Every step is bounded in time; any failure exits non-zero.
#   E2E_DATABASE_URL  (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable)
#   E2E_REDIS_URL     (default redis://127.0.0.1:6379/0)
#   TEST_MAIL_URL, TEST_MAILPIT_API  a running Mailpit (both, or neither)
#   E2E_API_PORT, E2E_SPA_PORT, E2E_EVIL_PORT, E2E_PRISM_PORT  (default: free ports)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[e2e] %s\n' "$*"; }
die() { printf '[e2e] FAIL: %s\n' "$*" >&2; exit 1; }
root_cmd=(); [ "$(id -u)" -eq 0 ] || root_cmd=(sudo)

pg_url="${E2E_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
redis_url="${E2E_REDIS_URL:-redis://127.0.0.1:6379/0}"
suffix="$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
schema="e2e_$suffix"
prefix="e2e$suffix:"
tmp="$(mktemp -d)"
server_pid=""
prism_pid=""
mailpit_pid=""
schema_created=""

cleanup() {
  local rc=$?
  set +e
  if [ -n "$prism_pid" ] && kill -0 "$prism_pid" 2>/dev/null; then
    kill -TERM "$prism_pid" 2>/dev/null
    wait "$prism_pid" 2>/dev/null
  fi
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  if [ -n "$mailpit_pid" ] && kill -0 "$mailpit_pid" 2>/dev/null; then
    kill -TERM "$mailpit_pid" 2>/dev/null
    wait "$mailpit_pid" 2>/dev/null
  fi
  if [ "$rc" -ne 0 ] && [ -s "$tmp/server.log" ]; then
    log "last lines of the server log:"
    tail -n 40 "$tmp/server.log" >&2
  fi
  if [ -n "$schema_created" ]; then
    PGOPTIONS='-c client_min_messages=warning' timeout 30 psql "$pg_url" -qX -v ON_ERROR_STOP=1 -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null ||
      log "could not drop schema $schema"
  fi
  # Keys under this run's own prefix only (sessions and throttle counters also expire by themselves).
  timeout 30 bash -c 'redis-cli -u "$1" --scan --pattern "$2*" | xargs -r -n 100 redis-cli -u "$1" DEL >/dev/null' _ "$redis_url" "$prefix" ||
    log "could not delete Redis keys under $prefix"
  rm -rf "$tmp"
  if [ "$rc" -eq 0 ]; then log "end-to-end tests passed"; else log "end-to-end tests FAILED (exit $rc)"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools -------------------------------------------------------------------------------------
for tool in go curl psql pg_isready redis-cli od; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
apt=("${root_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q)
apt_install() {
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    timeout 300 "${apt[@]}" update || return 1
  fi
  timeout 900 "${apt[@]}" install -y "$@" ||
    { timeout 300 "${apt[@]}" update && timeout 900 "${apt[@]}" install -y "$@"; }
}
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "installing nodejs and npm"
  apt_install nodejs npm || die "apt-get install nodejs npm failed"
fi
if [ ! -x node_modules/.bin/newman ] || [ ! -x node_modules/.bin/prism ] || [ ! -x node_modules/.bin/redocly ]; then
  log "npm ci"
  timeout 900 npm ci --no-audit --no-fund || die "npm ci failed"
fi
if [ ! -x /usr/bin/chromium ]; then
  log "installing chromium"
  apt_install chromium || die "apt-get install chromium failed"
fi
if ! command -v zsh >/dev/null; then
  log "installing zsh"
  apt_install zsh || die "apt-get install zsh failed"
fi

log "OpenAPI lint (redocly)"
timeout 120 npm run --silent lint:openapi || die "api/openapi.yaml has lint problems"

free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}
api_port="${E2E_API_PORT:-$(free_port)}"
spa_port="${E2E_SPA_PORT:-$(free_port)}"
evil_port="${E2E_EVIL_PORT:-$(free_port)}"
while [ "$spa_port" = "$api_port" ] || [ "$evil_port" = "$api_port" ] || [ "$evil_port" = "$spa_port" ]; do
  evil_port="$(free_port)"; spa_port="$(free_port)"
done
prism_port="${E2E_PRISM_PORT:-$(free_port)}"
while [ "$prism_port" = "$api_port" ] || [ "$prism_port" = "$spa_port" ] || [ "$prism_port" = "$evil_port" ]; do
  prism_port="$(free_port)"
done
api_url="http://127.0.0.1:$api_port"
# The browser reaches the API, the SPA and the untrusted page on localhost: browsers refuse passkeys (WebAuthn)
# on an IP address, and the SPA and the API must be on one site for the SameSite cookie. Everything listens on
# 127.0.0.1; curl, newman and Prism keep using the address.
browser_api_url="http://localhost:$api_port"
spa_origin="http://localhost:$spa_port"

# --- dependencies ------------------------------------------------------------------------------
timeout 10 pg_isready -q -d "$pg_url" || die "PostgreSQL does not answer at $pg_url"
[ "$(timeout 10 redis-cli -u "$redis_url" ping 2>/dev/null)" = "PONG" ] || die "Redis does not answer at $redis_url"

# --- Mailpit ------------------------------------------------------------------------------------
if [ -n "${TEST_MAIL_URL:-}" ] || [ -n "${TEST_MAILPIT_API:-}" ]; then
  [ -n "${TEST_MAIL_URL:-}" ] && [ -n "${TEST_MAILPIT_API:-}" ] || die "set both TEST_MAIL_URL and TEST_MAILPIT_API, or neither"
  mail_url="$TEST_MAIL_URL"
  mailpit_api="${TEST_MAILPIT_API%/}"
else
  # shellcheck source=mailpit.sh
  . .ci/mailpit.sh
  mailpit_bin="${MAILPIT_BIN:-}"
  if [ ! -x "$mailpit_bin" ]; then
    mailpit_bin=$(mailpit_binary) || die "building Mailpit failed"
  fi
  taken=" $api_port $spa_port $evil_port $prism_port "
  mailpit_smtp="$(free_port)"
  while [[ "$taken" == *" $mailpit_smtp "* ]]; do mailpit_smtp="$(free_port)"; done
  mailpit_http="$(free_port)"
  while [[ "$taken $mailpit_smtp " == *" $mailpit_http "* ]]; do mailpit_http="$(free_port)"; done
  mkdir -p "$tmp/mailpit"
  "$mailpit_bin" --smtp "127.0.0.1:$mailpit_smtp" --listen "127.0.0.1:$mailpit_http" --database "$tmp/mailpit/mailpit.db" \
    --disable-version-check --quiet --max 5000 >"$tmp/mailpit/mailpit.log" 2>&1 &
  mailpit_pid=$!
  mail_url="smtp://127.0.0.1:$mailpit_smtp?tls=none"
  mailpit_api="http://127.0.0.1:$mailpit_http"
fi
ready=""
deadline=$((SECONDS + 20))
while [ "$SECONDS" -lt "$deadline" ]; do
  if [ -n "$mailpit_pid" ] && ! kill -0 "$mailpit_pid" 2>/dev/null; then
    cat "$tmp/mailpit/mailpit.log" >&2; die "Mailpit exited at start"
  fi
  if curl -fs -o /dev/null --max-time 2 "$mailpit_api/readyz"; then ready=1; break; fi
  sleep 0.2
done
[ -n "$ready" ] || die "Mailpit did not answer at $mailpit_api within 20 s"
log "Mailpit: $mailpit_api"

log "building the server"
timeout 600 go build -o "$tmp/api" . || die "go build failed"

log "creating schema $schema"
timeout 30 psql "$pg_url" -qX -v ON_ERROR_STOP=1 -c "CREATE SCHEMA $schema" >/dev/null || die "create schema $schema failed"
schema_created=1
case "$pg_url" in *\?*) database_url="$pg_url&search_path=$schema" ;; *) database_url="$pg_url?search_path=$schema" ;; esac

# The server runs in $tmp, so no .env from the tree is read; these settings override the caller's.
export APP_ENV=development HTTP_ADDR="127.0.0.1:$api_port" DATABASE_URL="$database_url" REDIS_URL="$redis_url"
export SESSION_KEY_PREFIX="$prefix" SESSION_SECRET="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
export COOKIE_SECURE=false COOKIE_SAMESITE=Lax CORS_ALLOWED_ORIGINS="$spa_origin"
export REGISTER_IP_MAX=1000 ARGON2_MEMORY_KIB=64 ARGON2_ITERATIONS=1 ARGON2_PARALLELISM=1 HASH_CONCURRENCY=4
export LOG_LEVEL=info
# Mail to Mailpit; its links open the SPA of the browser test.
export MAIL_URL="$mail_url" FRONTEND_URL="$spa_origin"
# Passkeys on, for the SPA's origin only (the browser test's untrusted page, on another localhost port, is on the
# RP ID but not one of its origins); these are also the defaults FRONTEND_URL gives, set here to be plain.
export WEBAUTHN_RP_ID=localhost WEBAUTHN_RP_ORIGINS="$spa_origin"

log "migrating and creating the admin"
(cd "$tmp" && timeout 60 ./api migrate) || die "migrate failed"
admin_email="admin-$suffix@example.com"
admin_password="e2e-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
(cd "$tmp" && printf '%s\n' "$admin_password" |
  timeout 60 ./api create-user --email "$admin_email" --name "E2E Admin" --role admin --password-stdin) >/dev/null ||
  die "create-user failed"

log "starting the server on $api_url"
(cd "$tmp" && exec ./api) >"$tmp/server.log" 2>&1 &
server_pid=$!
ready=""
deadline=$((SECONDS + 30))
while [ "$SECONDS" -lt "$deadline" ]; do
  kill -0 "$server_pid" 2>/dev/null || die "the server exited at start"
  if curl -fs -o /dev/null --max-time 2 "$api_url/readyz"; then ready=1; break; fi
  sleep 0.2
done
[ -n "$ready" ] || die "$api_url/readyz did not answer 200 within 30 s"

# --- Postman collection, twice ------------------------------------------------------------------
log "Postman collection (newman), two runs"
BASE_URL="$api_url" COOKIE_NAME=sessionId ADMIN_EMAIL="$admin_email" ADMIN_PASSWORD="$admin_password" NEWMAN_RUNS=2 NEWMAN_RUN_TIMEOUT=300 \
  timeout 700 bash tests/postman/ci.sh || die "Postman collection failed"

# --- Postman collection through a validating proxy ------------------------------------------------
# Prism with --errors answers 500 instead of passing on any answer that does not match the document,
# and answers a request that breaks it itself: the collection skips the requests that do so on purpose
# (validatingProxy=true). Any violation in Prism's log fails the run too.
# The document names the default cookie, __Host-sessionId, which needs a Secure cookie; this server runs
# on plain http with SESSION_COOKIE_NAME's other default, sessionId, so Prism checks the document with that
# name (else it refuses every request with a session as carrying no credentials).
log "Postman collection through Prism's validating proxy"
sed 's/^      name: __Host-sessionId$/      name: sessionId/' api/openapi.yaml >"$tmp/openapi.yaml"
[ "$(diff api/openapi.yaml "$tmp/openapi.yaml" | grep -c '^>')" = 1 ] ||
  die "api/openapi.yaml: expected one security scheme line 'name: __Host-sessionId' to rename for Prism"
node_modules/.bin/prism proxy "$tmp/openapi.yaml" "$api_url" --errors --cors=false \
  --host 127.0.0.1 --port "$prism_port" >"$tmp/prism.log" 2>&1 &
prism_pid=$!
prism_url="http://127.0.0.1:$prism_port"
ready=""
deadline=$((SECONDS + 60))
while [ "$SECONDS" -lt "$deadline" ]; do
  kill -0 "$prism_pid" 2>/dev/null || { tail -n 20 "$tmp/prism.log" >&2; die "Prism exited at start"; }
  if curl -fs -o /dev/null --max-time 2 "$prism_url/healthz"; then ready=1; break; fi
  sleep 0.5
done
[ -n "$ready" ] || die "Prism did not answer at $prism_url within 60 s"
rc=0
BASE_URL="$prism_url" COOKIE_NAME=sessionId ADMIN_EMAIL="$admin_email" ADMIN_PASSWORD="$admin_password" \
  timeout 300 bash tests/postman/run.sh --env-var validatingProxy=true \
  --reporter-cli-no-success-assertions --reporter-cli-no-banner || rc=$?
if grep -E 'Violation|terminated with error' "$tmp/prism.log" >&2 || [ "$rc" -ne 0 ]; then
  die "the API's answers do not match api/openapi.yaml (Prism, newman exit $rc)"
fi
kill -TERM "$prism_pid" 2>/dev/null; wait "$prism_pid" 2>/dev/null || true; prism_pid=""
log "Prism: no violation"

# --- real browser -------------------------------------------------------------------------------
log "browser test"
API_URL="$browser_api_url" SPA_PORT="$spa_port" EVIL_PORT="$evil_port" CHROMIUM=/usr/bin/chromium MAILPIT_API="$mailpit_api" \
  SCREENSHOT_DIR="$tmp/screenshots" BROWSER_TEST_TIMEOUT=300 \
  timeout 400 bash tests/browser/run.sh || die "browser test failed"

kill -0 "$server_pid" 2>/dev/null || die "the server died during the tests"

# --- the README's commands ----------------------------------------------------------------------
log "README commands in bash and zsh"
timeout 300 bash .ci/readme-commands.sh || die "a README command does not work as written"
