"""Preloaded into processes that are not PyTorch training (ls, sh -c, cat, a python that never
imports torch, and one that imports torch but never trains), nantrace changes nothing: stdout,
stderr and exit status byte-identical, and no file written anywhere in the test's temp dir."""
import os
import shutil

import nt_harness as H

a = H.parse_args()
tmp = H.tempdir("inert")
work = os.path.join(tmp, "work")
out = os.path.join(tmp, "out")
os.makedirs(work)
with open(os.path.join(work, "data.txt"), "w") as f:
    f.write("line one\nline two\n")
cases = [
    ("ls", ["ls", "-la", "--time-style=+", work]),
    ("sh", ["sh", "-c", "echo hi; echo err >&2; exit 4"]),
    ("cat", ["cat", os.path.join(work, "data.txt")]),
    ("python-no-torch", [a.python, "-c", "import sys, os; print('py', sys.argv); sys.stderr.write('e\\n'); sys.exit(5)"]),
    ("python-torch-no-training", [a.python, "-c", "import torch; print(torch.ones(3).sum().item())"]),
]
before = H.files_under(tmp)
for name, cmd in cases:
    plain = H.run(cmd, H.base_env(out), cwd=work)
    injected = H.run(cmd, H.preload_env(a.lib, out), cwd=work)
    for what in ("stdout", "stderr", "returncode"):
        if getattr(plain, what) != getattr(injected, what):
            H.fail("%s: %s differs under LD_PRELOAD:\n  plain:    %r\n  injected: %r"
                   % (name, what, getattr(plain, what), getattr(injected, what)))
    after = H.files_under(tmp)
    if after != before:
        H.fail("%s: files appeared under LD_PRELOAD: %s" % (name, sorted(after - before)))
    print("ok %s (rc=%d)" % (name, plain.returncode))
shutil.rmtree(tmp)
