#!/usr/bin/env bash
# Integration: samples/https_server (the HTTP sample behind corio::tls) with real TLS clients.
#   curl --insecure: GET /, keep-alive over one TLS connection, POST /echo (1 MiB, chunked).
#   curl with the throw-away CA: the certificate verifies for "localhost"; a wrong name fails.
#   openssl s_client: a raw request over TLS gets "Hello, World!" and a close_notify ends it.
#   garbage instead of a ClientHello: that connection fails, the server keeps serving.
#   wrk over TLS: 2 s of load, no socket errors, no non-2xx. Bad --cert/--key: exit 1 with a
#   message. SIGTERM with open connections: exit 0.
# The certificates are made here with `openssl` and removed at the end.
set -euo pipefail
dir=$1
# shellcheck source=harness.sh
source "$(dirname "$0")/harness.sh"

# A CA and a server certificate for localhost and 127.0.0.1, signed by it.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=corio-test-ca \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
  -keyout "$work/key.pem" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$work/san.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 2 -extfile "$work/san.ext" -out "$work/cert.pem" 2>/dev/null

start() { start_sample https_server --cert "$work/cert.pem" --key "$work/key.pem" "$@"; }
stop() { stop_sample "$1"; }

# Bad certificate arguments: a clear message and exit status 1, not a crash.
rc=0
timeout 10 "$dir/https_server" --cert "$work/missing.pem" --key "$work/key.pem" --port 0 \
  >"$work/bad.log" 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "a missing certificate: exit $rc, expected 1"
grep -q "missing.pem" "$work/bad.log" || fail "the error does not name the missing file"
rc=0
timeout 10 "$dir/https_server" --cert "$work/ca.pem" --key "$work/key.pem" --port 0 \
  >"$work/bad.log" 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "a key that does not match the certificate: exit $rc, expected 1"

for w in 1 2; do
  start --port 0 --workers "$w"
  base="https://127.0.0.1:$port"

  got=$(timeout 10 curl -sk "$base/")
  [[ $got == "Hello, World!" ]] || fail "GET / answered '$got'"

  # Keep-alive: two requests, one TLS connection.
  n=$(timeout 10 curl -sk -o /dev/null -o /dev/null -w '%{num_connects}\n' "$base/" "$base/" |
    awk '{ s += $1 } END { print s }')
  [[ $n == 1 ]] || fail "two requests used $n connections"

  # The CA verifies the certificate for localhost; any other name is refused by curl.
  got=$(timeout 10 curl -s --cacert "$work/ca.pem" --resolve "localhost:$port:127.0.0.1" \
    "https://localhost:$port/")
  [[ $got == "Hello, World!" ]] || fail "verified GET answered '$got'"
  if timeout 10 curl -s --cacert "$work/ca.pem" --resolve "wrong.example:$port:127.0.0.1" \
    "https://wrong.example:$port/" >/dev/null 2>&1; then
    fail "curl accepted the certificate for a wrong host name"
  fi

  head -c $((1 << 20)) /dev/urandom >"$work/blob"
  timeout 20 curl -sk --data-binary @"$work/blob" -H 'Content-Type: application/octet-stream' \
    -o "$work/blob.echo" "$base/echo"
  cmp -s "$work/blob" "$work/blob.echo" || fail "POST /echo of 1 MiB came back different"
  timeout 20 curl -sk -H 'Transfer-Encoding: chunked' --data-binary @"$work/blob" \
    -o "$work/blob.echo" "$base/echo"
  cmp -s "$work/blob" "$work/blob.echo" || fail "a chunked POST /echo came back different"

  # openssl s_client: a request typed on the TLS connection.
  got=$(printf 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
    timeout 10 openssl s_client -quiet -connect "127.0.0.1:$port" -servername localhost \
      2>"$work/s_client.log" || true)
  grep -q "Hello, World!" <<<"$got" || fail "s_client got '$got'"
  grep -q "^HTTP/1.1 200" <<<"$got" || fail "s_client got no 200 status line"

  # Garbage instead of a handshake ends that connection only.
  head -c 300 /dev/urandom | timeout 5 socat -t 2 - "TCP:127.0.0.1:$port" >/dev/null 2>&1 || true
  got=$(timeout 10 curl -sk "$base/")
  [[ $got == "Hello, World!" ]] || fail "after a garbage handshake GET / answered '$got'"

  out=$(timeout 20 wrk -t1 -c20 -d2s "$base/" 2>&1) || fail "wrk failed: $out"
  if grep -qE 'Socket errors|Non-2xx' <<<"$out"; then fail "wrk saw errors: $out"; fi
  echo "https_server, $w workers: $(awk '/Requests\/sec/ {print $2}' <<<"$out") req/s over TLS"

  # SIGTERM with a connection open (an idle s_client).
  (sleep 5 | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$port" >/dev/null 2>&1) &
  pids+=($!)
  disown $!
  sleep 0.5
  stop TERM
done
echo "https_samples: ok"
