"""A planted fp16 overflow (exp in the encoder) is found at its step, phase and module; the
culprit is replayed to pin the op, the fp32 fix is verified, and `nantrace repro` replays it."""
import json
import os
import shutil

import nt_harness as H

a = H.parse_args()
tmp = H.tempdir("repro")
out = os.path.join(tmp, "out")
script = os.path.join(tmp, "train.py")  # a copy: the model classes live in its __main__
shutil.copy(os.path.join(a.repo, "tests/integration/tiny_train.py"), script)
p = H.run([a.python, script, "--steps", "5", "--overflow-at", "3"], H.preload_env(a.lib, out), cwd=tmp)
if p.returncode != 0:
    H.fail("training failed", p)
rd = H.run_dir_of(p, out)
rep = H.load_report(rd)
want = {"found": True, "step": 3, "phase": "forward", "module_path": "TinyTrain/enc",
        "dtype": "float16", "op": "aten::exp"}
bad = H.subset_mismatches(want, rep["finding"], "finding")
if bad:
    H.fail("finding:\n  " + "\n  ".join(bad) + "\n" + json.dumps(rep["finding"], indent=1)[:3000], p)
blob = os.path.join(rd, "repro", "origin_module.pt")
if not os.path.isfile(blob):
    H.fail("no %s" % blob, p)
r = H.run([os.path.join(a.repo, "tools", "nantrace"), "repro", rd, "--python", a.python], H.base_env(), cwd=tmp)
text = r.stdout.decode()
if r.returncode != 0 or "fp32: finite=True" not in text or "finite=False" not in text:
    H.fail("repro output unexpected", r)
print("ok: %s\n%s" % (json.dumps({k: rep["finding"].get(k) for k in want}), text))
shutil.rmtree(tmp)
