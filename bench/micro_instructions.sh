#!/usr/bin/env bash
# Instructions per operation of corio's micro benchmarks (bench/micro, 1 worker), counted by
# callgrind: a count that does not depend on how busy this noisy machine is, unlike the ns of
# bench/run.sh. Each benchmark runs under callgrind twice, with --reps 1 and --reps 2 (both after
# the warm-up run); the difference is one more run, so start-up and warm-up cancel out, and it is
# divided by the benchmark's operations per run (micro --list). User space only.
# Usage: bench/micro_instructions.sh [NAME ...]   (default: every benchmark)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
[[ -f build-bench/build.ninja ]] || meson setup build-bench --buildtype=release -Dtests=disabled >/dev/null
ninja -C build-bench bench/micro >/dev/null
micro=build-bench/bench/micro

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Total instructions of one `micro --reps $2 --only $1` run.
count() {
  taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$work/out" \
    "$micro" --workers 1 --reps "$2" --only "$1" >/dev/null 2>"$work/log" || {
    cat "$work/log" >&2
    exit 1
  }
  awk '/^totals:/ {print $2}' "$work/out"
}

declare -A ops
while read -r name n; do ops[$name]=$n; done < <("$micro" --list)
names=("$@")
((${#names[@]})) || mapfile -t names < <("$micro" --list | awk '{print $1}')
printf '| benchmark | operations per run | instructions per operation |\n|---|---:|---:|\n'
for name in "${names[@]}"; do
  [[ -n ${ops[$name]:-} ]] || { echo "unknown benchmark $name" >&2; exit 2; }
  one=$(count "$name" 1)
  two=$(count "$name" 2)
  awk -v a="$one" -v b="$two" -v n="${ops[$name]}" -v name="$name" \
    'BEGIN {printf "| %s | %d | %.0f |\n", name, n, (b - a) / n}'
done
