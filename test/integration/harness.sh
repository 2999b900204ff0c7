# Shared by the integration scripts that run a sample server (source it after setting $dir, the
# directory of the sample executables):
#   $work       a temporary directory, removed at exit with every process in $pids killed (and
#               every directory in $extra_dirs removed)
#   fail MSG    prints MSG and the tail of the server's log, exits 1
#   start_sample NAME ARGS...   starts NAME, waits for its "listening on ADDR:PORT" line, sets
#               $port and $server (the log is $work/server.log)
#   stop_sample SIG             sends SIG to $server, expects exit status 0 within 10 s
work=$(mktemp -d)
pids=()
extra_dirs=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work" "${extra_dirs[@]}"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  [[ -f $work/server.log ]] && { echo "--- server log"; tail -20 "$work/server.log"; }
  exit 1
}

start_sample() {
  local name=$1
  shift
  # Empty the log first: the redirection below truncates it only once the child runs, and the
  # previous server's "listening on" line must not be read as this one's.
  : >"$work/server.log"
  "$dir/$name" "$@" >"$work/server.log" 2>&1 &
  server=$!
  pids+=($server)
  for _ in $(seq 100); do
    port=$(grep -o 'listening on [0-9.]*:[0-9]*' "$work/server.log" | grep -o '[0-9]*$' || true)
    [[ -n $port ]] && return 0
    sleep 0.05
  done
  fail "$name did not start"
}

stop_sample() {
  local rc=0
  kill -s "$1" "$server"
  timeout 10 tail --pid="$server" -f /dev/null || fail "no exit within 10 s after SIG$1"
  wait "$server" || rc=$?
  [[ $rc == 0 ]] || fail "exit status $rc after SIG$1"
}
