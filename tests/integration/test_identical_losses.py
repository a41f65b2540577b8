"""Same seed, bit-identical losses with and without nantrace: the demo's healthy run (when the
demo exists) and a model with in-place ops, dropout, fp16 autocast and GradScaler."""
import os
import shutil

import nt_harness as H

a = H.parse_args()
tmp = H.tempdir("losses")
runs = [("tiny_train", [a.python, os.path.join(a.repo, "tests/integration/tiny_train.py"), "--steps", "8"])]
demo = os.path.join(a.repo, "tools/demo/train_tiny_vits.py")
if os.path.isfile(demo):
    runs.append(("demo", [a.python, demo, "--steps", "8", "--healthy"]))
# Every stdout line counts (both scripts print only their losses); nantrace writes to stderr.
for name, cmd in runs:
    out = os.path.join(tmp, name)
    plain = H.run(cmd, H.base_env(out), cwd=tmp)
    hooked = H.run(cmd, H.preload_env(a.lib, out), cwd=tmp)
    if plain.returncode or hooked.returncode:
        H.fail("%s: exit %d / %d" % (name, plain.returncode, hooked.returncode), hooked)
    pl = plain.stdout.decode().splitlines()
    hl = hooked.stdout.decode().splitlines()
    if not pl:
        H.fail("%s printed no loss lines" % name, plain)
    if pl != hl:
        H.fail("%s: losses differ with nantrace:\n  plain: %s\n  hooked: %s" % (name, pl, hl))
    if not H.run_dir_of(hooked, out):
        H.fail("%s: nantrace was not active in the hooked run" % name, hooked)
    print("ok %s: %d identical loss lines" % (name, len(pl)))
shutil.rmtree(tmp)
