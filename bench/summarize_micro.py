#!/usr/bin/env python3
"""Turns the raw lines of bench/run.sh into a markdown table: median over rounds of each
benchmark's per-round median, and the ratio corio / peer (below 1 means corio is faster)."""
import re
import statistics
import sys
from collections import defaultdict

vals = defaultdict(list)  # key -> per-round figures (ns/op)
section = ""
for line in open(sys.argv[1]):
    parts = line.split()
    if not parts:
        continue
    if parts[0] == "peer":
        prog, rest = parts[1], " ".join(parts[2:])
        if rest.startswith("-- ring:"):
            section = "defer" if "DEFER" in rest else "default"
            continue
        m = re.match(r"(\S+)(?: \(batch 32\))?\s+([\d.]+) ns/op", rest)
        if not m:
            continue
        name = m.group(1)
        if prog == "uring_micro" and name != "syscall_getppid":
            name += "@" + section
        vals[(prog, name)].append(float(m.group(2)))
    elif parts[0] in ("corio", "corio-norecycle"):
        # corio NAME workers=N median min max
        vals[(parts[0], parts[1] + "/" + parts[2])].append(float(parts[3]))

def med(key):
    v = vals.get(key)
    return statistics.median(v) if v else None

rows = [
    # (what, corio key, peer key, peer label)
    ("co_await a child task that completes at once", ("corio", "task_await/workers=1"),
     ("coro_micro", "task_await_pooled"), "plain C++20 task, pooled frames"),
    ("", ("corio", "task_await/workers=1"), ("coro_micro", "task_await_heap"), "plain C++20 task, heap frames"),
    ("", ("corio", "task_await/workers=1"), ("asio_micro", "co_await_nested"), "Asio co_await nested awaitable"),
    ("spawn + join, one at a time, 1 worker", ("corio", "spawn_join_one/workers=1"),
     ("go_micro", "spawn_join"), "Go go f() + WaitGroup"),
    ("", ("corio", "spawn_join_one/workers=1"), ("asio_micro", "co_spawn_await"), "Asio co_spawn + await"),
    ("spawn + join, one at a time, 2 workers", ("corio", "spawn_join_one/workers=2"),
     ("go_micro", "spawn_join"), "Go (GOMAXPROCS=1)"),
    ("spawn 1000 then join, per task, 1 worker", ("corio", "spawn_join_batch/workers=1"),
     ("go_micro", "spawn_batch1000"), "Go spawn 1000 then join"),
    ("", ("corio", "spawn_join_batch/workers=1"), ("asio_micro", "co_spawn_batch"), "Asio co_spawn batch"),
    ("spawn 1000 then join, per task, 2 workers", ("corio", "spawn_join_batch/workers=2"),
     ("go_micro", "spawn_batch1000"), "Go (GOMAXPROCS=1)"),
    ("yield, nothing else runnable", ("corio", "yield_alone/workers=1"),
     ("go_micro", "gosched_alone"), "Go runtime.Gosched()"),
    ("", ("corio", "yield_alone/workers=1"), ("asio_micro", "post_yield"), "Asio co_await post()"),
    ("yield, two tasks alternating, 1 worker", ("corio", "yield_pair/workers=1"),
     ("go_micro", "gosched_pair"), "Go two goroutines"),
    ("yield, two tasks, 2 workers", ("corio", "yield_pair/workers=2"), ("go_micro", "gosched_pair"), "Go (GOMAXPROCS=1)"),
    ("ring NOP round trip, one at a time", ("corio", "nop_single/workers=1"),
     ("uring_micro", "nop_batch1@defer"), "raw liburing NOP, submit_and_wait each"),
    ("ring NOP, 32 tasks at once (batched), 1 worker", ("corio", "nop_batch32/workers=1"),
     ("uring_micro", "nop_batch32@defer"), "raw liburing NOP batch 32"),
    ("ring NOP, 32 tasks at once, 2 workers", ("corio", "nop_batch32/workers=2"),
     ("uring_micro", "nop_batch32@defer"), "raw liburing NOP batch 32 (1 thread)"),
    ("sleep: arm + expire + resume, 1000 sleepers, 1 worker", ("corio", "sleep_fire/workers=1"),
     ("uring_micro", "timeout_arm_remove@defer"), "raw IORING_OP_TIMEOUT arm + remove"),
    ("same, 2 workers", ("corio", "sleep_fire/workers=2"), ("uring_micro", "timeout_arm_remove@defer"),
     "raw IORING_OP_TIMEOUT arm + remove"),
    ("channel ping-pong round trip (two rendezvous channels), 1 worker",
     ("corio", "chan_pingpong/workers=1"), ("go_micro", "chan_pingpong"), "Go unbuffered chans"),
    ("channel ping-pong round trip, 2 workers", ("corio", "chan_pingpong/workers=2"),
     ("go_chan2", "chan_pingpong"), "Go (GOMAXPROCS=2)"),
    ("", ("corio", "chan_pingpong/workers=2"), ("go_micro", "chan_pingpong"), "Go (GOMAXPROCS=1)"),
    ("channel stream, capacity 64, per value, 1 worker", ("corio", "chan_stream64/workers=1"),
     ("go_chan", "chan_stream64"), "Go chan buffered 64"),
    ("channel stream, capacity 64, 2 workers", ("corio", "chan_stream64/workers=2"),
     ("go_chan2", "chan_stream64"), "Go (GOMAXPROCS=2)"),
    ("channel stream, capacity 1024, per value, 1 worker", ("corio", "chan_stream1024/workers=1"),
     ("go_chan", "chan_stream1024"), "Go chan buffered 1024"),
    ("channel stream, capacity 1024, 2 workers", ("corio", "chan_stream1024/workers=2"),
     ("go_chan2", "chan_stream1024"), "Go (GOMAXPROCS=2)"),
    ("mutex, 4 tasks lock + increment + unlock, per lock, 1 worker",
     ("corio", "mutex_contention/workers=1"), ("go_chan", "mutex_contention"),
     "Go sync.Mutex, 4 goroutines"),
    ("mutex, 4 tasks, 2 workers", ("corio", "mutex_contention/workers=2"),
     ("go_chan2", "mutex_contention"), "Go (GOMAXPROCS=2)"),
    ("frame recycling off: task await", ("corio-norecycle", "task_await/workers=1"),
     ("corio", "task_await/workers=1"), "corio with recycling"),
    ("frame recycling off: spawn + join one", ("corio-norecycle", "spawn_join_one/workers=1"),
     ("corio", "spawn_join_one/workers=1"), "corio with recycling"),
    ("frame recycling off: spawn 1000 + join", ("corio-norecycle", "spawn_join_batch/workers=1"),
     ("corio", "spawn_join_batch/workers=1"), "corio with recycling"),
]

rounds = len(vals.get(("corio", "task_await/workers=1"), []))
print(f"Rounds: {rounds} (median of per-round medians). syscall getppid: "
      f"{med(('uring_micro', 'syscall_getppid')) or 0:.0f} ns on this machine.\n")
print("| operation | corio ns | peer | peer ns | corio / peer |")
print("|---|---:|---|---:|---:|")
for what, ck, pk, label in rows:
    c, p = med(ck), med(pk)
    if c is None or p is None:
        continue
    print(f"| {what} | {c:.1f} | {label} | {p:.1f} | {c / p:.2f} |")
