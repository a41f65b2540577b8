"""Issue 5.4: 20,000 fp16-autocast steps of a small model (the demo's bookkeeping, not its
size) with a fault planted at step 15,000. Resident memory grows by at most 64 MiB between
step 1,000 and the end, the trace stays under 50 MiB and holds a ProfilerStep span for every
step, and module spans only in the first NANTRACE_DETAIL_STEPS steps and around the fault.
Skipped (exit 0, SKIP printed) when NANTRACE_SKIP_LONG=1."""
import os
import shutil
import subprocess
import sys
import time

import rb
from rb import H

if os.environ.get("NANTRACE_SKIP_LONG") == "1":
    print("SKIP: NANTRACE_SKIP_LONG=1")
    sys.exit(0)

a = H.parse_args()
tmp = H.tempdir("bounded")
out = os.path.join(tmp, "out")
STEPS, FAULT, FIRST = 20000, 15000, 1000
MAX_RSS_GROWTH_KIB = 64 * 1024
MAX_TRACE = 50 << 20
DETAIL_STEPS, WINDOW = 3, 8  # the defaults (src/core/config.h)

t0 = time.time()
p = subprocess.run([a.python, rb.TRAIN, "--steps", str(STEPS), "--print-every", "1000", "--fault-at", str(FAULT),
                    "--rss-at", "%d,%d" % (FIRST, STEPS), "--hidden", "16"],
                   env=H.preload_env(a.lib, out), cwd=tmp, stdin=subprocess.DEVNULL,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=900)
elapsed = time.time() - t0
if p.returncode != 0:
    H.fail("the long run failed", p)
rss = {}
for line in p.stdout.decode().splitlines():
    if line.startswith("rss step "):
        _, _, step, _, kib = line.split()
        rss[int(step)] = int(kib)
if set(rss) != {FIRST, STEPS}:
    H.fail("no VmRSS lines for steps %d and %d" % (FIRST, STEPS), p)
growth = rss[STEPS] - rss[FIRST]
run_dir = rb.the_run_dir(out, p)
trace = os.path.join(run_dir, "trace.json")
size = os.path.getsize(trace)
print("%d steps in %.1f s (%.2f ms/step); VmRSS %d KiB at step %d, %d KiB at step %d (growth %d KiB); "
      "trace %.2f MiB" % (STEPS, elapsed, 1000 * elapsed / STEPS, rss[FIRST], FIRST, rss[STEPS], STEPS, growth,
                          size / 2.0 ** 20), flush=True)
if growth > MAX_RSS_GROWTH_KIB:
    H.fail("resident memory grew by %d KiB (> 64 MiB) between step %d and %d" % (growth, FIRST, STEPS), p)
if size >= MAX_TRACE:
    H.fail("the trace is %d bytes (>= 50 MiB)" % size, p)
events = rb.load_trace(trace)
spans = rb.step_spans(events)
if sorted(spans) != list(range(1, STEPS + 1)):
    missing = sorted(set(range(1, STEPS + 1)) - set(spans))
    H.fail("ProfilerStep spans missing for %d steps (first: %s)" % (len(missing), missing[:10]), p)
# Module spans (cat python_function) belong to the step whose span holds their start.
starts = sorted((s, n) for n, (s, e) in spans.items())
import bisect  # noqa: E402
keys = [s for s, _ in starts]
per_step = {}
for e in events:
    if e.get("ph") == "X" and e.get("cat") == "python_function":
        i = bisect.bisect_right(keys, float(e["ts"])) - 1
        n = starts[i][1] if i >= 0 else 0
        per_step[n] = per_step.get(n, 0) + 1
# The window holds the module spans of the last WINDOW steps that had any before the fault: the
# last WINDOW steps when every step is checked, the last WINDOW checked ones when NANTRACE_EVERY
# (auto, on these ~1 ms steps) checks every 16th.
spanned_before = sorted(n for n in per_step if DETAIL_STEPS < n < FAULT - 1)
allowed = (set(range(0, DETAIL_STEPS + 1)) | set(range(FAULT - 1, FAULT + WINDOW + 2)) |
           set(spanned_before[-WINDOW:]))
outside = sorted(n for n in per_step if n not in allowed)
if outside:
    H.fail("module spans outside the detail steps and the fault window, at steps %s" % outside[:20], p)
near = sorted(n for n in per_step if n > DETAIL_STEPS)
if FAULT not in per_step:
    H.fail("no module span at the fault step %d (steps with spans: %s)" % (FAULT, sorted(per_step)), p)
report = rb.load_report_json(run_dir)
f = report.get("finding", {})
if not f.get("found") or f.get("step") != FAULT:
    H.fail("the report does not name the fault at step %d: %r" % (FAULT, {k: f.get(k) for k in ("found", "step", "kind")}), p)
print("ok bounded: module spans at steps %s..%s around the fault and %s at the start; %d events"
      % (near[0], near[-1], sorted(n for n in per_step if n <= DETAIL_STEPS), len(events)))
shutil.rmtree(tmp)
