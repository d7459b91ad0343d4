#!/usr/bin/env python3
"""Turns the raw wrk and idle-conns outputs of bench/http/run into a
markdown table: medians over runs, ratios to Go.

    table.py RAW_DIR [RAW_DIR...]   # several dirs: their runs are pooled"""

import os
import re
import statistics
import sys
from collections import defaultdict

raws = sys.argv[1:]


def ms(v):
    """A wrk latency ('850.00us', '12.3ms', '1.02s', '2.00m') in ms."""
    m = re.match(r"([0-9.]+)([a-z]+)", v)
    if not m:
        return None
    n, unit = float(m.group(1)), m.group(2)
    return n * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


runs = defaultdict(list)  # (name, conns) -> [(rps, p99, errors)]
files = [(d, f) for d in raws for f in sorted(os.listdir(d))]
for raw, f in files:
    m = re.match(r"(.+)-c(\d+)-r(\d+)\.txt$", f)
    if not m:
        continue
    text = open(os.path.join(raw, f)).read()
    rps = re.search(r"Requests/sec:\s*([0-9.]+)", text)
    p99 = re.search(r"^\s*99%\s+(\S+)", text, re.M)
    errs = 0
    se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if se:
        errs += sum(int(x) for x in se.groups())
    n2 = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if n2:
        errs += int(n2.group(1))
    if rps:
        runs[(m.group(1), int(m.group(2)))].append(
            (float(rps.group(1)), ms(p99.group(1)) if p99 else None, errs)
        )


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def row(name, c):
    r = runs.get((name, c))
    if not r:
        return None
    return (med([x[0] for x in r]), med([x[1] for x in r]), max(x[2] for x in r), len(r))


def fmt_ms(v):
    return "-" if v is None else (f"{v:.2f} ms" if v < 100 else f"{v:.0f} ms")


idle = {}  # the last dir's reading
for raw, f in files:
    m = re.match(r"idle-(.+)\.txt$", f)
    if m:
        kv = dict(x.split("=") for x in open(os.path.join(raw, f)).read().split())
        idle[m.group(1)] = kv

labels = {
    "goro": "goro-http",
    "goro-nowatch": "goro-http, no disconnect watcher",
    "hyper": "tokio + hyper 1",
    "go": "Go net/http",
}
conns = sorted({c for (_, c) in runs})

print("### Hello world (wrk -t2 --latency, medians)\n")
print("| server | conns | req/s | p99 | req/s vs Go | p99 vs Go | req/s vs hyper | errors (max of runs) | runs |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in conns:
    go = row("hello-go", c)
    hy = row("hello-hyper", c)
    for key, label in labels.items():
        r = row("hello-" + key, c)
        if not r:
            continue
        ratio = f"{r[0] / go[0]:.2f}x" if go and go[0] else "-"
        pratio = f"{r[1] / go[1]:.2f}x" if go and go[1] and r[1] else "-"
        hratio = f"{r[0] / hy[0]:.2f}x" if hy and hy[0] else "-"
        print(
            f"| {label} | {c:,} | {r[0]:,.0f} | {fmt_ms(r[1])} | {ratio} | {pratio} | {hratio} "
            f"| {r[2]:,} | {r[3]} |"
        )

if idle:
    print("\n### Resident memory per idle keep-alive connection\n")
    print("| server | connections | RSS before | RSS with them idle | per connection |")
    print("|---|---:|---:|---:|---:|")
    for key, label in labels.items():
        kv = idle.get(key)
        if not kv:
            continue
        print(
            f"| {label} | {int(kv['connections']):,} | {int(kv['rss_before_kib']) / 1024:.1f} MiB "
            f"| {int(kv['rss_after_kib']) / 1024:.1f} MiB | {float(kv['kib_per_conn']):.2f} KiB |"
        )

gw = sorted({n for (n, _) in runs if n.startswith("gw-goro-")})
if gw:
    print("\n### Gateway (wrk -t2 --latency, medians)\n")
    print("| route | conns | goro gateway req/s | Go gateway req/s | ratio | goro p99 | Go p99 | errors goro / Go |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in gw:
        route = name[len("gw-goro-"):]
        for c in conns:
            a, b = row(name, c), row("gw-go-" + route, c)
            if not a or not b:
                continue
            print(
                f"| /{route} | {c:,} | {a[0]:,.0f} | {b[0]:,.0f} | {a[0] / b[0]:.2f}x "
                f"| {fmt_ms(a[1])} | {fmt_ms(b[1])} | {a[2]:,} / {b[2]:,} |"
            )
