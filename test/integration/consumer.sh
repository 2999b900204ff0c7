#!/usr/bin/env bash
# Integration: corio used by another project exactly as README.md's "Using corio in your project"
# says. The wrap file, meson.build, CMakeLists.txt and Makefile are the README's own blocks
# (written out by `test/docs/snippets.py files`); each builds test/integration/consumer/snippet.cpp
# (the README's first example plus one printf) as main.cpp, which must print 42.
#  1. Subproject: a release archive of this tree (laid out as `meson dist` makes it) behind the
#     README's subprojects/corio.wrap; only corio's library is compiled for it (no tests,
#     samples or benchmarks).
#  2. Installed: `meson install` into a prefix gives the headers, the library and corio.pc; the
#     program builds with plain `pkg-config --cflags --libs corio`, with the README's CMake
#     project (pkg_check_modules) and with its Makefile.
set -euo pipefail
src=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
snippet=$src/test/integration/consumer/snippet.cpp
fail() { echo "FAIL: $*"; exit 1; }
run_quiet() {  # LOG CMD...: runs CMD, printing its output only if it fails
  local log=$1
  shift
  "$@" >"$log" 2>&1 || { cat "$log"; fail "$* failed"; }
}
expect_42() {  # WHAT BINARY
  local out
  out=$("$2")
  [[ $out == 42 ]] || fail "$1: the program printed '$out', expected 42"
  echo "$1: ok (printed $out)"
}

missing=()
for tool in cmake make; do command -v "$tool" >/dev/null || missing+=("$tool"); done
((${#missing[@]} == 0)) || fail "missing ${missing[*]} (Debian packages of the same names)"

readme=$work/readme
python3 "$src/test/docs/snippets.py" files "$readme" "$src/README.md" >/dev/null
for f in meson/subprojects/corio.wrap meson/meson.build cmake/CMakeLists.txt make/Makefile; do
  [[ -f $readme/$f ]] || fail "README.md has no block annotated file=$f"
done
for project in meson cmake make; do cp "$snippet" "$readme/$project/main.cpp"; done

# 1. The wrap file, with a release archive of this tree.
version=$(sed -n "s/^  version: '\(.*\)',$/\1/p" "$src/meson.build")
wrap=$readme/meson/subprojects/corio.wrap
directory=$(sed -n 's/^directory = //p' "$wrap")
filename=$(sed -n 's/^source_filename = //p' "$wrap")
[[ $directory == "corio-$version" ]] ||
  fail "the README's wrap has directory = $directory, but meson dist makes corio-$version/"
[[ $filename == "corio-$version.tar.gz" ]] ||
  fail "the README's wrap has source_filename = $filename, meson dist makes corio-$version.tar.gz"
grep -q '^source_hash = ' "$wrap" || fail "the README's wrap has no source_hash"
# The files meson dist would take (tracked ones, and new ones not ignored), as they are now.
cache=$readme/meson/subprojects/packagecache
mkdir -p "$cache"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$src" ls-files -z --cached --others --exclude-standard |
    (cd "$src" && while IFS= read -r -d '' f; do [[ -f $f ]] && printf '%s\0' "$f"; done) \
      >"$work/files"
  tar -C "$src" --null -T "$work/files" --transform "s,^,$directory/," -czf "$cache/$filename"
else
  tar -C "$src" --exclude='./build*' --exclude=./subprojects --transform "s,^\./,$directory/," \
    -czf "$cache/$filename" .
fi
# The wrap names the archive's URL; an archive in packagecache/ is used instead (hash checked).
hash=$(sha256sum "$cache/$filename" | cut -d' ' -f1)
sed -i "s|^source_hash = .*|source_hash = $hash|" "$wrap"
run_quiet "$work/setup.log" meson setup --force-fallback-for=corio "$readme/meson/build" \
  "$readme/meson"
run_quiet "$work/compile.log" meson compile -C "$readme/meson/build"
[[ -d $readme/meson/subprojects/$directory ]] || fail "meson did not unpack the wrap's archive"
# Only the library was built for the subproject.
if find "$readme/meson/build/subprojects" -name '*_test' -o -name 'spawn_demo' | grep -q .; then
  fail "the subproject build compiled more than the library"
fi
expect_42 "subproject (README's corio.wrap and meson.build)" "$readme/meson/build/app"

# 2. Installed into a prefix, found through pkg-config.
prefix=$work/prefix
run_quiet "$work/isetup.log" meson setup "$work/corio-build" "$src" -Dtests=disabled \
  -Dsamples=disabled -Dbenchmarks=disabled --prefix="$prefix"
run_quiet "$work/install.log" meson install -C "$work/corio-build"
pc=$(find "$prefix" -name corio.pc | head -1)
[[ -n $pc ]] || fail "corio.pc was not installed"
[[ -f $prefix/include/corio/corio.hpp ]] || fail "headers were not installed"
find "$prefix" -name 'libcorio.*' | grep -q . || fail "the library was not installed"
export PKG_CONFIG_PATH=$(dirname "$pc")
# shellcheck disable=SC2046  # the flags are words
c++ -std=c++20 -o "$work/snippet-pc" "$snippet" $(pkg-config --cflags --libs corio)
expect_42 "install + pkg-config" "$work/snippet-pc"
run_quiet "$work/cmake.log" cmake -S "$readme/cmake" -B "$work/cmake-build"
run_quiet "$work/cmake-build.log" cmake --build "$work/cmake-build"
expect_42 "install + CMake (README's CMakeLists.txt)" "$work/cmake-build/app"
run_quiet "$work/make.log" make -C "$readme/make"
expect_42 "install + make (README's Makefile)" "$readme/make/app"
