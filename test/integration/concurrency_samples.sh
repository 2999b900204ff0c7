#!/usr/bin/env bash
# Integration: the concurrency samples print what they promise, with 1 and 2 workers.
#   spawn: the sum of 100 children.   select: both channels win, every value arrives once, the
#   timeout wins at least once, the sample ends by itself.   loop_select: exact totals.
#   cqueue: 10 events in completion order.   single_thread: the pipeline's sum, one thread.
# Every run is bounded by `timeout`; --help exits 0 for each; SIGINT stops a waiting cqueue.
set -euo pipefail
dir=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() {
  echo "FAIL: $*"
  [[ -f $work/out ]] && sed 's/^/  | /' "$work/out"
  exit 1
}

# Runs a sample with a 30 s bound; its stdout goes to $work/out; it must exit 0.
run() {
  local exe=$1 rc=0
  shift
  timeout -k 5 30 "$dir/$exe" "$@" >"$work/out" 2>"$work/err" || rc=$?
  [[ $rc == 0 ]] || { cat "$work/err"; fail "$exe $* exited with status $rc"; }
}

# Expects a line of $work/out matching the regex $1.
expect() { grep -Eq -- "$1" "$work/out" || fail "no line matching '$1'"; }
# The number of lines of $work/out matching the regex $1.
count() { grep -Ec -- "$1" "$work/out" || true; }

for s in spawn select loop_select cqueue single_thread; do
  timeout 10 "$dir/$s" --help >"$work/out" || fail "$s --help did not exit 0"
  expect "--workers"
  rc=0; timeout 10 "$dir/$s" --no-such-option 2>/dev/null >/dev/null || rc=$?
  [[ $rc == 2 ]] || fail "$s --no-such-option: exit $rc, expected 2"
done

for w in 1 2; do
  run spawn --workers "$w"
  expect "^sum = 5050$"
  run spawn --workers "$w" --children 1000 --yields 10
  expect "^sum = 500500$"

  run select --workers "$w"
  [[ $(count '^a -> ') == 5 ]] || fail "select: expected 5 values from a"
  [[ $(count '^b -> ') == 3 ]] || fail "select: expected 3 values from b"
  [[ $(count '^timeout') -ge 1 ]] || fail "select: the timeout never won"
  [[ $(count '^a -> (10|20|30|40|50)$') == 5 ]] || fail "select: wrong values from a"
  expect "^a: closed$"
  expect "^b: closed$"
  expect "^done: 5 from a, 3 from b, [0-9]+ timeouts$"

  run loop_select --workers "$w"
  expect "^ints: 1000 values, sum 500500$"
  expect "^strings: 500 values, 3390 bytes$"
  run loop_select --workers "$w" --count 20000
  expect "^ints: 20000 values, sum 200010000$"

  run cqueue --workers "$w"
  tags=$(grep -E '^[0-9]+ -> [0-9]+$' "$work/out" | cut -d' ' -f1 | tr '\n' ' ')
  [[ $tags == "0 3 6 9 2 5 8 1 4 7 " ]] || fail "cqueue: tags in order '$tags'"
  values=$(grep -E '^[0-9]+ -> [0-9]+$' "$work/out" | cut -d' ' -f3 | tr '\n' ' ')
  [[ $values == "25 50 75 100 125 150 175 200 225 250 " ]] || fail "cqueue: values '$values'"
  expect "^all jobs done$"
  echo "workers=$w: spawn, select, loop_select, cqueue ok"
done

run single_thread
expect "^pipeline: sum of squares 1\.\.100 = 338350 "
expect "^ping-pong: 1000 round trips$"
expect "^everything ran on one thread: yes$"
run single_thread --workers 1 --count 1000
expect "^pipeline: sum of squares 1\.\.1000 = 333833500 "
rc=0; timeout 10 "$dir/single_thread" --workers 2 2>/dev/null >/dev/null || rc=$?
[[ $rc == 2 ]] || fail "single_thread --workers 2: exit $rc, expected 2"
echo "single_thread ok"

# A signal while the completion queue waits: the jobs are cancelled and the sample exits 0.
"$dir/cqueue" --workers 2 --step-ms 60000 >"$work/out" 2>"$work/err" &
pid=$!
sleep 0.3
kill -s INT "$pid"
timeout 10 tail --pid="$pid" -f /dev/null || { kill -9 "$pid"; fail "cqueue: no exit within 10 s of SIGINT"; }
rc=0; wait "$pid" || rc=$?
[[ $rc == 0 ]] || fail "cqueue: exit status $rc after SIGINT"
echo "cqueue: clean exit on SIGINT"
