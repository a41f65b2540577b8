"""nantrace_scalar_at: a value read back late (the CUDA gradient norm) lands at the step it
belongs to, not at the step it was read, through the real library and its ctypes binding."""
import os
import shutil
import textwrap

import nt_harness as H

SCRIPT = textwrap.dedent('''
    import torch
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(1, 5):
        loss = model(torch.randn(3, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == 4:  # as _training._flush_device_norms does for a norm of step 2
            from nantrace_torch import _runtime as R
            R.api.scalar_at("probe_norm", 2, 42.5)
            R.api.scalar_at("probe_norm", 0, 7.0)  # not a step: recorded at the current one
    print("done")
''')

a = H.parse_args()
tmp, out, script, p = H.run_inline(a, "scalar-at", SCRIPT)
if p.returncode != 0 or b"done" not in p.stdout:
    H.fail("script failed (exit %d)" % p.returncode, p)
rep = H.load_report(H.run_dir_of(p, out))
series = rep.get("series", {}).get("probe_norm")
if series != [[2, 42.5], [4, 7.0]]:
    H.fail("series probe_norm = %r, expected [[2, 42.5], [4, 7.0]]" % (series,), p)
print("ok scalar_at: %s" % series)
shutil.rmtree(tmp)
