# shellcheck shell=bash
# Sourced by .ci/run and .ci/e2e.sh. Mailpit is the real SMTP server of the mail tests (its HTTP API
# shows what arrived). It is not a dependency of the product: built with `go install` from the module
# proxy into a cache outside the repository, once per machine (about 1.5 min cold on 2 cores).
MAILPIT_VERSION=v1.33.1

# mailpit_binary prints the path of the Mailpit binary, building it first when the cache lacks it.
mailpit_binary() {
  local dir="${SESSIONAUTH_CI_CACHE:-$HOME/.cache/sessionauth-ci}/mailpit-$MAILPIT_VERSION" build started
  if [ ! -x "$dir/mailpit" ]; then
    echo "building Mailpit $MAILPIT_VERSION into $dir (once per machine)" >&2
    started=$(date +%s)
    build=$(mktemp -d) # outside any module, so the product's go.mod plays no part
    (cd "$build" && GOBIN="$dir" GOFLAGS=-buildvcs=false timeout 900 go install "github.com/axllent/mailpit@$MAILPIT_VERSION") ||
      { rm -rf "$build"; return 1; }
    rm -rf "$build"
    echo "Mailpit built in $(( $(date +%s) - started ))s" >&2
  fi
  echo "$dir/mailpit"
}
