#!/usr/bin/env bash
# Integration: corio as a Meson subproject, and corio installed and found through pkg-config.
#  1. A separate project with subprojects/corio -> this tree builds the snippet (only corio's
#     library is compiled for it: no tests, samples or benchmarks) and prints 42.
#  2. `meson install` into a staging dir installs the headers, the library and corio.pc; the
#     snippet compiles against `pkg-config corio` from there and prints 42.
set -euo pipefail
src=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. Subproject.
cp -r "$src/test/integration/consumer" "$work/consumer"
mkdir -p "$work/consumer/subprojects"
ln -s "$src" "$work/consumer/subprojects/corio"
meson setup "$work/consumer/build" "$work/consumer" >"$work/setup.log" 2>&1 || { cat "$work/setup.log"; exit 1; }
meson compile -C "$work/consumer/build" >"$work/compile.log" 2>&1 || { cat "$work/compile.log"; exit 1; }
out=$("$work/consumer/build/snippet")
[[ $out == 42 ]] || { echo "subproject snippet printed '$out', expected 42"; exit 1; }
# Only the library was built for the subproject.
if find "$work/consumer/build/subprojects" -name '*_test' -o -name 'spawn_demo' | grep -q .; then
  echo "the subproject build compiled more than the library"; exit 1
fi
echo "subproject: ok (printed $out)"

# 2. Install and pkg-config.
meson setup "$work/corio-build" "$src" -Dtests=disabled -Dsamples=disabled -Dbenchmarks=disabled \
  --prefix=/usr/local >"$work/isetup.log" 2>&1 || { cat "$work/isetup.log"; exit 1; }
meson install -C "$work/corio-build" --destdir "$work/stage" >"$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }
pc=$(find "$work/stage" -name corio.pc | head -1)
[[ -n $pc ]] || { echo "corio.pc was not installed"; exit 1; }
[[ -f $work/stage/usr/local/include/corio/corio.hpp ]] || { echo "headers were not installed"; exit 1; }
find "$work/stage" -name 'libcorio.*' | grep -q . || { echo "the library was not installed"; exit 1; }
# The .pc says prefix=/usr/local; point it at the staging dir instead.
flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --define-variable=prefix="$work/stage/usr/local" \
  --cflags --libs --static corio)
c++ -std=c++20 -o "$work/snippet-pc" "$src/test/integration/consumer/snippet.cpp" $flags
out=$("$work/snippet-pc")
[[ $out == 42 ]] || { echo "pkg-config snippet printed '$out', expected 42"; exit 1; }
echo "install + pkg-config: ok (printed $out)"
