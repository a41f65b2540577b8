"""Helpers of the robustness tests (issue 5), on top of ../nt_harness.py."""
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import nt_harness as H  # noqa: E402

TRAIN = os.path.join(HERE, "robust_train.py")
ODD = os.path.join(HERE, "odd_models.py")


def _no_constants(name):
    raise ValueError("not strict JSON: literal %s" % name)


def strict_loads(text):
    """json.loads that refuses NaN / Infinity / -Infinity literals (Python accepts them)."""
    return json.loads(text, parse_constant=_no_constants)


def load_trace(path, finished=None):
    """The trace's events, after the strict checker (../trace_check.py) found nothing wrong.
    finished: True = must be the finished object form, False = the live array form (a
    killed run; a cut at an event boundary gets its ']'), None = either."""
    import trace_check as T
    header, events, is_finished = T.load(path)
    if finished is not None and is_finished != finished:
        raise ValueError("%s: expected the %s form" % (path, "finished object" if finished else "live array"))
    problems = T.check_file(path, finished=is_finished)
    if problems:
        raise ValueError("trace rules broken:\n  " + "\n  ".join(problems))
    return events


def load_report_json(run_dir, name="report.json"):
    with open(os.path.join(run_dir, name), encoding="utf-8") as f:
        return strict_loads(f.read())


def nantrace_lines(stderr):
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    return [l for l in text.splitlines() if l.startswith("nantrace:")]


def run_dirs(out):
    if not os.path.isdir(out):
        return []
    return sorted(os.path.join(out, d) for d in os.listdir(out) if os.path.isdir(os.path.join(out, d)))


def the_run_dir(out, proc=None):
    dirs = run_dirs(out)
    if len(dirs) != 1:
        H.fail("expected exactly one run directory under %s, found %s" % (out, dirs), proc)
    return dirs[0]


def step_spans(events):
    """{step: (start_us, end_us)} of the ProfilerStep#N spans; fails on a duplicate."""
    spans = {}
    for e in events:
        name = e.get("name", "")
        if e.get("ph") == "X" and name.startswith("ProfilerStep#"):
            n = int(name[len("ProfilerStep#"):])
            if n in spans:
                raise AssertionError("ProfilerStep#%d written twice" % n)
            spans[n] = (float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0)))
    return spans


def popen(cmd, env, cwd, stderr_path):
    """A child whose stdout we read line by line and whose stderr goes to a file."""
    err = open(stderr_path, "wb")
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
    err.close()
    return p


def wait_for_line(proc, prefix, timeout):
    """Read proc's stdout until a line starting with prefix; returns all lines read."""
    lines = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        line = line.decode("utf-8", "replace").rstrip("\n")
        lines.append(line)
        if line.startswith(prefix):
            return lines
    raise AssertionError("no line %r within %ss (got %r)" % (prefix, timeout, lines[-5:]))


class Result:
    """subprocess.CompletedProcess-like, for H.fail."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def timed(label, fn, *a, **kw):
    t0 = time.time()
    r = fn(*a, **kw)
    print("  (%s: %.1f s)" % (label, time.time() - t0), flush=True)
    return r
