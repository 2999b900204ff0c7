#!/usr/bin/env bash
# Integration: the samples' shared command line. --help exits 0, a bad option exits 2, and
# SIGINT or SIGTERM stops a running sample cleanly (exit 0) within a bound.
set -euo pipefail
demo=$1
"$demo" --help | grep -q -- "--workers" || { echo "--help does not list --workers"; exit 1; }
if "$demo" --no-such-option 2>/dev/null; then echo "a bad option was accepted"; exit 1; fi
rc=0; "$demo" --workers x 2>/dev/null || rc=$?
[[ $rc == 2 ]] || { echo "--workers x: exit $rc, expected 2"; exit 1; }
for sig in INT TERM; do
  "$demo" --rounds 1000000 --tasks 20000 --workers 2 >/dev/null &
  pid=$!
  sleep 0.5
  kill -s "$sig" "$pid"
  start=$(date +%s%N)
  rc=0
  timeout 10 tail --pid="$pid" -f /dev/null || { kill -9 "$pid"; echo "SIG$sig: no exit within 10 s"; exit 1; }
  wait "$pid" || rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  [[ $rc == 0 ]] || { echo "SIG$sig: exit status $rc"; exit 1; }
  echo "SIG$sig: clean exit in ${ms} ms"
done
