#!/usr/bin/env python3
"""Per-step cost after the fault: a run whose batch at step --fault-at holds a NaN (fp32, SGD,
no loss scaler), so every weight is NaN from the next step on and every later step is full of
NaN. Plain and nantrace (module level, LD_PRELOAD=--lib) each train in their own child
process, repetitions interleaved; the figure is the ratio of the median step times over the
steps after the fault (from fault + 3, once the investigation is over), beside the same ratio
over the clean steps before it.

Target (issue 16 item 8): a step full of NaN costs at most about 10 % more than a clean one
under nantrace, relative to plain: (after-fault nantrace/plain) / (clean nantrace/plain) <= 1.10.

    python tools/bench_after_fault.py --lib build/lib/libnantrace.so --reps 3

Prints a table, then one line: BENCH_JSON {...}.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r'''
import json, sys, time
import torch
import torch.nn as nn
torch.manual_seed(0)
torch.set_num_threads(1)
steps, fault_at = int(sys.argv[1]), int(sys.argv[2])
layers = []
for _ in range(8):
    layers += [nn.Linear(256, 256), nn.GELU(), nn.LayerNorm(256)]
model = nn.Sequential(*layers, nn.Linear(256, 1))
opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
times = []
for step in range(1, steps + 1):
    x = torch.randn(64, 256)
    if step == fault_at:
        x[3, 7] = float("nan")
    t0 = time.perf_counter()
    loss = model(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    times.append(time.perf_counter() - t0)
print("TIMES " + json.dumps(times))
'''


def run(python, lib, steps, fault_at, out):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if lib:
        env["LD_PRELOAD"] = lib
        env["NANTRACE_OUT"] = out
        env["NANTRACE_LOG"] = "off"
    p = subprocess.run([python, "-c", CHILD, str(steps), str(fault_at)], env=env, capture_output=True, text=True,
                       timeout=900)
    for line in p.stdout.splitlines():
        if line.startswith("TIMES "):
            return json.loads(line[6:])
    raise SystemExit("child failed (%s): %s" % ("nantrace" if lib else "plain", p.stderr[-2000:]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", required=True, help="path to libnantrace.so")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--steps", type=int, default=80)
    ap.add_argument("--fault-at", type=int, default=20)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    if not os.path.isfile(a.lib):
        raise SystemExit("bench_after_fault: --lib %s: no such file (build first: cmake --build build)" % a.lib)
    if not 3 <= a.fault_at <= a.steps - 10:
        raise SystemExit("bench_after_fault: --fault-at must be between 3 and --steps - 10, got %d" % a.fault_at)
    before, after = {"plain": [], "nantrace": []}, {"plain": [], "nantrace": []}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(a.reps):
            for name, lib in (("plain", None), ("nantrace", a.lib)):
                t = run(a.python, lib, a.steps, a.fault_at, out)
                before[name].append(statistics.median(t[2:a.fault_at - 1]))
                after[name].append(statistics.median(t[a.fault_at + 2:]))
    med = lambda v: statistics.median(v)  # noqa: E731
    res = {"steps": a.steps, "fault_at": a.fault_at, "reps": a.reps,
           "plain_before_ms": med(before["plain"]) * 1e3, "nantrace_before_ms": med(before["nantrace"]) * 1e3,
           "plain_after_ms": med(after["plain"]) * 1e3, "nantrace_after_ms": med(after["nantrace"]) * 1e3}
    res["ratio_before"] = res["nantrace_before_ms"] / res["plain_before_ms"]
    res["ratio_after"] = res["nantrace_after_ms"] / res["plain_after_ms"]
    # What a step full of NaN costs under nantrace over a clean one, the machine's own change
    # between the two phases (plain's) taken out.
    res["after_over_clean"] = res["ratio_after"] / res["ratio_before"]
    print("| steps | plain ms/step | nantrace ms/step | nantrace/plain |\n|---|---:|---:|---:|")
    print("| before the fault (3..%d) | %.3f | %.3f | %.3f |" % (a.fault_at - 1, res["plain_before_ms"],
                                                             res["nantrace_before_ms"], res["ratio_before"]))
    print("| after the fault (%d..%d) | %.3f | %.3f | %.3f |" % (a.fault_at + 3, a.steps, res["plain_after_ms"],
                                                              res["nantrace_after_ms"], res["ratio_after"]))
    print("after the fault / before it, nantrace over plain: %.3f" % res["after_over_clean"])
    print("BENCH_JSON " + json.dumps(res))


if __name__ == "__main__":
    main()
