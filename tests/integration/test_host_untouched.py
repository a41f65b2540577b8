"""The host is never touched: a script whose own hooks count calls and record statistics
(tests/integration/host/hooks_train.py: per-module and global hooks, a full backward hook,
BatchNorm, dropout, a warning raised in autograd.grad, a planted fault that makes nantrace
replay and gather evidence) prints the same bytes on stdout and on stderr, and exits the same,
with and without nantrace (its own lines silenced with NANTRACE_LOG=off)."""
import os
import shutil

import nt_harness as H

a = H.parse_args()
tmp = H.tempdir("host")
out = os.path.join(tmp, "out")
cmd = [a.python, os.path.join(a.repo, "tests", "integration", "host", "hooks_train.py")]
plain = H.run(cmd, H.base_env(out), cwd=tmp)
hooked = H.run(cmd, H.preload_env(a.lib, out, NANTRACE_LOG="off"), cwd=tmp)
bad = []
if plain.returncode != hooked.returncode:
    bad.append("exit status %d without nantrace, %d with it" % (plain.returncode, hooked.returncode))
if plain.stdout != hooked.stdout:
    bad.append("stdout differs:\n--- plain\n%s\n--- with nantrace\n%s" % (plain.stdout.decode(), hooked.stdout.decode()))
if plain.stderr != hooked.stderr:
    bad.append("stderr differs:\n--- plain\n%s\n--- with nantrace\n%s" % (plain.stderr.decode(), hooked.stderr.decode()))
if b"FutureWarning" not in plain.stderr or b"nan" not in plain.stdout:
    bad.append("the script did not warn or did not fault: the comparison proves less than it says")
runs = [d for d in os.listdir(out)] if os.path.isdir(out) else []
if not runs:
    bad.append("nantrace was not active in the hooked run (no run directory)")
else:
    rep = H.load_report(os.path.join(out, runs[0]))
    if not rep["finding"].get("found"):
        bad.append("nantrace found no fault, so its replay and evidence did not run")
if bad:
    H.fail("\n".join(bad), hooked)
print("ok: same %d stdout bytes, %d stderr bytes and exit status %d with and without nantrace" % (
    len(plain.stdout), len(plain.stderr), plain.returncode))
shutil.rmtree(tmp)
