"""nantrace's stderr lines beside a tqdm progress bar (issue 16, item 7): each starts on a line of
its own, never glued to the bar's partial line ("12%|█▎ | 3/24 [...]nantrace: ..."), and
NANTRACE_LOG=off still silences them. stderr is a pipe here, as under a log collector."""
import os
import shutil
import textwrap

import nt_harness as H

SCRIPT = textwrap.dedent('''
    import torch
    from tqdm import tqdm
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for step in tqdm(range(1, 7), mininterval=0):
        x = torch.randn(4, 8)
        if step == 3:
            x[0, 0] = float("nan")
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
''')

a = H.parse_args()
tmp, out, script, p = H.run_inline(a, "progress-bar", SCRIPT)
if p.returncode != 0:
    H.fail("training failed (exit %d)" % p.returncode, p)
err = p.stderr.decode("utf-8", "replace")
if "it/s]" not in err and "s/it]" not in err:
    H.fail("no tqdm bar on stderr: the test does not test what it means to", p)
glued = [i for i in range(len(err)) if err.startswith("nantrace:", i) and i > 0 and err[i - 1] != "\n"]
if glued:
    H.fail("%d nantrace line(s) continue another line, e.g. %r" % (len(glued), err[max(0, glued[0] - 60):glued[0] + 40]), p)
if err.count("nantrace: finding:") != 1:
    H.fail("want one finding line", p)
env = H.preload_env(a.lib, out)
env["NANTRACE_LOG"] = "off"
q = H.run([a.python, script], env, cwd=tmp)
if b"nantrace:" in q.stderr:
    H.fail("NANTRACE_LOG=off still printed nantrace lines", q)
print("ok: %d nantrace lines, each on a line of its own beside the bar" % err.count("nantrace:"))
shutil.rmtree(tmp)
