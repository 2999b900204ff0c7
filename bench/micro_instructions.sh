#!/usr/bin/env bash
# Instructions per operation of corio's micro benchmarks (bench/micro, 1 worker), counted by
# callgrind: a count that does not depend on how busy this noisy machine is, unlike the ns of
# bench/run.sh. Each benchmark runs under callgrind twice, with --reps 1 and --reps 2 (both after
# the warm-up run); the difference is one more run, so start-up and warm-up cancel out, and it is
# divided by the benchmark's operations per run (micro --list). User space only.
# Usage: bench/micro_instructions.sh [NAME ...]   (default: every benchmark)
set -euo pipefail
# shellcheck source=bench/micro_callgrind.sh
source "$(dirname "$0")/micro_callgrind.sh"

# Total instructions of one `micro --reps $2 --only $1` run.
count() {
  run_callgrind "$1" "$2"
  awk '/^totals:/ {print $2}' "$work/out"
}

printf '| benchmark | operations per run | instructions per operation |\n|---|---:|---:|\n'
for name in "${names[@]}"; do
  one=$(count "$name" 1)
  two=$(count "$name" 2)
  awk -v a="$one" -v b="$two" -v n="${ops[$name]}" -v name="$name" \
    'BEGIN {printf "| %s | %d | %.0f |\n", name, n, (b - a) / n}'
done
