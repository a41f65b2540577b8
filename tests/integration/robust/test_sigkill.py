"""Issue 5.3: SIGKILL in the middle of a training that records continuously. The trace on
disk loads once ']' is appended, and its last event ends within 1.5 s of the kill: the writer
flushes at most about a second apart while events arrive (docs/outputs.md)."""
import os
import shutil
import signal
import time

import rb
from rb import H

a = H.parse_args()
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
    events = rb.load_trace(trace)
except Exception as e:  # noqa: BLE001
    H.fail("the killed run's trace does not load: %s" % e, res)
ends = [float(e["ts"]) + float(e.get("dur", 0)) for e in events if "ts" in e]
if not ends:
    H.fail("the killed run's trace holds no timed event", res)
last = max(ends) / 1e6
lag = killed_at - last
print("trace: %d events, %d bytes; last event ends %.3f s before the kill" % (len(events), os.path.getsize(trace), lag))
if lag > MAX_LAG_S:
    H.fail("the trace on disk lags the kill by %.3f s (> %.1f s): flushes are too far apart" % (lag, MAX_LAG_S), res)
if lag < -0.5:
    H.fail("the last event is %.3f s after the kill: clock mismatch?" % -lag, res)
print("ok sigkill: trace loads, lag %.3f s <= %.1f s" % (lag, MAX_LAG_S))
shutil.rmtree(tmp)
