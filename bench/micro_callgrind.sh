# Sourced by bench/micro_instructions.sh and bench/locked_instructions.sh: what both need to run
# bench/micro under callgrind. After sourcing, the working directory is the project root, and:
#   micro     the bench/micro binary (release build in build-bench, built if needed)
#   work      a temporary directory, removed at exit
#   ops       benchmark name -> operations per run (micro --list)
#   names     the benchmarks asked for on the command line, or all of them
#   run_callgrind NAME REPS [VALGRIND-ARG ...]
#             runs `micro --workers 1 --reps REPS --only NAME` under callgrind, pinned to CPU 0,
#             leaving its output in $work/out (exits with callgrind's log if it failed)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v valgrind >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
[[ -f build-bench/build.ninja ]] || meson setup build-bench --buildtype=release -Dtests=disabled >/dev/null
ninja -C build-bench bench/micro >/dev/null
micro=build-bench/bench/micro

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run_callgrind() {
  local name=$1 reps=$2
  shift 2
  taskset -c 0 valgrind --tool=callgrind "$@" --callgrind-out-file="$work/out" \
    "$micro" --workers 1 --reps "$reps" --only "$name" >/dev/null 2>"$work/log" || {
    cat "$work/log" >&2
    exit 1
  }
}

declare -A ops
while read -r name n; do ops[$name]=$n; done < <("$micro" --list)
names=("$@")
((${#names[@]})) || mapfile -t names < <("$micro" --list | awk '{print $1}')
for name in "${names[@]}"; do
  [[ -n ${ops[$name]:-} ]] || { echo "unknown benchmark $name" >&2; exit 2; }
done
