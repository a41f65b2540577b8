#!/usr/bin/env python3
"""Which of nantrace's hooks a training step's time goes to: samples a workload of
tools/bench_workloads.py under LD_PRELOAD with py-spy (pip install py-spy) and reports the share
of the step's samples spent in nantrace's frames, per top-level hook. C code is counted in the
Python frame that called it (py-spy without --native); gradient checks called by autograd show
in its frames, not ours.

    python tools/bench_share.py --workload transformer --steps 400
    python tools/bench_share.py --raw profile.raw        # an existing `py-spy record -f raw` file
"""
import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# Our wrappers that run the script's own code inside them: only what they do themselves counts.
PASS_THROUGH = ("entry (", "_wrap_scaler_step.<locals>.step", "_wrap_scaler_update.<locals>.update",
                "_wrap_scaler_scale", "_wrap_next", "_wrap_save", "_wrap_load", "_wrap_optimizer_init",
                "exec_module_then_hook")
# Generic wrappers around our hooks (the failure guard): the share goes to the hook they wrap.
WRAPPERS = ("guarded.<locals>",)
LOOP = """import sys, torch, argparse
sys.path.insert(0, %r)
import bench_workloads
torch.set_num_threads(1)
w = bench_workloads.make(%r, argparse.Namespace(device="cpu"))
for i in range(%d):
    w.step(i)
"""


def shares(raw):
    total, ours = 0, collections.Counter()
    with open(raw) as f:
        for line in f:
            stack, _, n = line.rstrip().rpartition(" ")
            if not stack:
                continue
            frames = stack.split(";")
            if not any("step (" in fr and "bench_workloads" in fr for fr in frames):
                continue
            total += int(n)
            ours_frames = [fr for fr in frames if "nantrace" in fr and not any(p in fr for p in PASS_THROUGH)]
            if ours_frames:
                named = [fr for fr in ours_frames if not any(w in fr for w in WRAPPERS)] or ours_frames
                ours[named[0].split(" (")[0]] += int(n)
    return total, ours


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", default="transformer", choices=["demo", "transformer", "mlp"])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--rate", type=int, default=1000, help="samples per second")
    p.add_argument("--lib", default=os.path.join(REPO, "build", "lib", "libnantrace.so"))
    p.add_argument("--raw", help="analyse this py-spy raw file instead of recording one")
    a = p.parse_args(argv)
    raw = a.raw
    tmp = None
    if raw is None:
        spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
        if not os.path.exists(spy):
            print("needs py-spy: pip install py-spy", file=sys.stderr)
            return 2
        tmp = tempfile.mkdtemp(prefix="nantrace_share_")
        script, raw = os.path.join(tmp, "loop.py"), os.path.join(tmp, "profile.raw")
        with open(script, "w") as f:
            f.write(LOOP % (HERE, a.workload, a.steps))
        env = dict(os.environ, LD_PRELOAD=os.path.abspath(a.lib), NANTRACE_DIR=tmp)
        subprocess.run([spy, "record", "-r", str(a.rate), "-f", "raw", "-o", raw, "--", sys.executable, "-W", "ignore",
                        script], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    total, ours = shares(raw)
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    if not total:
        print("no samples inside training steps", file=sys.stderr)
        return 1
    print("samples in steps %d, in nantrace's frames %.1f %%" % (total, 100.0 * sum(ours.values()) / total))
    for name, n in ours.most_common(20):
        print("%6.2f %%  %s" % (100.0 * n / total, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
