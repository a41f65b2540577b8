"""Shared helpers of the integration tests: arguments, temp dirs, running under LD_PRELOAD,
finding the run directory, comparing a report with an expected subset."""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

RUN_DIR_RE = re.compile(r"nantrace: run directory: (.+)")
TIMEOUT = int(os.environ.get("NANTRACE_TEST_TIMEOUT", "600"))


def parse_args(extra=None):
    p = argparse.ArgumentParser()
    p.add_argument("--lib", required=True)
    p.add_argument("--repo", required=True)
    p.add_argument("--python", default=sys.executable)
    for a, kw in (extra or []):
        p.add_argument(a, **kw)
    return p.parse_args()


def tempdir(tag):
    return tempfile.mkdtemp(prefix="nantrace-%s-" % tag)


def base_env(out_dir=None):
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("NANTRACE_") or k in ("LD_PRELOAD", "CUDA_INJECTION64_PATH"):
            del env[k]
    env.pop("PYTHONPATH", None)
    if out_dir:
        env["NANTRACE_DIR"] = out_dir
    return env


def preload_env(lib, out_dir, **extra):
    env = base_env(out_dir)
    env["LD_PRELOAD"] = lib
    env.update(extra)
    return env


def run(cmd, env, cwd=None, stdin=None):
    p = subprocess.run(cmd, env=env, cwd=cwd, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT)
    return p


def run_inline(a, tag, source, **env_extra):
    """Write `source` as train.py in a fresh temporary directory and run it under LD_PRELOAD
    there: (tmp, out, script, proc), out being NANTRACE_DIR."""
    tmp = tempdir(tag)
    out = os.path.join(tmp, "out")
    script = os.path.join(tmp, "train.py")
    with open(script, "w") as f:
        f.write(source)
    return tmp, out, script, run([a.python, script], preload_env(a.lib, out, **env_extra), cwd=tmp)


def run_dir_of(proc, out_dir):
    """The run directory: as printed on stderr, else the only directory under out_dir."""
    for line in proc.stderr.decode("utf-8", "replace").splitlines():
        m = RUN_DIR_RE.search(line)
        if m:
            return m.group(1).strip()
    dirs = [os.path.join(out_dir, d) for d in os.listdir(out_dir)] if os.path.isdir(out_dir) else []
    dirs = [d for d in dirs if os.path.isdir(d)]
    return dirs[0] if len(dirs) == 1 else None


def load_report(run_dir):
    for name in ("report.json", "report.rank0.json"):
        p = os.path.join(run_dir, name)
        if os.path.isfile(p):
            with open(p, encoding="utf-8") as f:
                return json.load(f)
    raise AssertionError("no report.json in %s (files: %s)" % (run_dir, sorted(os.listdir(run_dir))))


def subset_mismatches(expected, actual, where="report"):
    """Every key of expected must be in actual with an equal value (dicts recursively, lists
    element by element and of equal length). A key "min_X" / "max_X" (when the report has no
    such key but has X) bounds the number of entries of list X, or the value of X.
    Returns a list of human-readable mismatches."""
    out = []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return ["%s: expected an object, got %r" % (where, actual)]
        for k, v in expected.items():
            bound = k[:4] if k[:4] in ("min_", "max_") and k not in actual and k[4:] in actual else None
            if bound:  # "min_benign_skips": 21 -> at least 21 entries (or a value >= 21)
                got = actual[k[4:]]
                n = len(got) if isinstance(got, (list, dict)) else got
                if not isinstance(n, (int, float)) or (n < v if bound == "min_" else n > v):
                    out.append("%s.%s: %s %r, got %r" % (where, k[4:], "at least" if bound == "min_" else "at most", v, n))
            elif k not in actual:
                out.append("%s.%s: missing (expected %r)" % (where, k, v))
            else:
                out.extend(subset_mismatches(v, actual[k], "%s.%s" % (where, k)))
    elif isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return ["%s: expected %r, got %r" % (where, expected, actual)]
        for i, (e, a) in enumerate(zip(expected, actual)):
            out.extend(subset_mismatches(e, a, "%s[%d]" % (where, i)))
    elif expected != actual:
        out.append("%s: expected %r, got %r" % (where, expected, actual))
    return out


def files_under(root):
    found = set()
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            found.add(os.path.relpath(os.path.join(d, n), root))
    return found


def fail(msg, proc=None):
    sys.stderr.write("FAIL: %s%s\n" % (msg, " (exit status %s)" % proc.returncode if proc is not None else ""))
    if proc is not None:
        sys.stderr.write("--- stdout ---\n%s\n--- stderr ---\n%s\n" % (
            proc.stdout.decode("utf-8", "replace")[-4000:], proc.stderr.decode("utf-8", "replace")[-4000:]))
    sys.exit(1)
