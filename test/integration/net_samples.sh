#!/usr/bin/env bash
# Integration: the networking samples with real clients (socat), and the load client.
#   echo_tcp: socat round trips (a line, 1 MiB), echo_client verifies 2 s of load (and stops
#     cleanly on SIGINT, with its summary), SIGTERM exits 0; echo_client exits 1, saying why,
#     against a server that echoes wrong bytes, one that echoes too few, and a closed port;
#     with CORIO_DUMP_ON_SIGQUIT=1, SIGQUIT prints the tasks (the accept loop, a connection's
#     read) and the server goes on serving.
#   echo_udp: socat datagrams.  general_io: files and pipes through stdin/stdout, SIGINT on a pipe.
set -euo pipefail
dir=$1
# shellcheck source=harness.sh
source "$(dirname "$0")/harness.sh"
start() { start_sample "$@"; }
stop() { stop_sample "$1"; }

head -c $((1 << 20)) /dev/urandom >"$work/blob"

start echo_tcp --port 0 --workers 2
got=$(printf 'hello corio\n' | socat -t 2 - "TCP:127.0.0.1:$port")
[[ $got == "hello corio" ]] || { echo "echo_tcp answered '$got'"; exit 1; }
socat -t 3 - "TCP:127.0.0.1:$port" <"$work/blob" >"$work/blob.echo"
cmp "$work/blob" "$work/blob.echo" || { echo "echo_tcp mangled 1 MiB"; exit 1; }
"$dir/echo_client" --port "$port" -c 20 -l 100 -d 2 -t 1 >"$work/client.log"
grep -q "errors: 0" "$work/client.log" || { cat "$work/client.log"; exit 1; }
grep -o '[0-9]* msgs/s' "$work/client.log"
# SIGINT ends a long run early, cleanly, with the summary of what was measured.
"$dir/echo_client" --port "$port" -c 5 -l 64 -d 60 -t 1 >"$work/client-int.log" 2>&1 &
client=$!
pids+=($client)
sleep 1
kill -INT "$client"
rc=0
timeout 10 tail --pid="$client" -f /dev/null || fail "echo_client ignored SIGINT"
wait "$client" || rc=$?
[[ $rc == 0 ]] || { cat "$work/client-int.log"; fail "echo_client exit status $rc after SIGINT"; }
grep -q "interrupted" "$work/client-int.log" && grep -q "errors: 0" "$work/client-int.log" ||
  { cat "$work/client-int.log"; fail "echo_client printed no summary after SIGINT"; }
stop TERM
echo "echo_tcp: ok"

# echo_client fails, saying why, when the echo is wrong or short, or nobody listens.
free_port=""
serve_through() {  # socat on a free port, each connection through the program $1
  for _ in $(seq 20); do
    free_port=$((20000 + RANDOM % 20000))
    socat "TCP-LISTEN:$free_port,bind=127.0.0.1,reuseaddr,fork" "EXEC:$1" 2>/dev/null &
    local pid=$!
    for _ in $(seq 20); do
      (exec 3<>"/dev/tcp/127.0.0.1/$free_port") 2>/dev/null && { pids+=($pid); return 0; }
      kill -0 "$pid" 2>/dev/null || break  # the port was taken: try another
      sleep 0.05
    done
    kill "$pid" 2>/dev/null || true
  done
  fail "socat did not start"
}
stop_socat() {
  kill "${pids[-1]}"
  wait "${pids[-1]}" 2>/dev/null || true
}
expect_client_failure() {  # $1: what the error must say; the rest: echo_client's arguments
  local want=$1 rc=0
  shift
  timeout 30 "$dir/echo_client" "$@" >"$work/bad.log" 2>&1 || rc=$?
  [[ $rc == 1 ]] && grep -q "$want" "$work/bad.log" ||
    { cat "$work/bad.log"; fail "echo_client: exit status $rc, expected 1 and '$want'"; }
}
printf '#!/bin/sh\nexec stdbuf -o0 tr "\\000-\\177" "\\001-\\177\\000"\n' >"$work/flip"
printf '#!/bin/sh\nexec head -c 10\n' >"$work/short"
chmod +x "$work/flip" "$work/short"
serve_through "$work/flip"
expect_client_failure "wrong bytes echoed" --port "$free_port" -c 3 -l 64 -d 2 -t 1
stop_socat
serve_through "$work/short"
expect_client_failure "the server closed after 10 of 64" --port "$free_port" -c 3 -l 64 -d 2 -t 1
stop_socat
expect_client_failure "Connection refused" --port "$port" -c 3 -l 64 -d 1 -t 1  # echo_tcp is gone
echo "echo_client failures: ok"

CORIO_DUMP_ON_SIGQUIT=1 start echo_tcp --port 0 --workers 2
# A connection that stays open (socat keeps reading the fifo this script holds open).
mkfifo "$work/hold"
socat -u "$work/hold" "TCP:127.0.0.1:$port" &
pids+=($!)
exec 4>"$work/hold"
sleep 0.3
kill -s QUIT "$server"
for _ in $(seq 100); do
  grep -Eq "read(_some_pooled)? on fd" "$work/server.log" && break
  sleep 0.05
done
grep -q '^corio: [0-9]* live tasks' "$work/server.log" || fail "no task dump after SIGQUIT"
grep -Eq '^task [0-9]+ "[^"]*" waiting .*: accept on fd [0-9]+' "$work/server.log" ||
  fail "the dump does not show the accept loop"
grep -Eq '^task [0-9]+ "[^"]*" waiting .*: read(_some_pooled)? on fd [0-9]+ \(peer 127\.0\.0\.1:[0-9]+\)' \
  "$work/server.log" ||
  fail "the dump does not show the connection's read"
grep -Eq '^    #0 [a-z_]+ at .*echo_tcp.cpp:[0-9]+$' "$work/server.log" ||
  fail "the dump has no backtrace into echo_tcp.cpp"
got=$(printf 'still here\n' | socat -t 2 - "TCP:127.0.0.1:$port")
[[ $got == "still here" ]] || fail "echo_tcp stopped serving after SIGQUIT"
exec 4>&-
stop TERM
echo "echo_tcp SIGQUIT dump: ok"

start echo_udp --port 0 --tasks 3
got=$(printf 'ping' | socat -t 1 - "UDP:127.0.0.1:$port")
[[ $got == "ping" ]] || { echo "echo_udp answered '$got'"; exit 1; }
stop INT
echo "echo_udp: ok"

"$dir/general_io" <"$work/blob" >"$work/out" 2>/dev/null
cmp "$work/blob" "$work/out" || { echo "general_io changed a file"; exit 1; }
cat "$work/blob" | "$dir/general_io" 2>/dev/null | cat >"$work/out2"
cmp "$work/blob" "$work/out2" || { echo "general_io changed a pipe"; exit 1; }
# A pipe that stays open (this script holds the writing end of a fifo): SIGINT must stop the
# pending read.
mkfifo "$work/fifo"
"$dir/general_io" <"$work/fifo" >/dev/null 2>&1 &
server=$!
pids+=($server)
exec 3>"$work/fifo"
sleep 0.3
stop INT
exec 3>&-
echo "general_io: ok"
