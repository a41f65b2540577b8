"""A user's own sitecustomize still runs under nantrace, and nantrace is active too."""
import json
import os
import shutil

import nt_harness as H

a = H.parse_args()
tmp = H.tempdir("chain")
user = os.path.join(tmp, "usersite")
out = os.path.join(tmp, "out")
os.makedirs(user)
marker = os.path.join(tmp, "marker.txt")
with open(os.path.join(user, "sitecustomize.py"), "w") as f:
    f.write("import os\nos.environ['USER_SITE_RAN'] = '1'\n"
            "open(%r, 'w').write('user sitecustomize ran\\n')\n" % marker)
script = os.path.join(tmp, "probe.py")
with open(script, "w") as f:
    f.write("import os, sys, runpy\n"
            "print('USER_SITE_RAN=' + os.environ.get('USER_SITE_RAN', '0'))\n"
            "sys.argv = [%r, '--steps', '2']\n"
            "runpy.run_path(%r, run_name='__main__')\n"
            "print('hooks=' + str('nantrace_torch' in sys.modules))\n"
            % (os.path.join(a.repo, "tests/integration/tiny_train.py"),
               os.path.join(a.repo, "tests/integration/tiny_train.py")))
env = H.preload_env(a.lib, out, PYTHONPATH=user)
p = H.run([a.python, script], env, cwd=tmp)
text = p.stdout.decode()
if p.returncode != 0:
    H.fail("probe failed", p)
if "USER_SITE_RAN=1" not in text or not os.path.isfile(marker):
    H.fail("the user's sitecustomize did not run", p)
if "hooks=True" not in text:
    H.fail("nantrace hooks were not installed", p)
rd = H.run_dir_of(p, out)
if not rd:
    H.fail("no run directory", p)
rep = H.load_report(rd)
if rep.get("summary", {}).get("steps") != 2:
    H.fail("report does not show 2 steps: %s" % json.dumps(rep.get("summary")), p)
# Without nantrace the same user sitecustomize runs the same way (control).
os.unlink(marker)
p2 = H.run([a.python, "-c", "import os; print(os.environ.get('USER_SITE_RAN'))"],
           dict(H.base_env(out), PYTHONPATH=user), cwd=tmp)
if p2.stdout.decode().strip() != "1" or not os.path.isfile(marker):
    H.fail("control run without nantrace did not run the user's sitecustomize", p2)
print("ok: user sitecustomize chained; nantrace active (%s)" % rd)
shutil.rmtree(tmp)
