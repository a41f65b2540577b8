#!/usr/bin/env python3
"""Training-step overhead of nantrace on the bundled demo, side by side in one invocation.

Variants, each run in its own child process on the demo's healthy training loop
(tools/demo: same model, seed and data for all), repetitions interleaved so that machine
noise hits every variant alike:

  plain     the training loop as is
  nantrace  under LD_PRELOAD=--lib with NANTRACE_CHECK=module (the default level)
  anomaly   torch.autograd.detect_anomaly(check_nan=True), no nantrace
  op        under nantrace with NANTRACE_CHECK=op (only with --op)

Per-step wall time is measured inside the child around each training step, warm-up steps
excluded; the figure for a variant is the median over all measured steps of all repetitions.
Targets (issue 2 item 10): nantrace/plain <= 1.15 and (nantrace - plain) < (anomaly - plain) / 3.

    python tools/bench_overhead.py --lib build/lib/libnantrace.so --steps 30 --reps 3

Without --lib (or when the library is missing) only plain and anomaly run.
Prints a table, then one line: BENCH_JSON {...}.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULT_TAG = "BENCH_RESULT "
TARGET_RATIO = 1.15
TARGET_SHARE = 1.0 / 3.0
# GradScaler's default 2**16 makes the demo's first scaled gradients overflow (benign skips),
# and detect_anomaly(check_nan=True) raises on those: start low enough that no step skips.
BENCH_INIT_SCALE = 2.0 ** 9


# ---- child: one variant, one repetition ----------------------------------------------------

def run_child(args):
    import contextlib

    import torch
    sys.path.insert(0, os.path.join(REPO, "tools", "demo"))
    import train_tiny_vits as demo

    torch.set_num_threads(args.threads)
    trainer = demo.Trainer(demo.load_hparams(demo.DEFAULT_CONFIG), device=args.device,
                           seed=1234, healthy=True, init_scale=BENCH_INIT_SCALE)
    ctx = torch.autograd.detect_anomaly(check_nan=True) if args.anomaly else contextlib.nullcontext()
    # CPU time of the whole process (every thread) is far less sensitive than wall time to
    # other jobs on a shared machine; on CUDA only wall time after a synchronize means anything.
    clock = time.process_time if (args.clock == "cpu" and args.device == "cpu") else time.perf_counter
    times = []
    losses = []
    with ctx:
        for step in range(1, args.steps + 1):
            if args.device == "cuda":
                torch.cuda.synchronize()
            t0 = clock()
            out = trainer.step(step)   # .item() on the losses ends the step on every device
            times.append(clock() - t0)
            losses.append(out[:6])
    print(RESULT_TAG + json.dumps({"times": times, "losses": losses}), flush=True)
    return 0


# ---- parent ----------------------------------------------------------------------------

def variants(args):
    env_base = dict(os.environ)
    for k in ("LD_PRELOAD", "NANTRACE_CHECK"):
        env_base.pop(k, None)
    out = [("plain", env_base, False)]
    lib = os.path.abspath(args.lib) if args.lib else None
    if lib and os.path.exists(lib):
        out.append(("nantrace", dict(env_base, LD_PRELOAD=lib, NANTRACE_CHECK="module"), False))
    elif lib:
        print("note: %s not found: the nantrace variants are skipped" % lib, file=sys.stderr)
        lib = None
    out.append(("anomaly", env_base, True))
    if lib and args.op:
        out.append(("op", dict(env_base, LD_PRELOAD=lib, NANTRACE_CHECK="op"), False))
    return out


def run_variant(args, name, env, anomaly, out_dir):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--steps", str(args.steps),
           "--device", args.device, "--threads", str(args.threads), "--clock", args.clock]
    if anomaly:
        cmd.append("--anomaly")
    env = dict(env, NANTRACE_DIR=out_dir)
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=args.timeout)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    raise RuntimeError("variant %s failed (exit %d):\n%s" % (name, proc.returncode, proc.stderr[-3000:]))


def summarize(samples, warmup):
    kept = [t for rep in samples for t in rep[warmup:]]
    return {"median_ms": 1e3 * statistics.median(kept), "n": len(kept),
            "rep_medians_ms": [1e3 * statistics.median(rep[warmup:]) for rep in samples]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lib", default=os.path.join(REPO, "build", "lib", "libnantrace.so"),
                   help="path of libnantrace.so ('' to run plain and anomaly only)")
    p.add_argument("--steps", type=int, default=30, help="training steps per child (default 30)")
    p.add_argument("--warmup", type=int, default=5, help="first steps of each child left out (default 5)")
    p.add_argument("--reps", type=int, default=3, help="interleaved repetitions (default 3)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads in the children (default 1)")
    p.add_argument("--op", action="store_true", help="also run NANTRACE_CHECK=op")
    p.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                   help="per-step time: process CPU time (default; CPU device only) or wall time")
    p.add_argument("--timeout", type=int, default=900, help="seconds per child")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--anomaly", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return run_child(args)
    if args.steps <= args.warmup:
        p.error("--steps must exceed --warmup")

    vs = variants(args)
    samples = {name: [] for name, _, _ in vs}
    losses = {}
    out_dir = tempfile.mkdtemp(prefix="nantrace_bench_")
    try:
        for rep in range(args.reps):
            for name, env, anomaly in vs:
                r = run_variant(args, name, env, anomaly, out_dir)
                samples[name].append(r["times"])
                losses.setdefault(name, r["losses"])
                print("rep %d %-8s median %.1f ms/step" % (rep + 1, name, 1e3 * statistics.median(r["times"][args.warmup:])),
                      file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)

    res = {name: summarize(s, args.warmup) for name, s in samples.items()}
    a = res["plain"]["median_ms"]
    c = res["anomaly"]["median_ms"]
    summary = {"device": args.device, "steps": args.steps, "warmup": args.warmup, "reps": args.reps,
               "threads": args.threads, "variants": res, "anomaly_over_plain": c / a,
               "losses_identical": {name: losses[name] == losses["plain"] for name in losses}}
    if "nantrace" in res:
        b = res["nantrace"]["median_ms"]
        summary["nantrace_over_plain"] = b / a
        summary["overhead_share_of_anomaly"] = (b - a) / (c - a) if c > a else None
        summary["targets"] = {
            "nantrace_over_plain<=%.2f" % TARGET_RATIO: b / a <= TARGET_RATIO,
            "overhead<anomaly_overhead/3": (c > a) and (b - a) < (c - a) * TARGET_SHARE,
        }
    if "op" in res:
        summary["op_over_plain"] = res["op"]["median_ms"] / a

    print("%-9s %12s %10s %8s" % ("variant", "median ms", "x plain", "steps"))
    for name, r in res.items():
        print("%-9s %12.2f %10.3f %8d" % (name, r["median_ms"], r["median_ms"] / a, r["n"]))
    if "nantrace" in res:
        share = summary["overhead_share_of_anomaly"]
        print("overhead share (nantrace-plain)/(anomaly-plain): %s" % ("n/a" if share is None else "%.3f" % share))
        for k, v in summary["targets"].items():
            print("target %-32s %s" % (k, "met" if v else "NOT met"))
    print("BENCH_JSON " + json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
