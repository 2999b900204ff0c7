#!/usr/bin/env bash
# Integration: samples/http_server with real clients.
#   curl: GET / (plaintext shape), HEAD, keep-alive (two URLs, one connection), POST /echo with a
#     chunked upload and a 2 MiB Content-Length body (Expect: 100-continue), 413 for bodies over
#     --max-body, static files byte-exact, 404, 405, path traversal and symlink escapes refused,
#     a 3 GiB file served whole with flat memory (T38).
#   raw requests (socat, bash /dev/tcp): three pipelined requests in one packet answered in order,
#     fifty pipelined requests answered in a few segments (the responses are batched), 1,000
#     pipelined GETs and POSTs answered in order, malformed
#     input -> 400 and a closed connection, huge headers -> 431, gzip coding -> 501, a client
#     that sends one byte a second -> 408 while another client is served, a silent one -> 408.
#   wrk: 2 s of keep-alive load with 1 and 2 workers, no socket error, no non-2xx answer.
#   SIGINT and SIGTERM with open connections: exit 0.
set -euo pipefail
dir=$1
# shellcheck source=harness.sh
source "$(dirname "$0")/harness.sh"
start() {
  start_sample http_server "$@"
  base="http://127.0.0.1:$port"
}
stop() { stop_sample "$1"; }

# raw BYTES [SECONDS]: sends BYTES (printf format) on a new connection and prints the answer.
# Fails if the server has not closed the connection within SECONDS (default 5).
raw() {
  local rc=0
  printf "$1" | timeout "${2:-5}" socat -t 30 - "TCP:127.0.0.1:$port" || rc=$?
  [[ $rc == 124 ]] && fail "the server kept the connection open after: $1"
  return 0
}

status_of() { head -1 | tr -d '\r' | cut -d' ' -f2; }

# The static root is on tmpfs when there is one: the 3 GiB sparse file below then reads as
# zeros without filling the page cache.
root=$(mktemp -d -p /dev/shm corio-http-XXXXXX 2>/dev/null || true)
if [[ -n $root ]]; then
  extra_dirs+=("$root")
else
  root=$work/root
fi
mkdir -p "$root/sub"
head -c 200000 /dev/urandom >"$root/sub/blob.bin"
printf 'static text\n' >"$root/hello.txt"
: >"$root/empty.txt"
printf 'secret\n' >"$work/secret.txt"
ln -s "$work/secret.txt" "$root/escape.txt"
ln -s hello.txt "$root/inside.txt"
head -c $((300 * 1024)) /dev/urandom >"$work/up300k"
head -c $((2 << 20)) /dev/urandom >"$work/up2m"
head -c $((5 << 20)) /dev/urandom >"$work/up5m"

# --help and bad options.
"$dir/http_server" --help | grep -q -- '--root' || fail "--help does not list --root"
rc=0
"$dir/http_server" --root "$work/missing" --port 0 >"$work/bad.log" 2>&1 || rc=$?
[[ $rc == 1 ]] && grep -q missing "$work/bad.log" || fail "a missing --root: exit $rc"

start --port 0 --workers 2 --root "$root" --max-body $((4 << 20)) --header-timeout-ms 1500

# GET /: the TechEmpower plaintext shape.
timeout 10 curl -sS -D "$work/h" -o "$work/b" "$base/" || fail "GET / failed"
[[ $(cat "$work/b") == "Hello, World!" ]] || fail "GET / answered '$(cat "$work/b")'"
tr -d '\r' <"$work/h" >"$work/hh"
grep -q '^HTTP/1.1 200 OK$' "$work/hh" || fail "GET / status: $(head -1 "$work/hh")"
grep -q '^Content-Type: text/plain$' "$work/hh" || fail "no Content-Type: text/plain"
grep -q '^Content-Length: 13$' "$work/hh" || fail "no Content-Length: 13"
grep -q '^Server: corio$' "$work/hh" || fail "no Server header"
grep -qE '^Date: [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} GMT$' "$work/hh" ||
  fail "no Date header"
head_out=$(timeout 10 curl -sS -I "$base/" | tr -d '\r')
grep -q '^Content-Length: 13$' <<<"$head_out" || fail "HEAD / lacks Content-Length: 13"

# Keep-alive: two requests, one connection (also with HTTP/1.0 and Connection: keep-alive).
n=$(timeout 10 curl -sS -o /dev/null -o /dev/null -w '%{num_connects}\n' "$base/" "$base/" |
  awk '{ s += $1 } END { print s }')
[[ $n == 1 ]] || fail "two requests used $n connections"
n=$(timeout 10 curl -sS -0 -H 'Connection: keep-alive' -o /dev/null -o /dev/null \
  -w '%{num_connects}\n' "$base/" "$base/" | awk '{ s += $1 } END { print s }')
[[ $n == 1 ]] || fail "two HTTP/1.0 keep-alive requests used $n connections"
echo "GET /, HEAD, keep-alive: ok"

# POST /echo: small, chunked, and 2 MiB with Content-Length (curl sends Expect: 100-continue).
got=$(timeout 10 curl -sS --data-binary 'echo me' "$base/echo")
[[ $got == "echo me" ]] || fail "POST /echo answered '$got'"
timeout 20 curl -sS -H 'Transfer-Encoding: chunked' --data-binary @"$work/up300k" \
  -o "$work/echo300k" "$base/echo" || fail "chunked upload failed"
cmp -s "$work/up300k" "$work/echo300k" || fail "a chunked upload came back different"
timeout 20 curl -sS -v --data-binary @"$work/up2m" -o "$work/echo2m" "$base/echo" \
  2>"$work/curl2m.log" || fail "2 MiB upload failed"
cmp -s "$work/up2m" "$work/echo2m" || fail "a 2 MiB upload came back different"
grep -q '100 Continue' "$work/curl2m.log" || fail "no 100 Continue before a 2 MiB body"
code=$(timeout 20 curl -sS -o /dev/null -w '%{http_code}' --data-binary @"$work/up5m" \
  "$base/echo" || true)
[[ $code == 413 ]] || fail "5 MiB with --max-body 4 MiB: $code, expected 413"
code=$(timeout 20 curl -sS -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' \
  --data-binary @"$work/up5m" "$base/echo" || true)
[[ $code == 413 ]] || fail "5 MiB chunked: $code, expected 413"
# Without Expect the client is still sending when the 413 goes out: the lingering close drains
# its body, so that the kernel does not reset the connection before curl has read the answer.
code=$(timeout 20 curl -sS -o /dev/null -w '%{http_code}' -H 'Expect:' \
  --data-binary @"$work/up5m" "$base/echo" || true)
[[ $code == 413 ]] || fail "5 MiB without Expect: $code, expected 413"
echo "POST /echo (chunked, 2 MiB, 100-continue, 413): ok"

# Static files, methods, paths.
timeout 10 curl -sS -o "$work/blob.got" "$base/static/sub/blob.bin" || fail "static GET failed"
cmp -s "$root/sub/blob.bin" "$work/blob.got" || fail "a static file came back different"
[[ $(timeout 10 curl -sS "$base/static/hello.txt") == "static text" ]] || fail "hello.txt"
[[ $(timeout 10 curl -sS "$base/static/inside.txt") == "static text" ]] ||
  fail "a symlink inside the root is not served"
[[ $(timeout 10 curl -sS -w '%{http_code}' "$base/static/empty.txt") == 200 ]] ||
  fail "an empty file"
[[ $(timeout 10 curl -sS "$base/static/s%75b/blob.bin" | cmp - "$root/sub/blob.bin" &&
  echo same) == same ]] || fail "a percent-encoded path"
grep -qi '^Content-Length: 200000' <(timeout 10 curl -sS -I "$base/static/sub/blob.bin" |
  tr -d '\r') || fail "HEAD on a static file"
code_of() { timeout 10 curl -sS -o "$work/code.body" -w '%{http_code}' "$@" || true; }
[[ $(code_of "$base/static/nope.txt") == 404 ]] || fail "a missing file is not 404"
[[ $(code_of "$base/static/sub") == 404 ]] || fail "a directory is not 404"
[[ $(code_of "$base/nowhere") == 404 ]] || fail "an unknown path is not 404"
[[ $(code_of -X POST "$base/static/hello.txt") == 405 ]] || fail "POST /static is not 405"
[[ $(code_of "$base/echo") == 405 ]] || fail "GET /echo is not 405"
[[ $(code_of -X DELETE "$base/") == 405 ]] || fail "DELETE / is not 405"
for path in "/static/../secret.txt" "/static/sub/../../secret.txt" "/static/%2e%2e/secret.txt" \
  "/static/escape.txt" "/static/$work/secret.txt" "/static/%2Fetc%2Fpasswd"; do
  code=$(code_of --path-as-is "$base$path")
  [[ $code == 403 ]] || fail "$path: $code, expected 403"
  grep -q secret "$work/code.body" && fail "$path leaked the secret"
done
echo "static files, 404, 405, traversal: ok"

# T38: a 3 GiB file (sparse) comes back whole, streamed: the server's peak resident memory
# (VmHWM) stays within 64 MiB of its resident memory before.
big=$((3 << 30))
truncate -s "$big" "$root/big.bin"
rss_before=$(awk '/^VmRSS:/ {print $2}' "/proc/$server/status")
t0=$EPOCHREALTIME
got=$(timeout 120 curl -sS -o /dev/null -w '%{size_download}' "$base/static/big.bin") ||
  fail "the 3 GiB download failed"
secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$server/status")
[[ $got == "$big" ]] || fail "the 3 GiB file came back as $got bytes"
((hwm - rss_before < 64 * 1024)) ||
  fail "serving 3 GiB raised the peak RSS from $rss_before to $hwm KiB"
rm -f "$root/big.bin"
echo "a 3 GiB static file: whole, in $secs s, peak RSS $((hwm / 1024)) MiB" \
  "(before: $((rss_before / 1024)) MiB): ok"

# Three pipelined requests in one packet: answered in order.
raw 'GET /?1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecondGET /?3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >"$work/pipe.out"
order=$(grep -ao 'Hello, World!\|second' "$work/pipe.out" | tr '\n' ' ')
[[ $order == "Hello, World! second Hello, World! " ]] || fail "pipelined answers: '$order'"
[[ $(grep -ao 'HTTP/1.1 200 OK' "$work/pipe.out" | wc -l) == 3 ]] || fail "pipelined: not three 200s"

# Fifty pipelined requests in one write: the answers leave batched, in a few TCP segments.
for i in $(seq 50); do printf 'GET /?%d HTTP/1.1\r\nHost: x\r\n\r\n' "$i"; done >"$work/fifty.req"
one=$(printf 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
  timeout 5 socat -t 5 - "TCP:127.0.0.1:$port" | wc -c)
exec 3<>"/dev/tcp/127.0.0.1/$port"
cat "$work/fifty.req" >&3  # one write of 1.5 KiB
# Each answer is as long as $one minus its "Connection: close\r\n" line.
timeout 5 head -c $((50 * (one - 19))) <&3 >"$work/fifty.out" || fail "fifty pipelined answers"
segs=$(ss -tinH state established "( sport = :$port )" | grep -o 'segs_out:[0-9]*' |
  cut -d: -f2 | sort -n | tail -1 || true)
exec 3<&-
[[ $(grep -ao 'Hello, World!' "$work/fifty.out" | wc -l) == 50 ]] || fail "fifty pipelined: wrong count"
[[ -n $segs && $segs -lt 20 ]] || fail "fifty pipelined answers took ${segs:-?} segments"
echo "pipelining: ok (50 answers in $segs segments)"

# 1,000 pipelined requests on one connection, GETs and POST /echo bodies alternating (T35): 1,001
# answers, and the echoed bodies come back in order.
for i in $(seq 1000); do
  if ((i % 2)); then
    printf 'GET /?%d HTTP/1.1\r\nHost: x\r\n\r\n' "$i"
  else
    printf 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n<%d>' $((${#i} + 2)) "$i"
  fi
done >"$work/thousand.req"
printf 'GET /?last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >>"$work/thousand.req"
timeout 20 socat -t 10 - "TCP:127.0.0.1:$port" <"$work/thousand.req" >"$work/thousand.out" ||
  fail "1,000 pipelined requests: no answer"
n=$(grep -ao 'HTTP/1.1 200 OK' "$work/thousand.out" | wc -l)
[[ $n == 1001 ]] || fail "1,000 pipelined requests: $n answers of 1001"
[[ $(grep -ao '<[0-9]*>' "$work/thousand.out" | tr -d '<>' | tr '\n' ' ') == \
   "$(seq 2 2 1000 | tr '\n' ' ')" ]] || fail "1,000 pipelined requests: echoes out of order"
echo "1,000 pipelined requests: ok"

# Bad input: the right status, and the connection closed.
check_raw() {  # expected-status request
  local got
  got=$(raw "$2" | status_of)
  [[ $got == "$1" ]] || fail "expected $1, got '${got}' for: $2"
}
check_raw 400 'GARBAGE\r\n\r\n'
check_raw 400 'GET / HTTP/1.1\r\nBad Header\r\n\r\n'
check_raw 400 'GET / HTTX/1.1\r\nHost: x\r\n\r\n'
check_raw 400 'POST /echo HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
check_raw 400 'POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n'
check_raw 501 'POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n'
check_raw 413 'POST /echo HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n'
check_raw 431 "GET / HTTP/1.1\r\nX-Big: $(head -c 20000 /dev/zero | tr '\0' a)\r\n\r\n"
raw 'GARBAGE\r\n\r\n' | tr -d '\r' | grep -q '^Connection: close$' || fail "400 without close"
# A truncated request and the client's EOF: 400, no hang.
check_raw 400 'POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc'
echo "400, 413, 431, 501: ok"

# A client that sends one header byte a second gets 408 after --header-timeout-ms (1.5 s), while
# another client is served meanwhile; a silent one gets 408 too.
t0=$(date +%s%N)
(for c in G E T ' ' / ' ' H T T P; do printf '%s' "$c"; sleep 1; done) |
  timeout 10 socat -t 1 - "TCP:127.0.0.1:$port" 2>/dev/null |
  { IFS= read -r first || true; date +%s%N >"$work/slow.t"; printf '%s\n' "$first"; cat; } \
    >"$work/slow.out" &
slow=$!
pids+=($slow)
timeout 5 socat -u "TCP:127.0.0.1:$port" - >"$work/silent.out" &
silent=$!
pids+=($silent)
sleep 0.3
[[ $(timeout 2 curl -sS "$base/") == "Hello, World!" ]] || fail "not served beside a slow client"
wait "$silent" || fail "the silent client's connection was not closed"
wait "$slow" || true
[[ $(status_of <"$work/slow.out") == 408 ]] || fail "slow client: '$(head -1 "$work/slow.out")'"
[[ $(status_of <"$work/silent.out") == 408 ]] || fail "silent client: no 408"
ms=$((($(cat "$work/slow.t") - t0) / 1000000))
((ms >= 1400 && ms < 4000)) || fail "the slow client's 408 came after $ms ms, expected about 1500"
# An idle keep-alive connection is closed after the head timeout without a 408.
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&3
timeout 5 cat <&3 >"$work/idle.out" || fail "an idle keep-alive connection stayed open"
exec 3<&-
[[ $(grep -ao 'HTTP/1.1 [0-9]*' "$work/idle.out" | tr '\n' ' ') == "HTTP/1.1 200 " ]] ||
  fail "idle keep-alive connection: $(grep -ao 'HTTP/1.1 [0-9]*' "$work/idle.out")"
echo "408 for slow and silent clients, quiet close of idle keep-alive: ok"

# wrk: keep-alive load, no socket errors, no non-2xx answers.
load() {
  local out
  out=$(timeout 20 wrk -t1 -c50 -d2s "$base/" 2>&1) || fail "wrk failed: $out"
  grep -qE 'Socket errors|Non-2xx' <<<"$out" && fail "wrk saw errors: $out"
  local rps
  rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
  [[ -n $rps ]] || fail "wrk printed no rate: $out"
  echo "wrk ($1 workers): $rps requests/s"
}
load 2

# SIGTERM with a connection open.
exec 3<>"/dev/tcp/127.0.0.1/$port"
stop TERM
exec 3<&-

start --port 0 --workers 1
load 1
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET / HT' >&3
stop INT
exec 3<&-
echo "SIGTERM, SIGINT: ok"
