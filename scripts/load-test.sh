#!/usr/bin/env bash
# usage: scripts/load-test.sh [scripts/bench/load flags...]
#   scripts/load-test.sh                          # 64 conns on GET /me + 2 logins/s for 60 s
#   scripts/load-test.sh -duration 20s            # shorter
#   scripts/load-test.sh -duration 45s -sigterm-after 30s   # graceful-shutdown check
#
# Builds the product (go build -o /tmp/sessauth-bench .) and the load test (scripts/bench/load), migrates,
# and lets the load test start the product binary itself (-server-bin) with the production
# environment of scripts/bench-lib.sh (Redis db 8, prefix benchsess:, 127.0.0.1:18090), so that it
# can read its peak RSS and, with -sigterm-after, observe its exit code. Flags are passed to the
# load test (see `go run ./scripts/bench/load -h`); LOAD_DURATION sets the default duration.
# Deletes benchsess:* of Redis db 8 at the end. Exit status: the load test's (1 on FAIL).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench-lib.sh
. "$HERE/bench-lib.sh"
trap 'del_prefix 2>/dev/null || true; cleanup_product_dir' EXIT
LOAD_BIN=/tmp/sessauth-load

ensure_services
machine_line
if ! port_free "$PRODUCT_ADDR"; then echo "$PRODUCT_ADDR is already in use: set BENCH_PRODUCT_ADDR" >&2; exit 1; fi
build_product
(cd "$PRODUCT_DIR" && go build -o "$LOAD_BIN" ./scripts/bench/load)
migrate_product
del_prefix
# timeout: the load test bounds itself; this is a last resort (15 min + shutdown)
product_env timeout -k 10s 20m "$LOAD_BIN" -url "$PRODUCT_URL" -server-bin "$PRODUCT_BIN" \
  -server-log "$BENCH_LOG_DIR/load-test-server.log" "$@"
