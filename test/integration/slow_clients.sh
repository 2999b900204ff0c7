#!/usr/bin/env bash
# Integration: samples/http_server against slowhttptest (T36 in docs/reliability.md), with its
# fds capped at 300 (ulimit -n) so that 500 slow connections exhaust them.
#   slowloris (-H, headers a line a second) and slow readers (-X, a 200 KB file read through a
#   tiny window), 500 connections each, while wrk keeps 20 keep-alive connections busy: wrk sees
#   no error, and its p99 latency stays within 3x its baseline (plus 20 ms for this noisy box);
#   the server sheds the slow connections (408 after --header-timeout-ms, EMFILE backoff at the
#   cap), its fd count comes back afterwards, and it exits 0 on SIGTERM.
set -euo pipefail
dir=$1
# shellcheck source=harness.sh
source "$(dirname "$0")/harness.sh"
command -v slowhttptest >/dev/null || fail "slowhttptest is not installed (tools/deps.sh)"

root=$work/root
mkdir -p "$root"
head -c 200000 /dev/urandom >"$root/blob.bin"

: >"$work/server.log"
bash -c 'ulimit -n 300 && exec "$0" "$@"' "$dir/http_server" --port 0 --workers 2 \
  --root "$root" --header-timeout-ms 1500 >"$work/server.log" 2>&1 &
server=$!
pids+=($server)
for _ in $(seq 100); do
  port=$(grep -o 'listening on [0-9.]*:[0-9]*' "$work/server.log" | grep -o '[0-9]*$' || true)
  [[ -n $port ]] && break
  sleep 0.05
done
[[ -n $port ]] || fail "http_server did not start"
base="http://127.0.0.1:$port"
fds() { find "/proc/$server/fd" -mindepth 1 -maxdepth 1 | wc -l; }

# wrk's p99 latency in microseconds (it prints us, ms or s).
p99_us() {
  awk '$1 == "99%" {
    v = $2; u = 1
    if (v ~ /us$/) { sub(/us$/, "", v) } else if (v ~ /ms$/) { sub(/ms$/, "", v); u = 1000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); u = 1000000 }
    printf "%d", v * u }'
}
measure() {  # NAME: 2 s of wrk; fails on any error; prints the p99 in microseconds
  local out
  out=$(timeout 20 wrk -t1 -c20 -d2s --latency "$base/" 2>&1) || fail "wrk failed ($1): $out"
  grep -qE 'Socket errors|Non-2xx' <<<"$out" && fail "wrk saw errors ($1): $out"
  p99_us <<<"$out"
}

fd0=$(fds)
base_p99=$(measure baseline)
[[ -n $base_p99 ]] || fail "no p99 from wrk"
bound=$((3 * base_p99 + 20000))

for mode in slowloris slowread; do
  if [[ $mode == slowloris ]]; then
    args=(-H -i 1 -r 250 -l 7 -u "$base/")
  else
    args=(-X -r 250 -w 10 -y 20 -n 2 -z 32 -k 2 -l 7 -u "$base/static/blob.bin")
  fi
  slowhttptest -c 500 "${args[@]}" -p 3 >"$work/$mode.log" 2>&1 &
  pids+=($!)
  slow=$!
  sleep 2.5  # 500 connections opened at 250 a second
  during=$(fds)
  p99=$(measure "$mode")
  ((p99 <= bound)) || fail "$mode: wrk p99 $p99 us, baseline $base_p99 us"
  timeout 30 tail --pid="$slow" -f /dev/null || fail "slowhttptest ($mode) did not end"
  # The server lets go of what the slow clients held.
  for _ in $(seq 100); do (($(fds) <= fd0 + 2)) && break; sleep 0.1; done
  after=$(fds)
  ((after <= fd0 + 2)) || fail "$mode: the server kept $after fds (before: $fd0)"
  echo "$mode: wrk p99 $p99 us (baseline $base_p99 us), server fds $fd0 -> $during -> $after: ok"
done

# The cap was hit (accepts paused on EMFILE), and that was logged at most about once a second.
grep -q 'Too many open files; pausing accepts' "$work/server.log" ||
  fail "the slow clients never reached the fd cap"
lines=$(wc -l <"$work/server.log")
((lines <= 25)) || fail "the server logged $lines lines (a log flood)"
echo "fd cap reached, accepts paused and resumed, $lines log lines: ok"
kill -TERM "$server"
timeout 10 tail --pid="$server" -f /dev/null || fail "no exit within 10 s after SIGTERM"
rc=0
wait "$server" || rc=$?
[[ $rc == 0 ]] || fail "exit status $rc after SIGTERM"
echo "SIGTERM: ok"
