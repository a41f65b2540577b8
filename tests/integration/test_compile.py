"""torch.compile: nantrace adds no recompilation and no graph break (dynamo's counters and the
TORCH_LOGS=recompiles,graph_breaks lines are the same with and without it, and so are the
losses), and a fault inside the compiled model is found, in the user's module (never in the
fx.GraphModule the backend runs)."""
import json
import os
import re
import shutil

import nt_harness as H

a = H.parse_args()
here = os.path.join(a.repo, "tests", "integration", "compile")
tmp = H.tempdir("compile")
out = os.path.join(tmp, "out")


def dynamo_lines(stderr):
    """What dynamo logged, without times and pids."""
    keep = []
    for line in stderr.decode("utf-8", "replace").splitlines():
        if "[__recompiles]" in line or "[__graph_breaks]" in line:
            keep.append(re.sub(r"^\S+ \S+ \d+ ", "", line))
    return keep


env_logs = {"TORCH_LOGS": "recompiles,graph_breaks"}
cmd = [a.python, os.path.join(here, "counts_train.py")]
plain = H.run(cmd, dict(H.base_env(out), **env_logs), cwd=tmp)
hooked = H.run(cmd, H.preload_env(a.lib, out, **env_logs), cwd=tmp)
if plain.returncode or hooked.returncode:
    H.fail("exit %d / %d" % (plain.returncode, hooked.returncode), hooked)
if not H.run_dir_of(hooked, out):
    H.fail("nantrace was not active in the hooked run", hooked)
pl, hl = plain.stdout.decode().splitlines(), hooked.stdout.decode().splitlines()
if pl != hl:
    H.fail("stdout (losses and dynamo's counters) differs with nantrace:\n  plain:  %s\n  hooked: %s" % (pl, hl), hooked)
counts = json.loads([l for l in pl if l.startswith("COUNTS ")][0][len("COUNTS "):])
if counts.get("stats", {}).get("unique_graphs", 0) < 1:
    H.fail("the script compiled nothing: the test proves nothing (%s)" % counts, plain)
dp, dh = dynamo_lines(plain.stderr), dynamo_lines(hooked.stderr)
if len(dp) != len(dh) or any("nantrace" in l for l in dh):
    H.fail("TORCH_LOGS lines differ with nantrace (%d vs %d):\n  %s" % (len(dp), len(dh), "\n  ".join(dh[:30])), hooked)
print("ok: same losses, counters %s and %d dynamo log lines with and without nantrace" % (counts, len(dp)))

# 24 short steps: NANTRACE_EVERY=auto samples the module checks from step 10 on; the hooks stay
# as dynamo saw them (compilation seen), so still nothing is recompiled.
out24 = os.path.join(tmp, "out24")
plain = H.run(cmd + ["24"], dict(H.base_env(out24), **env_logs), cwd=tmp)
hooked = H.run(cmd + ["24"], H.preload_env(a.lib, out24, **env_logs), cwd=tmp)
rd24 = H.run_dir_of(hooked, out24)
if plain.returncode or hooked.returncode or not rd24:
    H.fail("24 steps: exit %d / %d, run dir %r" % (plain.returncode, hooked.returncode, rd24), hooked)
if plain.stdout != hooked.stdout:
    H.fail("24 steps: stdout (losses and dynamo's counters) differs with nantrace", hooked)
dp, dh = dynamo_lines(plain.stderr), dynamo_lines(hooked.stderr)
if len(dp) != len(dh):
    H.fail("24 steps: TORCH_LOGS lines differ with nantrace (%d vs %d)" % (len(dp), len(dh)), hooked)
notes = H.load_report(rd24).get("notes", [])
if not any(n.startswith("Check sampling:") for n in notes):
    H.fail("24 steps: the run was not sampled, so this proves nothing (notes: %r)" % notes, hooked)
print("ok: 24 steps, module checks sampled from step 10: same losses, counters and dynamo log lines")

# A fault inside the compiled model: exp overflows fp32 at step 3 in Net/enc.
p = H.run([a.python, os.path.join(here, "fault_train.py")], H.preload_env(a.lib, out), cwd=tmp)
rd = H.run_dir_of(p, out)
if p.returncode or not rd:
    H.fail("fault run: exit %d, run dir %r" % (p.returncode, rd), p)
f = H.load_report(rd)["finding"]
errors = p.stderr.decode("utf-8", "replace")
if "Traceback" in errors:
    H.fail("a traceback reached the host's stderr", p)
want = {"found": True, "step": 3, "phase": "forward", "op": "aten::exp"}
bad = {k: f.get(k) for k in want if f.get(k) != want[k]}
if bad or f.get("module_path") != "Net/enc":
    H.fail("finding %s, wanted %s in Net/enc (found by the eager replay inside the compiled Net)" % (json.dumps({k: f.get(k) for k in list(want) + ["module_path"]}), want), p)
print("ok: the compiled fault is %s in %s, op %s" % (f["kind"], f["module_path"], f["op"]))
shutil.rmtree(tmp)
