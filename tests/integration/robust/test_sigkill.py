"""Issue 5.3: SIGKILL in the middle of a training that records continuously. The trace on
disk is the live array form, follows the viewers' rules once ']' is appended, and its last
event ends within 1.5 s of the kill: the writer flushes at most about a second apart while
events arrive (docs/outputs.md). `nantrace merge` then writes the finished object form of
what the killed run left, which HTA loads."""
import os
import shutil
import signal
import time

import rb
from rb import H
import trace_check as T

a = H.parse_args([("--merge", {"required": True})])
tmp = H.tempdir("sigkill")
out = os.path.join(tmp, "out")
MAX_LAG_S = 1.5
p = rb.popen([a.python, rb.TRAIN, "--steps", "1000000", "--sleep", "0.01"], H.preload_env(a.lib, out), tmp,
             os.path.join(tmp, "stderr"))
try:
    rb.wait_for_line(p, "step 20 ", 240)
    time.sleep(3.0)  # several flush periods into steady recording
    killed_at = time.time()
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=60)
finally:
    if p.poll() is None:
        p.kill()
with open(os.path.join(tmp, "stderr"), "rb") as f:
    res = rb.Result(p.returncode, b"", f.read())
if p.returncode != -signal.SIGKILL:
    H.fail("the child was not killed by SIGKILL", res)
run_dir = rb.the_run_dir(out, res)
trace = os.path.join(run_dir, "trace.json")
try:
    events = rb.load_trace(trace, finished=False)
except Exception as e:  # noqa: BLE001
    H.fail("the killed run's trace does not load: %s" % e, res)
ends = [float(e["ts"]) + float(e.get("dur", 0)) for e in events if "ts" in e]
if not ends:
    H.fail("the killed run's trace holds no timed event", res)
# Timestamps are relative to the run's start; the live file keeps that start in process_name.
bases = [e["args"]["nantrace_base_time_ns"] for e in events
         if e.get("name") == "process_name" and "nantrace_base_time_ns" in e.get("args", {})]
if not bases:
    H.fail("the killed run's trace does not say when its time 0 was", res)
last = bases[0] / 1e9 + max(ends) / 1e6
lag = killed_at - last
print("trace: %d events, %d bytes; last event ends %.3f s before the kill" % (len(events), os.path.getsize(trace), lag))
if lag > MAX_LAG_S:
    H.fail("the trace on disk lags the kill by %.3f s (> %.1f s): flushes are too far apart" % (lag, MAX_LAG_S), res)
if lag < -0.5:
    H.fail("the last event is %.3f s after the kill: clock mismatch?" % -lag, res)
m = H.run([a.merge, run_dir], H.base_env(), cwd=tmp)
merged = os.path.join(run_dir, "trace.merged.json")
if m.returncode != 0 or not os.path.isfile(merged):
    H.fail("nantrace merge did not finish the killed run's trace", m)
problems = T.check_file(merged, finished=True, merged=True)
if problems:
    H.fail("the finished form of the killed trace breaks rules:\n  " + "\n  ".join(problems))
_, merged_events, _ = T.load(merged)
ours = sorted({s for v in T.steps_of(merged_events).values() for s in v})
try:
    seen = T.hta_load({0: merged}, run_dir)
    if seen != {0: ours[:-1]} or len(ours) < 20:
        H.fail("HTA sees %s in the finished killed trace, expected steps 1..%d" % (seen, ours[-1] - 1 if ours else 0))
except ImportError:
    print("note: HolisticTraceAnalysis is not installed: HTA load skipped")
print("ok sigkill: trace loads, lag %.3f s <= %.1f s; finished by nantrace merge (%d steps)" % (lag, MAX_LAG_S, len(ours)))
shutil.rmtree(tmp)
