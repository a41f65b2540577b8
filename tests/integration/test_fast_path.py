"""The hooks' hot path in C is the one that runs when its extension is built: the binding
loaded _nantrace_fast, the module hooks use its common case, and frames and gradient checks
are its types. (The
scenario_python_path.* tests run the same scenarios with it off and expect the same reports.)"""
import glob
import os

import nt_harness as H

a = H.parse_args()
built = glob.glob(os.path.join(os.path.dirname(a.lib), "python", "nantrace_torch", "_nantrace_fast*.so"))
if not built:
    print("skip: the extension was not built here (no Python >= 3.10 headers)")
    raise SystemExit(0)
SOURCE = r'''
import torch, torch.nn as nn
m = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1))
loss = m(torch.randn(2, 4)).sum()
loss.backward()
from nantrace_torch import _modules, _runtime as R
st = R.tls.stack
print("FAST", R.api.fast is not None, _modules._fast_pre is not None, type(_modules.Frame).__module__,
      _modules.GradCheck.__module__, _modules.Frame.__module__)
'''
tmp, out, script, p = H.run_inline(a, "fast-path", SOURCE)
line = [l for l in p.stdout.decode().splitlines() if l.startswith("FAST ")]
if p.returncode or not line:
    H.fail("the script failed", p)
if line[0].split()[1:4] != ["True", "True", "builtins"] or line[0].split()[-2:] != ["_nantrace_fast"] * 2:
    H.fail("the extension's hot path is not in use: %s" % line[0], p)
tmp2, out2, script2, p2 = H.run_inline(a, "fast-path-off", SOURCE, NANTRACE_FAST_PATH="0")
line2 = [l for l in p2.stdout.decode().splitlines() if l.startswith("FAST ")]
if p2.returncode or not line2 or line2[0].split()[1:3] != ["False", "False"]:
    H.fail("NANTRACE_FAST_PATH=0 did not keep the Python path: %s" % (line2 or "no output"), p2)
print("ok: %s; with NANTRACE_FAST_PATH=0: %s" % (line[0], line2[0]))
