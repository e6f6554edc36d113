#!/usr/bin/env bash
# Runs the Postman collection with newman against a running server.
#   BASE_URL        server root (default http://localhost:8080)
#   ADMIN_EMAIL     an existing admin (default admin@example.com)
#   ADMIN_PASSWORD  that admin's password (required)
#   COOKIE_NAME     the server's session cookie (default __Host-sessionId, the name of a Secure
#                   cookie; sessionId for a server run with COOKIE_SECURE=false)
#   NEWMAN_TIMEOUT  bound for the whole run in ms (default 300000)
# Extra arguments are passed to newman (e.g. --reporters cli,junit).
# Exits non-zero on any failed assertion or request error.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

: "${BASE_URL:=http://localhost:8080}"
: "${ADMIN_EMAIL:=admin@example.com}"
if [ -z "${ADMIN_PASSWORD:-}" ]; then
  echo "tests/postman/run.sh: set ADMIN_PASSWORD (and ADMIN_EMAIL) to an existing admin's credentials" >&2
  exit 2
fi

if [ ! -x node_modules/.bin/newman ]; then
  npm ci --no-audit --no-fund >&2
fi

exec node_modules/.bin/newman run tests/postman/session-auth.postman_collection.json \
  -e tests/postman/local.postman_environment.json \
  --env-var "baseUrl=${BASE_URL%/}" \
  --env-var "adminEmail=${ADMIN_EMAIL}" \
  --env-var "adminPassword=${ADMIN_PASSWORD}" \
  --env-var "cookieName=${COOKIE_NAME:-__Host-sessionId}" \
  --timeout "${NEWMAN_TIMEOUT:-300000}" \
  --timeout-request 30000 \
  --color off \
  "$@"
