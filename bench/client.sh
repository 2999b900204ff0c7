#!/usr/bin/env bash
# The load client against the C reference: corio's echo_client and ../shared/bench's loadgen,
# each driving the raw liburing echo server (CPU 0) from CPU 1 with one thread, interleaved
# A B A B in every round. Prints, per config, both clients' msgs/s per round and the median of
# the per-round ratios echo_client / loadgen (the issue's target: at least 0.9).
# loadgen runs with -w 0 (no warm-up window): both then measure from the moment every
# connection is established.
# Usage: bench/client.sh [-r rounds] [-t secs] [-C "conns:size ..."]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=6 secs=3 configs="1:64 50:64 500:64 50:4096"
while getopts r:t:C: o; do
  case $o in r) rounds=$OPTARG ;; t) secs=$OPTARG ;; C) configs=$OPTARG ;; *) exit 2 ;; esac
done
tools/deps.sh build
bench/build_peers.sh
[[ -f build-bench/build.ninja ]] || meson setup build-bench --buildtype=release -Dtests=disabled >/dev/null
ninja -C build-bench samples/echo_client >/dev/null
peers=bench/out/peers/out
port=${PORT_BASE:-17950}
taskset -c 0 "$peers/raw_uring_echo" "$port" >/dev/null 2>&1 &
srv=$!
trap 'kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
  sleep 0.1
done

printf '| conns x bytes | loadgen msgs/s per round | echo_client msgs/s per round | echo_client / loadgen (median) |\n'
printf '|---|---|---|---:|\n'
for cfg in $configs; do
  c=${cfg%%:*} s=${cfg#*:}
  lg=() ec=() ratios=()
  for _ in $(seq "$rounds"); do
    a=$(taskset -c 1 "$peers/loadgen" -p "$port" -c "$c" -s "$s" -d "$secs" -w 0 |
      sed -n 's/.*msgs_s=\([0-9]*\).*/\1/p')
    b=$(taskset -c 1 build-bench/samples/echo_client -a "127.0.0.1:$port" -c "$c" -l "$s" \
      -d "$secs" -t 1 | sed -n 's/^\([0-9]*\) msgs\/s.*/\1/p')
    [[ -n $a && -n $b ]] || { echo "client.sh: a client failed at $cfg" >&2; exit 1; }
    lg+=("$a") ec+=("$b")
    ratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b / a}')")
  done
  med=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR] = $1} END {
    print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}')
  printf '| %s x %s | %s | %s | %s |\n' "$c" "$s" "${lg[*]}" "${ec[*]}" "$med"
done
