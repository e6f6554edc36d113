#!/usr/bin/env bash
# CI runner for the Postman collection: runs it NEWMAN_RUNS times in a row against one running
# server (every run registers fresh users, so a second run proves the collection is repeatable),
# prints newman's summary table and failures for each run and one line per run, and exits
# non-zero when any run has a failed assertion or request error, or overruns its time.
#   BASE_URL, ADMIN_EMAIL, ADMIN_PASSWORD   as for run.sh (ADMIN_PASSWORD required)
#   NEWMAN_RUNS         how many runs (default 2)
#   NEWMAN_RUN_TIMEOUT  bound for one run in seconds (default 300)
#   NEWMAN_REPORT_DIR   where the JSON report of each run goes (default: a temporary directory,
#                       removed at the end)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

runs="${NEWMAN_RUNS:-2}"
run_timeout="${NEWMAN_RUN_TIMEOUT:-300}"
if [ -z "${ADMIN_PASSWORD:-}" ]; then
  echo "tests/postman/ci.sh: set ADMIN_PASSWORD (and ADMIN_EMAIL) to an existing admin's credentials" >&2
  exit 2
fi
if [ ! -x node_modules/.bin/newman ]; then
  timeout 600 npm ci --no-audit --no-fund >&2
fi

report_dir="${NEWMAN_REPORT_DIR:-}"
if [ -z "$report_dir" ]; then
  report_dir="$(mktemp -d)"
  trap 'rm -rf "$report_dir"' EXIT
fi
mkdir -p "$report_dir"

# summary <report.json>: one line from newman's JSON report.
summary() {
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).run;
    const s = r.stats, t = r.timings || {};
    const secs = ((t.completed - t.started) / 1000).toFixed(1);
    console.log(`${s.requests.total} requests (${s.requests.failed} failed), ` +
      `${s.assertions.total} assertions (${s.assertions.failed} failed), ` +
      `${r.failures.length} failures, ${secs} s`);
  ' "$1"
}

failed=0
for i in $(seq 1 "$runs"); do
  echo "== newman run $i/$runs against ${BASE_URL:-http://localhost:8080}"
  report="$report_dir/newman-run-$i.json"
  rc=0
  timeout -k 10 "$run_timeout" bash "$here/run.sh" \
    --reporters cli,json --reporter-json-export "$report" \
    --reporter-cli-no-success-assertions --reporter-cli-no-banner || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "newman run $i/$runs: timed out after ${run_timeout} s" >&2
  fi
  if [ -f "$report" ]; then
    echo "newman run $i/$runs: $(summary "$report")"
  fi
  if [ "$rc" -ne 0 ]; then
    echo "newman run $i/$runs: FAILED (exit $rc)" >&2
    failed=1
  fi
done
exit "$failed"
