#!/usr/bin/env bash
# The whole benchmark suite in one command; writes one markdown file with every table:
#   micro (bench/run.sh), echo against the peers (bench/echo.sh), echo_client against loadgen
#   (bench/client.sh), user-space instructions per echo round trip (bench/instructions.sh) and
#   per micro-benchmark operation (bench/micro_instructions.sh), locked instructions per
#   micro-benchmark operation (bench/locked_instructions.sh),
#   memory per idle connection and per sleeping task and fork-join scaling (bench/footprint),
#   zero-copy sends against plain sends (bench/zerocopy), HTTP against nginx (bench/http.sh).
# Usage: bench/all.sh [-q]   (-q: fewer rounds, for a quick look; the figures are then rougher)
# Output: bench/out/all-YYYYmmdd-HHMMSS.md (and on stdout).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[[ ${1:-} == -q ]] && quick=1
rounds=$((quick ? 2 : 6))
mkdir -p bench/out
out=bench/out/all-$(date +%Y%m%d-%H%M%S).md
tools/deps.sh build
[[ -f build-bench/build.ninja ]] || meson setup build-bench --buildtype=release -Dtests=disabled >/dev/null
ninja -C build-bench bench/footprint bench/zerocopy >/dev/null
{
  echo "# corio benchmark suite, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)"
  echo
  echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"
  echo
  echo "## Micro (bench/run.sh -r $rounds)"
  bench/run.sh -r "$rounds"
  echo
  echo "## Echo against the peers (bench/echo.sh -r $rounds)"
  bench/echo.sh -r "$rounds"
  echo
  echo "## The load client against loadgen (bench/client.sh -r $rounds)"
  bench/client.sh -r "$rounds"
  echo
  echo "## User-space instructions per echo round trip (bench/instructions.sh)"
  bench/instructions.sh -c 50
  bench/instructions.sh -c 500 | tail -n +3
  echo
  echo "## User-space instructions per micro-benchmark operation (bench/micro_instructions.sh)"
  bench/micro_instructions.sh
  echo
  echo "## Locked instructions per micro-benchmark operation (bench/locked_instructions.sh)"
  bench/locked_instructions.sh
  echo
  echo "## Memory (bench/footprint)"
  echo '```'
  build-bench/bench/footprint sleepers 1000000
  build-bench/bench/footprint connections 10000
  echo '```'
  echo
  echo "## Fork-join scaling: fib(38), spawning above 16 (bench/footprint fib, best of 5)"
  echo '```'
  cpus=$(nproc)
  for w in 1 2 4 8 16; do
    ((w <= cpus)) || break
    taskset -c "0-$((cpus - 1))" build-bench/bench/footprint fib 38 16 "$w"
  done
  echo '```'
  echo
  echo "## Zero-copy sends against plain sends on loopback (bench/zerocopy)"
  taskset -c 0 build-bench/bench/zerocopy --rounds "$rounds" --mib $((quick ? 256 : 1024))
  echo
  echo "## HTTP plaintext against nginx (bench/http.sh -r $rounds)"
  bench/http.sh -r "$rounds"
} 2>/dev/null | tee "$out"
echo "written: $out" >&2
