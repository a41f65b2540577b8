"""Run one scenario (tests/scenarios/<name>/train.py) under LD_PRELOAD and compare its
report.json with expected.json as a subset."""
import json
import os
import shutil

import nt_harness as H
import trace_check as T

a = H.parse_args([("--scenario", {"required": True})])
scen = os.path.abspath(a.scenario)
with open(os.path.join(scen, "expected.json"), encoding="utf-8") as f:
    expected = json.load(f)
env_extra = expected.pop("_env", {}) if isinstance(expected, dict) else {}
args = expected.pop("_args", []) if isinstance(expected, dict) else []
# Substrings that must each appear in one of the report's notes (recurrences, check levels).
notes_contain = expected.pop("_notes_contain", []) if isinstance(expected, dict) else []
tmp = H.tempdir("scenario-" + os.path.basename(scen))
out = os.path.join(tmp, "out")
work = os.path.join(tmp, "work")
os.makedirs(work)
env = H.preload_env(a.lib, out, **{k: str(v) for k, v in env_extra.items()})
env["PYTHONPATH"] = os.pathsep.join([scen, os.path.join(a.repo, "tools", "demo"), a.repo])
p = H.run([a.python, os.path.join(scen, "train.py")] + list(args), env, cwd=work)
rd = H.run_dir_of(p, out)
if not rd:
    H.fail("no run directory (exit %d)" % p.returncode, p)
rep = H.load_report(rd)
bad = H.subset_mismatches(expected, rep)
for want in notes_contain:
    if not any(want in n for n in rep.get("notes", [])):
        bad.append("no note contains %r (notes: %s)" % (want, json.dumps(rep.get("notes", []))[:1500]))
# Every scenario's trace follows the viewers' rules (trace_check.py).
bad += T.check_file(os.path.join(rd, "trace.json"), finished=True, rank=0)
if bad:
    H.fail("report differs from expected.json or the trace breaks a rule:\n  " + "\n  ".join(bad) +
           "\nfinding: " + json.dumps(rep.get("finding", {}), indent=1)[:3000], p)
print("ok %s: %s" % (os.path.basename(scen), json.dumps({k: rep["finding"].get(k) for k in
      ("found", "kind", "step", "phase", "module_path", "op")})))
shutil.rmtree(tmp)
