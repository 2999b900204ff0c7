#!/usr/bin/env bash
# The load client against the C reference: corio's echo_client and ../shared/bench's loadgen,
# each driving the raw liburing echo server (CPU 0) from CPU 1 with one thread, interleaved
# A B A B in every round. Prints, per config, both clients' msgs/s per round and the medians of
# two per-round ratios echo_client / loadgen: msgs/s (the issue's target: at least 0.9) and the
# client's CPU per message (its user + system time over the messages it counted; this one holds
# still when the server is what limits the rate, and the host's fast and slow phases move both
# clients alike).
# loadgen runs with -w 0 (no warm-up window): both then measure from the moment every
# connection is established; the CPU time covers the whole process, set-up included, for both.
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

# Runs one client on CPU 1 and prints "MSGS_PER_S CPU_US_PER_MSG"; $1 and $2 are sed scripts
# that pick the rate and the message count out of its output, the rest is the command. The CPU
# time is the subshell's children's, from `times` ("0m0.160s 0m2.820s": user, system).
measure() {
  local rate_re=$1 count_re=$2
  shift 2
  local out rate count
  out=$( (taskset -c 1 "$@" && times) ) || return 0
  rate=$(sed -n "$rate_re" <<<"$out")
  count=$(sed -n "$count_re" <<<"$out")
  tail -n 1 <<<"$out" | awk -v r="$rate" -v n="$count" '{
    t = 0
    for (i = 1; i <= 2; i++) { split($i, p, "m"); sub(/s$/, "", p[2]); t += p[1] * 60 + p[2] }
    if (r != "" && n > 0) printf "%s %.3f\n", r, t * 1e6 / n }'
}
median() {
  sort -n | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'
}

printf '| conns x bytes | loadgen msgs/s per round | echo_client msgs/s per round | msgs/s ratio (median) | CPU per message ratio (median) |\n'
printf '|---|---|---|---:|---:|\n'
for cfg in $configs; do
  c=${cfg%%:*} s=${cfg#*:}
  lg=() ec=() rates=() cpus=()
  for _ in $(seq "$rounds"); do
    a=$(measure 's/.*msgs_s=\([0-9]*\).*/\1/p' 's/.* msgs=\([0-9]*\).*/\1/p' \
      "$peers/loadgen" -p "$port" -c "$c" -s "$s" -d "$secs" -w 0)
    b=$(measure 's/^\([0-9]*\) msgs\/s.*/\1/p' 's/^messages: \([0-9]*\).*/\1/p' \
      build-bench/samples/echo_client -a "127.0.0.1:$port" -c "$c" -l "$s" -d "$secs" -t 1)
    [[ -n $a && -n $b ]] || { echo "client.sh: a client failed at $cfg" >&2; exit 1; }
    lg+=("${a%% *}") ec+=("${b%% *}")
    rates+=("$(awk -v a="${a%% *}" -v b="${b%% *}" 'BEGIN {printf "%.3f", b / a}')")
    cpus+=("$(awk -v a="${a#* }" -v b="${b#* }" 'BEGIN {printf "%.3f", b / a}')")
  done
  printf '| %s x %s | %s | %s | %s | %s |\n' "$c" "$s" "${lg[*]}" "${ec[*]}" \
    "$(printf '%s\n' "${rates[@]}" | median)" "$(printf '%s\n' "${cpus[@]}" | median)"
done
