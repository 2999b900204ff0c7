#!/usr/bin/env bash
# Locked instructions (x86 `lock`-prefixed and `xchg` with memory) executed per operation of
# corio's micro benchmarks (bench/micro, 1 worker), counted by callgrind at each instruction
# address. On this host such an instruction costs about 6 ns (an uncontended atomic RMW), which
# the instruction count does not show: a spawn + join took 24 ns less, with as many instructions,
# when four of them went (docs/benchmarks.md, 2026-12-06 night). Same method as
# micro_instructions.sh: the difference between --reps 2 and --reps 1, divided by the operations
# per run, with the functions that execute them.
# Usage: bench/locked_instructions.sh [NAME ...]   (default: every benchmark)
set -euo pipefail
# shellcheck source=bench/micro_callgrind.sh
source "$(dirname "$0")/micro_callgrind.sh"
command -v gawk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gawk >/dev/null

# The address and function of every locked instruction in the binary.
objdump -d --no-show-raw-insn -C "$micro" | awk '
  /^[0-9a-f]+ <.*>:$/ { fn = $0; sub(/^[0-9a-f]+ </, "", fn); sub(/>:$/, "", fn) }
  /^ *[0-9a-f]+:\t/ && (/\tlock / || /\txchg /) { a = $1; sub(":", "", a); print a "\t" fn }
' >"$work/locked"

# Per locked address, how often one `micro --reps $2 --only $1` run executed it ("ADDR\tCOUNT").
# With --compress-pos=no every cost line starts with its absolute address; the line after a
# `calls=` line is the call's inclusive cost, not the instruction's own, and is skipped.
count() {
  run_callgrind "$1" "$2" --dump-instr=yes --compress-pos=no
  gawk -F'\t' 'NR == FNR { want[strtonum("0x" $1)] = 1; next }
    /^calls=/ { skip = 1; next }
    /^0x/ {
      if (skip) { skip = 0; next }
      n = split($0, f, " "); a = strtonum(f[1])
      if (a in want) c[a] += f[n]
      next
    }
    { skip = 0 }
    END { for (a in c) printf "%x\t%d\n", a, c[a] }' "$work/locked" "$work/out"
}

printf '| benchmark | locked instructions per operation | where |\n|---|---:|---|\n'
for name in "${names[@]}"; do
  count "$name" 1 >"$work/one"
  count "$name" 2 >"$work/two"
  gawk -F'\t' -v n="${ops[$name]}" -v name="$name" '
    FILENAME == ARGV[1] { fn[$1] = $2; next }
    FILENAME == ARGV[2] { one[$1] = $2; next }
    { d = ($2 - one[$1]) / n; if (d >= 0.01) { by[fn[$1]] += d; total += d } }
    END {
      where = ""
      for (f in by) {
        short = f; gsub(/\(anonymous namespace\)::/, "", short)
        sub(/\(.*/, "", short); sub(/^.*::/, "", short)
        where = where sprintf("%s%s %.2f", where == "" ? "" : ", ", short, by[f])
      }
      printf "| %s | %.2f | %s |\n", name, total, where
    }' "$work/locked" "$work/one" "$work/two"
done
