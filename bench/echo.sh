#!/usr/bin/env bash
# Echo benchmark: corio's echo_tcp (1 worker) side by side with the reference servers of
# ../shared/bench (raw liburing, epoll, Boost.Asio on epoll and on io_uring, Go, Tokio), all driven
# by the same client (loadgen), interleaved round by round (every server and config in each
# round), the server on CPU 0 and loadgen on CPU 1. Prints the peers' table and, per config, the
# median of the per-round ratios corio / peer: msgs/s, p99 latency and server CPU per message
# (`srv us/msg`, robust when the client saturates its core).
# Usage: bench/echo.sh [-r rounds] [-t secs] [-C "conns:size ..."] [-o out.md] [peer ...]
#   peers default to every reference server that was built (raw_uring epoll asio asio_uring go tokio)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=6 secs=3 configs="1:64 50:64 50:4096 500:64" out=""
while getopts r:t:C:o: o; do
  case $o in r) rounds=$OPTARG ;; t) secs=$OPTARG ;; C) configs=$OPTARG ;; o) out=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
tools/deps.sh build
bench/build_peers.sh
[[ -f build-bench/build.ninja ]] || meson setup build-bench --buildtype=release -Dtests=disabled >/dev/null
ninja -C build-bench samples/echo_tcp >/dev/null
peers=$(realpath bench/out/peers)
corio=$(realpath build-bench/samples/echo_tcp)
names=("$@")
((${#names[@]})) || names=(raw_uring epoll asio asio_uring go tokio)
servers=("corio=$corio --workers 1 --port")
for n in "${names[@]}"; do
  [[ -x $peers/out/${n}_echo ]] && servers+=("$n=$peers/out/${n}_echo")
done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
(cd "$peers" && ./echo.sh -r "$rounds" -t "$secs" -w 1 -C "$configs" "${servers[@]}") 2>"$log" >/dev/null
raw=$(ls -t "$peers"/out/echo-*.tsv | head -1)
python3 bench/summarize_echo.py "$peers/summarize.py" "$raw" | tee ${out:+"$out"}
