#!/usr/bin/env bash
# Integration: samples/websocket_server with node's `ws` package as the client (installed from
# the npm registry into a cache outside the repository when missing) and with raw sockets for
# malformed frames; see ws_client.cjs for the checks. Also: --help, 1 and 2 workers, a small
# --max-message (close 1009), SIGTERM with WebSocket clients open and SIGINT (exit 0).
set -euo pipefail
dir=$1 scripts=$2
# shellcheck source=harness.sh
source "$(dirname "$0")/harness.sh"

command -v node >/dev/null || fail "node is missing (tools/deps.sh build installs it)"
modules=${XDG_CACHE_HOME:-$HOME/.cache}/corio-test-node
if [[ ! -f $modules/node_modules/ws/package.json ]]; then
  mkdir -p "$modules"
  timeout 120 npm install --prefix "$modules" ws@8 --no-audit --no-fund >"$work/npm.log" 2>&1 ||
    { cat "$work/npm.log"; fail "npm install ws failed"; }
fi

# The old log goes first: start_sample's first look could otherwise find the previous server's
# port, before the new process has truncated it.
start() {
  : >"$work/server.log"
  start_sample websocket_server "$@"
}
stop() { stop_sample "$1"; }

client() { timeout 150 node "$scripts/ws_client.cjs" "$modules" "$port" "$@"; }

timeout 10 "$dir/websocket_server" --help | grep -q -- "--max-message" || fail "--help"

for w in 1 2; do
  start --port 0 --workers "$w"
  client echo || fail "echo checks, $w workers"
  client raw || fail "protocol checks, $w workers"
  # SIGTERM while WebSocket clients and a connection still in its HTTP head are open.
  (exec 3<>"/dev/tcp/127.0.0.1/$port"; sleep 3) &
  pids+=($!)
  disown $!
  client hold >"$work/hold.log" 2>&1 &
  holder=$!
  pids+=("$holder")
  # Generous: node has been seen to need seconds to start on a loaded machine.
  for _ in $(seq 300); do grep -q holding "$work/hold.log" && break; sleep 0.1; done
  grep -q holding "$work/hold.log" || {
    cat "$work/hold.log"
    ps -o pid,stat,etime,wchan:20,cmd --ppid "$holder" -p "$holder"
    fail "hold clients, $w workers"
  }
  stop TERM
  wait "$holder" || { cat "$work/hold.log"; fail "hold clients did not see their end"; }
  echo "websocket_server, $w workers: ok"
done

start --port 0 --workers 1 --max-message 65536
client toobig || fail "--max-message checks"
stop INT
echo "websocket_samples: ok"
