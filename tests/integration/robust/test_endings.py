"""Issue 5.2: each way a training can end, in its own process, with and without nantrace.
The trace written so far loads (with ']' appended when the run could not close it),
report.json exists and is strict JSON, and the exit status is the one of the same script
without nantrace. A crash (SIGSEGV, SIGABRT raised in the host) leaves a native backtrace
("#0 " lines) in the report's notes. os._exit skips every exit handler: the report there is
the provisional one written at the (planted) fault."""
import os
import signal
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import rb
from rb import H

a = H.parse_args()
tmp = H.tempdir("endings")
LONG = ["--steps", "100000", "--sleep", "0.02"]
# name: (script arguments, signal the test sends after "step 5", expected plain exit status)
CASES = {
    "sigint": (LONG, signal.SIGINT, None),
    "sigterm": (LONG, signal.SIGTERM, -signal.SIGTERM),
    "sys_exit_3": (["--steps", "5", "--end", "exit3"], None, 3),
    "uncaught_exception": (["--steps", "5", "--end", "raise"], None, 1),
    "os_exit_5": (["--steps", "6", "--fault-at", "2", "--end", "os_exit5"], None, 5),
    "sigsegv": (["--steps", "5", "--end", "segv"], None, -signal.SIGSEGV),
    "sigabrt": (["--steps", "5", "--end", "abort"], None, -signal.SIGABRT),
}
CRASHES = ("sigsegv", "sigabrt")
only = [c for c in sys.argv[1:] if c in CASES]


def run_case(name, hooked):
    args, sig, _ = CASES[name]
    out = os.path.join(tmp, name + ("-hooked" if hooked else "-plain"))
    env = H.preload_env(a.lib, out) if hooked else H.base_env(out)
    err_path = out + ".stderr"
    p = rb.popen([a.python, rb.TRAIN] + args, env, tmp, err_path)
    try:
        lines = []
        if sig is not None:
            lines = rb.wait_for_line(p, "step 5 ", 240)
            p.send_signal(sig)
        stdout, _ = p.communicate(timeout=240)
    except BaseException:
        p.kill()
        p.wait()
        raise
    with open(err_path, "rb") as f:
        stderr = f.read()
    return rb.Result(p.returncode, ("\n".join(lines) + "\n").encode() + stdout, stderr), out


def check(name):
    plain, _ = run_case(name, False)
    hooked, out = run_case(name, True)
    expected = CASES[name][2]
    if expected is not None and plain.returncode != expected:
        H.fail("%s: the script without nantrace exited %s, expected %s (test script broken?)"
               % (name, plain.returncode, expected), plain)
    if hooked.returncode != plain.returncode:
        H.fail("%s: exit status %s with nantrace, %s without" % (name, hooked.returncode, plain.returncode), hooked)
    run_dir = rb.the_run_dir(out, hooked)
    try:
        # Every ending that runs exit handlers or signal handlers leaves the finished object
        # form; os._exit runs none (like SIGKILL, robust/test_sigkill.py): the live array form.
        events = rb.load_trace(os.path.join(run_dir, "trace.json"), finished=not name.startswith("os_exit"))
    except Exception as e:  # noqa: BLE001
        H.fail("%s: the trace does not load: %s" % (name, e), hooked)
    try:
        report = rb.load_report_json(run_dir)
    except Exception as e:  # noqa: BLE001
        H.fail("%s: report.json missing or not strict JSON: %s" % (name, e), hooked)
    if not rb.step_spans(events):
        H.fail("%s: the trace holds no step span" % name, hooked)
    notes = report.get("notes", [])
    if name in CRASHES:
        if not any("native backtrace" in n and "\n#0 " in n for n in notes):
            H.fail("%s: no native backtrace ('#0 ' line) in report.json notes: %r" % (name, notes), hooked)
    if name == "os_exit_5" and not report.get("finding", {}).get("found"):
        H.fail("os_exit_5: the provisional report written at the fault has no finding", hooked)
    return "ok %s: exit %s as without nantrace, trace loads (%d events), report.json parses%s" % (
        name, hooked.returncode, len(events), ", backtrace in notes" if name in CRASHES else "")


# Two cases at a time: half of the wall time on two cores.
with ThreadPoolExecutor(max_workers=2) as pool:
    for line in pool.map(check, only or list(CASES)):
        print(line, flush=True)
shutil.rmtree(tmp)
