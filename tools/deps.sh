#!/usr/bin/env bash
# Installs the Debian 12 packages a step needs, only those missing (idempotent).
#   tools/deps.sh build      compilers, meson, liburing, fmt, doctest; OpenSSL and http-parser
#                            for TLS and the protocol samples; the real clients the tests drive
#                            (socat, curl, wrk, slowhttptest, openssl, node with npm for the
#                            `ws` package);
#                            cmake and make, which the consumer test builds the README's files with
#   tools/deps.sh ci         + clang-14 and its sanitizer runtimes, clang-format, doxygen (the API
#                            reference check, tools/api-docs)
set -euo pipefail
want=(g++ meson ninja-build pkg-config liburing-dev libfmt-dev doctest-dev
      libssl-dev openssl libhttp-parser-dev socat curl wrk slowhttptest cmake make)
# Node.js may come from elsewhere (nodesource); Debian's packages only where there is none.
command -v node >/dev/null || want+=(nodejs)
command -v npm >/dev/null || want+=(npm)
case "${1:-build}" in
  build) ;;
  ci) want+=(clang-14 libclang-rt-14-dev clang-format doxygen) ;;
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
