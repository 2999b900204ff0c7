#!/usr/bin/env bash
# Runs corio's micro benchmarks side by side with the reference anchors of ../shared/bench
# (plain C++20 coroutines, Boost.Asio, Go, raw io_uring), interleaved round by round so that the
# machine's slow and fast phases hit everyone alike, and prints a markdown table of medians and
# ratios. Usage: bench/run.sh [-r rounds] [-o out.md]
#   Peers run pinned to CPU $CPU (0); corio runs with 1 worker on CPU 0 and 2 workers on 0-1.
#   bench/peers/go_chan.go (channel and mutex peers) is built when `go` exists and runs on CPU
#   $CPU (GOMAXPROCS=1, as go_chan) and on CPUs 0-1 (GOMAXPROCS=2, as go_chan2).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5 out=""
while getopts r:o: o; do
  case $o in r) rounds=$OPTARG ;; o) out=$OPTARG ;; *) exit 2 ;; esac
done
cpu=${CPU:-0}
work=bench/out
mkdir -p "$work"

# corio, release build.
tools/deps.sh build
[[ -f build-bench/build.ninja ]] || meson setup build-bench --buildtype=release -Dtests=disabled >/dev/null
meson compile -C build-bench micro >/dev/null

# The peers: ../shared/bench is read-only, so build a copy.
bench/build_peers.sh

# Our own Go peer for channels and mutexes (go_micro has only the unbuffered ping-pong).
go_chan=""
if command -v go >/dev/null; then
  if [[ ! -x $work/go_chan || bench/peers/go_chan.go -nt $work/go_chan ]]; then
    go build -o "$work/go_chan" bench/peers/go_chan.go
  fi
  go_chan=$work/go_chan
else
  echo "go not found: the go_chan peer rows are skipped" >&2
fi

raw=$work/micro-$(date +%Y%m%d-%H%M%S).txt
: >"$raw"
for ((r = 1; r <= rounds; r++)); do
  echo "round $r/$rounds" >&2
  for m in coro_micro asio_micro go_micro uring_micro; do
    taskset -c "$cpu" "$work/peers/out/$m" | sed "s/^/peer $m /" >>"$raw"
  done
  if [[ -n $go_chan ]]; then
    taskset -c "$cpu" "$go_chan" | sed "s/^/peer go_chan /" >>"$raw"
    taskset -c 0,1 "$go_chan" | sed "s/^/peer go_chan2 /" >>"$raw"
  fi
  taskset -c "$cpu" build-bench/bench/micro --workers 1 --reps 5 | sed 's/^/corio /' >>"$raw"
  taskset -c 0,1 build-bench/bench/micro --workers 2 --reps 5 | sed 's/^/corio /' >>"$raw"
  taskset -c "$cpu" build-bench/bench/micro --workers 1 --reps 5 --no-recycling |
    sed 's/^/corio-norecycle /' >>"$raw"
done
python3 bench/summarize_micro.py "$raw" | tee ${out:+"$out"}
