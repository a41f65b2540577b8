"""Issue 5 item 7, end to end: secrets in the command line and in the environment never reach
the run's files, and the files are created 0644 or tighter."""
import os
import shutil
import stat

import nt_harness as H

a = H.parse_args()
tmp = H.tempdir("secrets")
out = os.path.join(tmp, "out")
work = os.path.join(tmp, "work")
os.makedirs(work)
ARG_SECRET = "argsecretvalue12345678"
ENV_SECRET = "hf_envsecretABCDEFGHIJKLMNOPQRSTUV"
URL_SECRET = "urlpassw0rd"
script = os.path.join(work, "train_with_secrets.py")
with open(script, "w") as f:
    f.write(
        "import runpy, sys\n"
        "sys.argv = [sys.argv[0], '--steps', '4', '--overflow-at', '3']\n"  # the secrets stay in /proc/self/cmdline
        "runpy.run_path(%r, run_name='__main__')\n" % os.path.join(a.repo, "tests", "integration", "tiny_train.py"))
env = H.preload_env(a.lib, out, HF_TOKEN=ENV_SECRET, WANDB_API_KEY=ENV_SECRET)
p = H.run([a.python, script, "--token", ARG_SECRET, "--db=https://user:%s@example.com/x" % URL_SECRET], env, cwd=work)
rd = H.run_dir_of(p, out)
if not rd:
    H.fail("no run directory (exit %d)" % p.returncode, p)
problems = []
saw_command = False
for root, _, files in os.walk(rd):
    for name in files:
        path = os.path.join(root, name)
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        if mode & 0o022:
            problems.append("%s is group/world-writable (mode %o)" % (path, mode))
        if name.endswith(".pt"):
            continue
        text = open(path, encoding="utf-8", errors="replace").read()
        for secret in (ARG_SECRET, ENV_SECRET, URL_SECRET):
            if secret in text:
                problems.append("%s contains the secret %r" % (name, secret))
        saw_command |= name == "report.json" and "train_with_secrets.py" in text
if not saw_command:
    problems.append("report.json does not show the (redacted) command line at all")
for secret in (ARG_SECRET, ENV_SECRET, URL_SECRET):
    if secret in p.stderr.decode("utf-8", "replace"):
        problems.append("stderr shows the secret %r" % secret)
if problems:
    H.fail("\n  ".join(["%d problem(s):" % len(problems)] + problems), p)
print("ok: no secret in %s, modes <= 0644" % rd)
shutil.rmtree(tmp)
