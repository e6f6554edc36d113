#!/usr/bin/env bash
# Runs the README's curl blocks as a reader would: in bash, and in an interactive zsh (macOS's default
# shell, which does not split an unquoted variable and, interactively, takes no "#" comment), each
# shell against a fresh server started as `go run .` starts it (no settings: embedded SQLite and
# in-process store, Secure cookie on localhost), from that server's directory. The only rewrites are
# the port (a free one instead of 8080) and `go run .` (the same build, made once). It fails unless
# every curl answers the status below and neither shell prints an error. Every other sh block of the
# README is checked for syntax in both shells. Needs go, curl and zsh (apt-get install -y zsh).
#   README_PORT  the servers' port (default: a free one)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[readme] %s\n' "$*"; }
die() { printf '[readme] FAIL: %s\n' "$*" >&2; exit 1; }

# The statuses of the curls of each block that talks to the server, in order (command substitutions
# included): the walkthrough of "Start it" ends on a 401 after logout-all; the endpoint list answers
# 2xx throughout, but for the two calls with a made-up mail token (400 invalid_token).
expected_walkthrough="201 200 200 200 401"
expected_endpoints="201 200 200 200 200 204 200 200 200 200 200 202 202 202 400 400 200 200 200 200 201 200 200 200 200 200 200 202 204 204 200 204 200 200"

for tool in go curl bash zsh; do
  command -v "$tool" >/dev/null || die "$tool not found"
done

tmp="$(mktemp -d)"
server_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
cleanup() {
  local rc=$?
  stop_server
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT

# Every ```sh block of the README, one file each, numbered in order.
awk -v dir="$tmp" '
  /^```sh$/ { n++; file = sprintf("%s/block-%02d.sh", dir, n); inside = 1; next }
  /^```/ && inside { inside = 0; close(file); next }
  inside { print > file }
' README.md
runnable=()
for block in "$tmp"/block-*.sh; do
  bash -n "$block" || die "README block $(basename "$block") is not valid bash"
  zsh -n "$block" || die "README block $(basename "$block") is not valid zsh"
  if grep -q 'http://localhost:8080' "$block"; then runnable+=("$block"); fi
done
[ "${#runnable[@]}" -eq 2 ] || die "want 2 README blocks that call http://localhost:8080, found ${#runnable[@]}"

# free_port: a port nothing answers on, below Linux's ephemeral range (32768 and up), so that no
# client connection of another test holds it either.
free_port() {
  local candidate
  while :; do
    candidate=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then echo "$candidate"; return; fi
  done
}
port="${README_PORT:-$(free_port)}"

log "building the server"
timeout 600 go build -o "$tmp/api" . || die "go build failed"

# run_block <shell> <dir> <block> <expected statuses>: the block as typed into <shell> in <dir>.
run_block() {
  local shell="$1" dir="$2" block="$3" want="$4" name got
  name="$shell $(basename "$block")"
  {
    # Records each curl's status; the command line itself runs as written.
    printf '%s\n' 'curl() { command curl -sS -w "%{stderr}%{http_code}\n" "$@" 2>>"$README_STATUS"; }'
    sed -e "s#http://localhost:8080#http://localhost:$port#g" -e "s#go run \\.#$tmp/api#g" "$block"
  } >"$dir/input.sh"
  : >"$dir/status"
  case "$shell" in
    bash) (cd "$dir" && env -i PATH="$PATH" HOME="$dir" README_STATUS="$dir/status" \
      timeout 120 bash --norc --noprofile <"$dir/input.sh" >"$dir/out" 2>"$dir/err") || true ;;
    zsh) (cd "$dir" && env -i PATH="$PATH" HOME="$dir" README_STATUS="$dir/status" PS1= PS2= \
      timeout 120 zsh -f -i +o promptsp +o promptcr <"$dir/input.sh" >"$dir/out" 2>"$dir/err") || true ;;
  esac
  got="$(tr '\n' ' ' <"$dir/status" | sed 's/ $//')"
  if [ -s "$dir/err" ] || [ "$got" != "$want" ]; then
    echo "--- what $shell printed on stderr:" >&2; cat "$dir/err" >&2
    echo "--- what it printed on stdout:" >&2; tail -c 2000 "$dir/out" >&2; echo >&2
    die "$name: got statuses [$got], want [$want]"
  fi
  log "$name: statuses as expected ($got)"
}

# start_server <dir>: a server as `go run .` starts it, in <dir>, on $port; another free port when
# that one was taken meanwhile (unless README_PORT is set).
start_server() {
  local dir="$1" try
  for try in 1 2 3 4 5; do
    rm -rf "$dir/data"
    log "$(basename "$dir"): a fresh server on http://localhost:$port, as go run . starts it"
    (cd "$dir" && exec env -i PATH="$PATH" HOME="$dir" HTTP_ADDR=":$port" "$tmp/api") >"$dir/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
      if ! kill -0 "$server_pid" 2>/dev/null; then
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
        break
      fi
      if curl -fs -o /dev/null --max-time 2 "http://localhost:$port/readyz"; then return 0; fi
      sleep 0.2
    done
    [ -z "$server_pid" ] || die "the server did not answer within 20 s"
    if [ -n "${README_PORT:-}" ] || ! grep -q 'address already in use' "$dir/server.log"; then
      tail -n 20 "$dir/server.log" >&2
      die "the server exited at start"
    fi
    port="$(free_port)"
  done
  die "no free port after $try tries"
}

for shell in bash zsh; do
  dir="$tmp/$shell"
  mkdir -p "$dir"
  start_server "$dir"
  run_block "$shell" "$dir" "${runnable[0]}" "$expected_walkthrough"
  run_block "$shell" "$dir" "${runnable[1]}" "$expected_endpoints"
  stop_server
done
log "README commands work as written in bash and zsh"
