#!/usr/bin/env bash
# Installs the Debian 12 packages a step needs, only those missing (idempotent).
#   tools/deps.sh build      compilers, meson, liburing, fmt, doctest
#   tools/deps.sh ci         + clang-14 and its sanitizer runtimes, clang-format
set -euo pipefail
want=(g++ meson ninja-build pkg-config liburing-dev libfmt-dev doctest-dev socat)
case "${1:-build}" in
  build) ;;
  ci) want+=(clang-14 libclang-rt-14-dev clang-format) ;;
  *) echo "usage: $0 [build|ci]" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
echo "installing: ${missing[*]}" >&2
sudo=()
((EUID == 0)) || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
