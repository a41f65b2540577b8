"""Issue 5.6: same seed, bit-identical losses with and without nantrace, compared as printed
strings: the demo's faulty default run (its losses turn nan; 20 steps) and a model with
ReLU(inplace=True) chains, in-place ops on module outputs and dropout (10 steps)."""
import os
import shutil

import rb
from rb import H

a = H.parse_args()
tmp = H.tempdir("samelosses")
runs = [
    ("demo", [a.python, os.path.join(a.repo, "tools/demo/train_tiny_vits.py"), "--steps", "20"], "nan"),
    ("inplace_dropout", [a.python, rb.ODD, "--cases", "inplace_dropout", "--steps", "10"], None),
]
for name, cmd, must_contain in runs:
    out = os.path.join(tmp, name)
    plain = rb.timed(name + " plain", H.run, cmd, H.base_env(out + "-unused"), cwd=tmp)
    hooked = rb.timed(name + " with nantrace", H.run, cmd, H.preload_env(a.lib, out), cwd=tmp)
    if plain.returncode or hooked.returncode:
        H.fail("%s: exit %d / %d" % (name, plain.returncode, hooked.returncode), hooked)
    pl, hl = plain.stdout.decode().splitlines(), hooked.stdout.decode().splitlines()
    if len(pl) < 10:
        H.fail("%s printed %d lines, expected at least 10" % (name, len(pl)), plain)
    if must_contain and not any(must_contain in l for l in pl):
        H.fail("%s: no %s among the losses: the planted fault did not fire" % (name, must_contain), plain)
    diff = [(i, x, y) for i, (x, y) in enumerate(zip(pl, hl)) if x != y]
    if pl != hl:
        H.fail("%s: losses differ with nantrace (first: line %s)" % (name, diff[:1] or "count"), hooked)
    run_dir = rb.the_run_dir(out, hooked)
    rb.load_trace(os.path.join(run_dir, "trace.json"))
    rb.load_report_json(run_dir)
    print("ok %s: %d identical lines" % (name, len(pl)))
shutil.rmtree(tmp)
