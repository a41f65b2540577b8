"""Issue 5.1: a DataLoader with 2 workers under fork and under spawn. The training finishes
(a timeout fails), the run directory holds exactly one trace/report set (no pid-named files
from workers), the trace is strict JSON, and the workers print nothing: the "nantrace:" lines
on stderr are the same as in a run without workers (run directory path normalised)."""
import os
import re
import shutil
import subprocess

import rb
from rb import H

a = H.parse_args()
tmp = H.tempdir("workers")
STEPS = "20"
EXPECTED_FILES = {"trace.json", "report.json", "report.md"}


def hooked(tag, workers, mp=None, **extra_env):
    out = os.path.join(tmp, tag)
    cmd = [a.python, rb.TRAIN, "--steps", STEPS, "--workers", str(workers)] + (["--mp", mp] if mp else [])
    try:
        p = rb.timed(tag, subprocess.run, cmd, env=H.preload_env(a.lib, out, **extra_env), cwd=tmp,
                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=240)
    except subprocess.TimeoutExpired as e:
        H.fail("%s: training did not finish within %ss (deadlock?)" % (tag, e.timeout),
               rb.Result(None, e.stdout or b"", e.stderr or b""))
    if p.returncode != 0:
        H.fail("%s: training failed" % tag, p)
    run_dir = rb.the_run_dir(out, p)
    files = set(os.listdir(run_dir))
    if files != EXPECTED_FILES:
        H.fail("%s: run directory holds %s, expected exactly %s" % (tag, sorted(files), sorted(EXPECTED_FILES)), p)
    try:
        events = rb.load_trace(os.path.join(run_dir, "trace.json"))
        rb.load_report_json(run_dir)
    except Exception as e:  # noqa: BLE001
        H.fail("%s: output is not strict JSON: %s" % (tag, e), p)
    spans = rb.step_spans(events)
    if sorted(spans) != list(range(1, int(STEPS) + 1)):
        H.fail("%s: ProfilerStep spans %s, expected 1..%s" % (tag, sorted(spans), STEPS), p)
    lines = [l.replace(run_dir, "RUN") for l in rb.nantrace_lines(p.stderr)]
    return p, lines


base, base_lines = hooked("no-workers", 0)
if not base_lines:
    H.fail("the run without workers printed no nantrace line: was nantrace active?", base)
for mp in ("fork", "spawn"):
    p, lines = hooked(mp, 2, mp)
    if p.stdout != base.stdout:
        H.fail("%s: losses differ from the run without workers" % mp, p)
    if lines != base_lines:
        H.fail("%s: nantrace stderr lines differ from the run without workers:\n  without: %s\n  with:    %s"
               % (mp, base_lines, lines), p)
    print("ok %s: 2 workers, %d nantrace lines as without workers, one trace/report set" % (mp, len(lines)))

# A configuration error is reported once, by the training process, not again by each worker.
base, base_lines = hooked("no-workers-bad-env", 0, NANTRACE_WINDOW="many")
p, lines = hooked("spawn-bad-env", 2, "spawn", NANTRACE_WINDOW="many")
if lines != base_lines:
    H.fail("spawn with NANTRACE_WINDOW=many: nantrace stderr lines differ from the run without workers:\n"
           "  without: %s\n  with:    %s" % (base_lines, lines), p)
print("ok spawn-bad-env: the configuration message is printed once")
shutil.rmtree(tmp)
