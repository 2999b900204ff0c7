#!/usr/bin/env bash
# User-space instructions per echo round trip, counted by callgrind: corio's echo_tcp (1 worker)
# against the raw liburing server of ../shared/bench, the same load for both. Instruction counts
# do not depend on how busy the machine is, so this is the steady figure of the speed issue.
#
# Each server runs under `valgrind --tool=callgrind --instr-atstart=no`; collection is switched
# on once the server listens, loadgen (no warm-up) sends -c connections x -s bytes for -d seconds,
# and the counts are dumped when it ends. Instructions / messages echoed = Ir per round trip,
# including the connection set-up, amortised over the run. Kernel work is not counted.
# Usage: bench/instructions.sh [-c conns] [-s size] [-d secs]
set -euo pipefail
cd "$(dirname "$0")/.."
conns=50 size=64 secs=4
while getopts c:s:d: o; do
  case $o in c) conns=$OPTARG ;; s) size=$OPTARG ;; d) secs=$OPTARG ;; *) exit 2 ;; esac
done
command -v valgrind >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
peers=bench/out/peers
[[ -x $peers/out/raw_uring_echo ]] || bench/build_peers.sh
[[ -f build-bench/build.ninja ]] || meson setup build-bench --buildtype=release -Dtests=disabled >/dev/null
ninja -C build-bench samples/echo_tcp >/dev/null

work=$(mktemp -d)
vpid=""
cleanup() {
  [[ -n $vpid ]] && kill -9 "$vpid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT


# name|command (the port is appended)
servers=("raw_uring|$peers/out/raw_uring_echo" "corio|build-bench/samples/echo_tcp --workers 1 --port")
port=${PORT_BASE:-17800}
printf '| server | conns | size | messages | Ir | Ir per round trip |\n|---|---:|---:|---:|---:|---:|\n'
declare -A per
for s in "${servers[@]}"; do
  name=${s%%|*} cmd=${s#*|} port=$((port + 1))
  taskset -c 0 valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$work/$name.%p" $cmd $port >"$work/$name.log" 2>&1 &
  vpid=$!
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.1
  done
  callgrind_control -i on "$vpid" >/dev/null 2>&1
  line=$(taskset -c 1 "$peers/out/loadgen" -p "$port" -c "$conns" -s "$size" -d "$secs" -w 0)
  callgrind_control -d "$vpid" >/dev/null 2>&1
  kill -9 "$vpid" 2>/dev/null
  wait "$vpid" 2>/dev/null || true
  vpid=""
  msgs=$(sed -n 's/.*msgs=\([0-9]*\).*/\1/p' <<<"$line")
  ir=$(cat "$work/$name".* | awk '/^totals:/ {s += $2} END {print s + 0}')
  per[$name]=$(awk -v i="$ir" -v m="$msgs" 'BEGIN {printf "%.0f", (m > 0 ? i / m : 0)}')
  printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "$conns" "$size" "$msgs" "$ir" "${per[$name]}"
done
awk -v a="${per[raw_uring]}" -v b="${per[corio]}" \
  'BEGIN {if (a > 0) printf "\ncorio / raw_uring instructions per round trip: %.2f\n", b / a}'
