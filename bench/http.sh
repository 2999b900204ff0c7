#!/usr/bin/env bash
# HTTP plaintext (TechEmpower shape: GET / -> "Hello, World!", keep-alive) with wrk, interleaved
# round by round so that the machine's slow and fast phases hit every server alike:
#   nginx        one worker (../shared/bench/servers/nginx.sh), on CPU 0
#   corio-1w     samples/http_server --workers 1, on CPU 0 (pooled reads: read_some_pooled)
#   corio-copy-1w  the same with --reads copy (a 16 KiB read buffer per connection)
#   corio-2w     samples/http_server --workers 2, on CPUs 0-1 (wrk shares CPU 1 with it)
#   corio-tls-1w samples/https_server --workers 1, on CPU 0 (wrk over TLS; a throw-away cert)
# wrk runs with one thread on CPU 1. Prints requests/s median [min-max] per server and the
# server's CPU time per request (robust when wrk saturates its core), wrk's own CPU share (near
# 100%: the client, not the server, set the pace, and req/s ratios say little), and the medians
# of the per-round ratios for the pairs that matter (corio/nginx, https/http).
# Usage: bench/http.sh [-r rounds] [-t secs] [-c conns] [-o out.md]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5 secs=3 conns=50 out=""
while getopts r:t:c:o: o; do
  case $o in r) rounds=$OPTARG ;; t) secs=$OPTARG ;; c) conns=$OPTARG ;; o) out=$OPTARG ;; *) exit 2 ;; esac
done
shared=$(realpath "${SHARED_BENCH:-../shared/bench}")
tools/deps.sh build
command -v nginx >/dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
}
[[ -f build-bench/build.ninja ]] || meson setup build-bench --buildtype=release -Dtests=disabled >/dev/null
ninja -C build-bench samples/http_server samples/https_server >/dev/null
bin=$(realpath build-bench/samples)

work=$(mktemp -d)
pid=""
cleanup() {
  [[ -n $pid ]] && kill -- -"$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -keyout "$work/key.pem" \
  -out "$work/cert.pem" 2>/dev/null

# name, scheme, CPUs of the server, command (the port is appended).
servers=(
  "nginx|http|0|$shared/servers/nginx.sh"
  "corio-1w|http|0|$bin/http_server --workers 1 --port"
  "corio-copy-1w|http|0|$bin/http_server --workers 1 --reads copy --port"
  "corio-2w|http|0,1|$bin/http_server --workers 2 --port"
  "corio-tls-1w|https|0|$bin/https_server --workers 1 --cert $work/cert.pem --key $work/key.pem --port"
)
# CPU ticks (utime + stime) of every process in session $1 (the server and its children).
session_ticks() {
  local total=0 p f
  for p in $(ps -o pid= --sid "$1" 2>/dev/null); do
    f=$(cut -d')' -f2 "/proc/$p/stat" 2>/dev/null) || continue
    total=$((total + $(awk '{print $12 + $13}' <<<"$f")))
  done
  echo "$total"
}

raw=$work/raw.tsv
TIMEFORMAT='%R %U %S'  # bash's `time`: wall, user and system seconds
port=${PORT_BASE:-18100}
for ((r = 1; r <= rounds; r++)); do
  for s in "${servers[@]}"; do
    IFS='|' read -r name scheme cpus cmd <<<"$s"
    port=$((port + 1))
    url="$scheme://127.0.0.1:$port/"
    # setsid: the server (and nginx's worker) get a process group of their own to kill.
    setsid taskset -c "$cpus" $cmd $port >"$work/$name.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sk -o /dev/null "$url" && break; sleep 0.05; done
    t0=$(session_ticks "$pid")
    # bash's `time` of the client: its CPU share says whether wrk, not the server, set the pace.
    res=$({ time taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" "$url" 2>&1; } 2>"$work/time")
    t1=$(session_ticks "$pid")
    client=$(awk '{printf "%.0f", ($1 > 0 ? ($2 + $3) * 100 / $1 : 0)}' "$work/time")
    kill -- -"$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$res")
    errors=$(grep -cE 'Socket errors|Non-2xx' <<<"$res" || true)
    reqs=$(awk '/requests in/ {print $1}' <<<"$res")
    # Server CPU per request (user + system, every process of the server's session), in us.
    cpu=$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="${reqs:-0}" \
      'BEGIN { printf "%.3f", (n > 0 ? t * 1e6 / hz / n : 0) }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$name" "${rps:-0}" "$errors" "$cpu" "$client" |
      tee -a "$raw" >&2
  done
done

python3 - "$raw" <<'PY' | tee ${out:+"$out"}
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines() if l]
names = list(dict.fromkeys(r[1] for r in rows))
rps = {n: {int(r[0]): float(r[2]) for r in rows if r[1] == n} for n in names}
cpu = {n: {int(r[0]): float(r[4]) for r in rows if r[1] == n} for n in names}
client = {n: [float(r[5]) for r in rows if r[1] == n] for n in names}
print("| server | req/s median [min-max] | server CPU us/req median | wrk CPU % median | rounds with errors |")
print("|---|---|---:|---:|---:|")
for n in names:
    v = list(rps[n].values())
    bad = sum(1 for r in rows if r[1] == n and r[3] != "0")
    c = statistics.median(cpu[n].values())
    w = statistics.median(client[n])
    print(f"| {n} | {statistics.median(v):,.0f} [{min(v):,.0f}-{max(v):,.0f}] | {c:.2f} | {w:.0f} | {bad} |")
print("\n| ratio (same round) | req/s median [min-max] | server CPU per request |\n|---|---|---|")
for b, a in [("corio-1w", "nginx"), ("corio-copy-1w", "nginx"), ("corio-1w", "corio-copy-1w"),
             ("corio-2w", "nginx"), ("corio-tls-1w", "corio-1w")]:
    q = [rps[b][k] / rps[a][k] for k in rps[a] if k in rps[b] and rps[a][k] > 0]
    c = [cpu[b][k] / cpu[a][k] for k in cpu[a] if k in cpu[b] and cpu[a][k] > 0]
    if q and c:
        print(f"| {b} / {a} | {statistics.median(q):.3f} [{min(q):.3f}-{max(q):.3f}] | "
              f"{statistics.median(c):.3f} [{min(c):.3f}-{max(c):.3f}] |")
PY
