#!/usr/bin/env python3
"""Ratios corio / peer from one interleaved echo.sh run (../shared/bench format).

usage: summarize_echo.py PATH/TO/summarize.py RAW.tsv
Prints the peers' own table (their summarize.py), then for every config the median over rounds
of corio / peer for msgs/s (>1: corio faster), p99 latency and server CPU per message (<1: corio
lower), each from the same round.
"""
import importlib.util
import subprocess
import sys
from statistics import median


def main():
    summarize_path, raw = sys.argv[1], sys.argv[2]
    spec = importlib.util.spec_from_file_location("summarize", summarize_path)
    summarize = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(summarize)
    print(subprocess.run([sys.executable, summarize_path, raw], check=True,
                         capture_output=True, text=True).stdout)
    runs = summarize.parse(raw, "0", "1")
    names = list(dict.fromkeys(n for n, _ in runs))
    cfgs = list(dict.fromkeys(c for _, c in runs))
    print("corio / peer, median of per-round ratios [min-max of msgs/s]; msgs/s > 1 and "
          "CPU/msg < 1 favour corio\n")
    print("| conns | size | peer | msgs/s | p99 | srv us/msg | rounds |")
    print("|---:|---:|---|---|---:|---:|---:|")
    for cfg in cfgs:
        mine = {r["rep"]: r for r in runs.get(("corio", cfg), []) if r["ok"]}
        for peer in names:
            if peer == "corio":
                continue
            theirs = {r["rep"]: r for r in runs.get((peer, cfg), []) if r["ok"]}
            reps = [k for k in mine if k in theirs]
            if not reps:
                continue
            q = lambda k: [mine[x][k] / theirs[x][k] for x in reps]
            t = q("msgs_s")
            conns, size = cfg.split(":")
            print(f"| {conns} | {size} | {peer} | {median(t):.3f} [{min(t):.3f}-{max(t):.3f}] | "
                  f"{median(q('p99_us')):.3f} | {median(q('us_msg')):.3f} | {len(reps)} |")


if __name__ == "__main__":
    main()
