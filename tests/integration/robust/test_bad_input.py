"""Issue 5.5, configuration and output directory: the training's stdout and exit status are
unchanged and nantrace says what is wrong in one line.

- every NANTRACE_* variable that src/core/config.cpp validates, given an invalid value
  (all at once): exactly one stderr line per variable, naming it;
- NANTRACE_DIR below a regular file (cannot be created): one line naming the path;
- a Python script that never imports torch: output byte-identical, no file written;
- a disk that fills up (a 64 KiB tmpfs; SKIP when mounting is not permitted): one
  "trace writing stopped" line, and the trace on disk still loads."""
import os
import re
import shutil
import subprocess

import rb
from rb import H

a = H.parse_args()
tmp = H.tempdir("badinput")
TRAIN = [a.python, rb.TRAIN, "--steps", "300", "--print-every", "25", "--fault-at", "250"]
INVALID = {  # variable: an invalid value (NANTRACE_LIB is set by the library itself; NANTRACE_RUN_DIR
             # is any path, tested below through NANTRACE_DIR)
    "NANTRACE_DISABLE": "maybe",
    "NANTRACE_DIR": "",
    "NANTRACE_CHECK": "everything",
    "NANTRACE_EVERY": "0",
    "NANTRACE_WINDOW": "-5",
    "NANTRACE_DETAIL_STEPS": "3 steps",
    "NANTRACE_MAX_TRACE_MB": "12abc",
    "NANTRACE_WARN_STEPS": "1e3",
    "NANTRACE_LOG": "loud",
    "NANTRACE_CUDA": "sometimes",
}
plain = rb.timed("plain", H.run, TRAIN, H.base_env(os.path.join(tmp, "unused")), cwd=tmp)
if plain.returncode != 0 or not plain.stdout:
    H.fail("the training fails without nantrace", plain)


def same_training(tag, p):
    if p.returncode != 0:
        H.fail("%s: exit status %s, 0 without nantrace" % (tag, p.returncode), p)
    if p.stdout != plain.stdout:
        H.fail("%s: the training's stdout changed" % tag, p)


# 1. Every variable invalid. NANTRACE_DIR="" falls back to ./nantrace_runs in the cwd.
cwd = os.path.join(tmp, "cwd")
os.makedirs(cwd)
env = H.preload_env(a.lib, None)
env.update(INVALID)
p = rb.timed("invalid values", H.run, TRAIN, env, cwd=cwd)
same_training("invalid values", p)
lines = rb.nantrace_lines(p.stderr)
for var in INVALID:
    mine = [l for l in lines if re.match(r"nantrace: %s=" % var, l)]
    if len(mine) != 1:
        H.fail("%s: expected exactly one stderr line naming it, got %r" % (var, mine), p)
bad = [l for l in lines if re.match(r"nantrace: NANTRACE_\w+=", l)]
if len(bad) != len(INVALID):
    H.fail("expected %d configuration lines, got %r" % (len(INVALID), bad), p)
run_dir = rb.the_run_dir(os.path.join(cwd, "nantrace_runs"), p)
rb.load_trace(os.path.join(run_dir, "trace.json"))
report = rb.load_report_json(run_dir)
if sum(1 for n in report.get("notes", []) if n.startswith("configuration: ")) != len(INVALID):
    H.fail("report.json notes do not list the %d configuration errors: %r" % (len(INVALID), report.get("notes")), p)
print("ok invalid values: one line per variable (%d), training unchanged, defaults used" % len(INVALID))

# 2. NANTRACE_DIR below a regular file.
blocker = os.path.join(tmp, "a-file")
with open(blocker, "w") as f:
    f.write("not a directory\n")
p = rb.timed("dir under a file", H.run, TRAIN, H.preload_env(a.lib, os.path.join(blocker, "runs")), cwd=tmp)
same_training("dir under a file", p)
lines = rb.nantrace_lines(p.stderr)
if len(lines) != 1 or blocker not in lines[0]:
    H.fail("NANTRACE_DIR below a file: expected one line naming %s, got %r" % (blocker, lines), p)
print("ok dir under a file: %s" % lines[0])

# 3. A script that never imports torch.
quiet = os.path.join(tmp, "quiet")
os.makedirs(quiet)
cmd = [a.python, "-c", "import json, sys; print(json.dumps({'a': [1, 2]})); sys.stderr.write('e\\n')"]
before = H.files_under(tmp)
p0 = H.run(cmd, H.base_env(quiet), cwd=quiet)
p1 = H.run(cmd, H.preload_env(a.lib, quiet), cwd=quiet)
if (p0.stdout, p0.stderr, p0.returncode) != (p1.stdout, p1.stderr, p1.returncode):
    H.fail("no torch: output differs under LD_PRELOAD", p1)
if H.files_under(tmp) != before:
    H.fail("no torch: files appeared: %s" % sorted(H.files_under(tmp) - before), p1)
print("ok no torch: identical output, no file")

# 4. Disk full.
full = os.path.join(tmp, "full")
os.makedirs(full)
m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", full], stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT)
if m.returncode != 0:
    print("SKIP disk full: cannot mount a tmpfs here (%s)" % m.stdout.decode().strip())
else:
    try:
        p = rb.timed("disk full", H.run, TRAIN, H.preload_env(a.lib, full), cwd=tmp)
        same_training("disk full", p)
        lines = rb.nantrace_lines(p.stderr)
        stopped = [l for l in lines if "trace writing stopped" in l]
        if len(stopped) != 1:
            H.fail("disk full: expected one 'trace writing stopped' line, got %r" % lines, p)
        run_dir = rb.the_run_dir(full, p)
        trace = os.path.join(run_dir, "trace.json")
        try:
            events = rb.load_trace(trace)
        except Exception as e:  # noqa: BLE001
            H.fail("disk full: the trace on disk (%d bytes) does not load with ']' appended: %s"
                   % (os.path.getsize(trace), e), p)
        print("ok disk full: %s; %d events on disk load" % (stopped[0], len(events)))
    finally:
        subprocess.run(["umount", full])
shutil.rmtree(tmp)
