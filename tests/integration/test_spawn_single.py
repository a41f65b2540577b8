"""A one-process torch.multiprocessing.spawn run (GPT-SoVITS on one GPU; issue 12, item 4): the
rank joins its launcher's run directory, yet the run has one report and one trace under the
single-process names (no pid-named files, no merged duplicate), and "run directory:" is printed
once when recording starts and once at the end."""
import os
import shutil
import textwrap

import nt_harness as H
import one_story as O
import trace_check as T

SCRIPT = textwrap.dedent('''
    import torch
    import torch.multiprocessing as mp

    def train(rank):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        for step in range(1, 6):
            x = torch.randn(4, 8)
            if step == 3:
                x[1, 2] = float("nan")  # a bad sample in step 3's batch
            loss = model(x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            print("step", step, loss.item())

    if __name__ == "__main__":
        mp.spawn(train, nprocs=1)
''')

a = H.parse_args()
tmp, out, script, p = H.run_inline(a, "spawn-single", SCRIPT)
if p.returncode != 0:
    H.fail("training failed (exit %d)" % p.returncode, p)
err = p.stderr.decode("utf-8", "replace")
announced = [l for l in err.splitlines() if "nantrace: run directory:" in l]
if len(announced) != 2:
    H.fail("'run directory:' printed %d times, want twice (start and end of the run): %s" % (len(announced), announced), p)
rd = H.run_dir_of(p, out)
files = sorted(os.listdir(rd))
for want in ("report.json", "report.md", "trace.json"):
    if want not in files:
        H.fail("%s missing (files: %s)" % (want, files), p)
extra = [f for f in files if ".pid" in f or ".merged" in f or ".rank" in f]
if extra:
    H.fail("a one-process run wrote per-process or merged files: %s" % extra, p)
rep = H.load_report(rd)
bad = H.subset_mismatches({"found": True, "kind": "bad_input", "step": 3, "phase": "input"}, rep["finding"])
bad += T.check_file(os.path.join(rd, "trace.json"), finished=True, rank=0)
with open(os.path.join(rd, "report.md"), encoding="utf-8") as f:
    bad += O.check(err, rep, f.read(), os.path.join(rd, "trace.json"))
if bad:
    H.fail("\n  ".join(bad), p)
print("ok spawn with one process: %s" % files)
shutil.rmtree(tmp)
