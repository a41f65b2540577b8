"""tools/nantrace run gives the same result as LD_PRELOAD, passes the exit status through,
rejects bad arguments with one clear line; `report` prints report.md."""
import json
import os
import shutil

import nt_harness as H

a = H.parse_args()
tmp = H.tempdir("launcher")
launcher = os.path.join(a.repo, "tools", "nantrace")
script = [a.python, os.path.join(a.repo, "tests/integration/tiny_train.py"), "--steps", "4", "--nan-input-at", "3"]

out1 = os.path.join(tmp, "preload")
p1 = H.run(script, H.preload_env(a.lib, out1), cwd=tmp)
out2 = os.path.join(tmp, "launcher")
p2 = H.run([launcher, "run", "--lib", a.lib, "--dir", out2, "--"] + script, H.base_env(), cwd=tmp)
for p in (p1, p2):
    if p.returncode != 0:
        H.fail("training failed", p)
if p1.stdout != p2.stdout:
    H.fail("stdout differs between LD_PRELOAD and the launcher")
f1 = H.load_report(H.run_dir_of(p1, out1))["finding"]
f2 = H.load_report(H.run_dir_of(p2, out2))["finding"]
keys = ("found", "kind", "step", "phase", "module_path", "tensor")
if [f1.get(k) for k in keys] != [f2.get(k) for k in keys]:
    H.fail("findings differ:\n  preload:  %s\n  launcher: %s" % (
        json.dumps({k: f1.get(k) for k in keys}), json.dumps({k: f2.get(k) for k in keys})))
want = {"found": True, "kind": "bad_input", "step": 3, "phase": "input", "module_path": "TinyTrain"}
bad = H.subset_mismatches(want, f1, "finding")
if bad:
    H.fail("planted NaN batch not reported as such:\n  " + "\n  ".join(bad))

# exit status passes through
p3 = H.run([launcher, "run", "--lib", a.lib, "--dir", os.path.join(tmp, "exit"), "--",
            a.python, os.path.join(a.repo, "tests/integration/tiny_train.py"), "--steps", "1", "--exit", "3"],
           H.base_env(), cwd=tmp)
if p3.returncode != 3:
    H.fail("exit status %d, expected 3" % p3.returncode, p3)
p4 = H.run([launcher, "run", "--lib", a.lib, "--", "sh", "-c", "exit 7"], H.base_env(os.path.join(tmp, "sh")), cwd=tmp)
if p4.returncode != 7:
    H.fail("exit status %d, expected 7" % p4.returncode, p4)

# bad arguments: non-zero exit, one line that names the problem
for args, needle in ((["run", "--every", "0", "--", "true"], "positive integer"),
                     (["run", "--lib", os.path.join(tmp, "missing.so"), "--", "true"], "no such library"),
                     (["run", "--lib", a.lib], "no command"),
                     (["report", os.path.join(tmp, "nope")], "no such run directory")):
    p = H.run([launcher] + args, H.base_env(), cwd=tmp)
    err = p.stderr.decode().strip().splitlines()
    if p.returncode == 0 or not err or needle not in err[-1]:
        H.fail("bad arguments %s: rc=%d stderr=%r" % (args, p.returncode, err))

# report prints report.md
p5 = H.run([launcher, "report", H.run_dir_of(p1, out1)], H.base_env(), cwd=tmp)
if p5.returncode != 0 or not p5.stdout.strip():
    H.fail("report printed nothing", p5)
print("ok: launcher == LD_PRELOAD (%s), exit status passed through, bad arguments rejected" % json.dumps(
    {k: f1.get(k) for k in keys}))
shutil.rmtree(tmp)
