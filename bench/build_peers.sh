#!/usr/bin/env bash
# Builds the reference peers of ../shared/bench (read-only there) in a copy, bench/out/peers/.
# Does nothing when they are built already; `-f` rebuilds.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${SHARED_BENCH:-../shared/bench}
work=bench/out/peers
if [[ ${1:-} == -f || ! -x $work/out/uring_micro || ! -x $work/out/raw_uring_echo ]]; then
  mkdir -p bench/out
  rm -rf "$work" && cp -r "$shared" "$work" && chmod -R u+w "$work"
  (cd "$work" && ./build.sh >build.log 2>&1) || { tail -20 "$work/build.log"; exit 1; }
fi
