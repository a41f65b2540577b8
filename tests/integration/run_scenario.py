"""Run one scenario (tests/scenarios/<name>/train.py) under LD_PRELOAD and compare its
report.json with expected.json as a subset (the planted fault, written by hand), then
report.json and report.md whole with the reviewed copies in <scenario>/golden/ (paths, times,
process ids and machine facts normalised), so that any change to what a user reads is seen as
a diff. NANTRACE_UPDATE_GOLDEN=1 rewrites the copies instead; review them by hand before
committing (docs/architecture.md, "Golden reports"). The script is also run without nantrace:
its stdout and exit status must be the same (the host is never touched)."""
import difflib
import json
import os
import re
import shutil

import nt_harness as H
import one_story as O
import trace_check as T

a = H.parse_args([("--scenario", {"required": True}),
                   # NANTRACE_FAST_PATH=0: the same scenario through the hooks' Python path only
                   # (the extension's common case off), against the same expected finding and copies.
                   ("--python-path", {"action": "store_true"}),
                   # NANTRACE_EVERY=16 from step 1 (unless the scenario sets it): the planted fault
                   # falls on a sampled-out step and must still give the expected finding (the
                   # step replay); expected.json's "_sampled" replaces parts of it for this run.
                   # Only the finding, the host's output, the trace rules and the one story are
                   # compared: the reviewed copies are of runs that check every step.
                   ("--sampled", {"action": "store_true"})])
scen = os.path.abspath(a.scenario)
with open(os.path.join(scen, "expected.json"), encoding="utf-8") as f:
    expected = json.load(f)
env_extra = expected.pop("_env", {}) if isinstance(expected, dict) else {}
if a.python_path:
    env_extra["NANTRACE_FAST_PATH"] = "0"
sampled_overrides = expected.pop("_sampled", {}) if isinstance(expected, dict) else {}
# The reviewed copies check every step: NANTRACE_EVERY=auto would choose from this machine's
# step times, which no copy can follow.
env_extra.setdefault("NANTRACE_EVERY", "16" if a.sampled else "1")


def _override(base, over):
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _override(base[k], v)
        else:
            base[k] = v


if a.sampled:
    _override(expected, sampled_overrides)
args = expected.pop("_args", []) if isinstance(expected, dict) else []
# Substrings that must each appear in one of the report's notes (recurrences, check levels).
notes_contain = expected.pop("_notes_contain", []) if isinstance(expected, dict) else []
if isinstance(expected, dict):
    expected.pop("_comment", None)  # what the script plants, in words
tmp = H.tempdir("scenario-" + os.path.basename(scen))
out = os.path.join(tmp, "out")
work = os.path.join(tmp, "work")
os.makedirs(work)
env = H.preload_env(a.lib, out, **{k: str(v) for k, v in env_extra.items()})
env["PYTHONPATH"] = os.pathsep.join([scen, os.path.join(a.repo, "tools", "demo"), a.repo])
p = H.run([a.python, os.path.join(scen, "train.py")] + list(args), env, cwd=work)
rd = H.run_dir_of(p, out)
if not rd:
    H.fail("no run directory (exit %d)" % p.returncode, p)
rep = H.load_report(rd)
bad = H.subset_mismatches(expected, rep)
# The host untouched: the script prints the same and exits the same without nantrace.
plain_work = os.path.join(tmp, "plain")
os.makedirs(plain_work)
plain_env = H.base_env(os.path.join(tmp, "plain-out"))
plain_env["PYTHONPATH"] = env["PYTHONPATH"]
for k, v in env_extra.items():
    plain_env[k] = str(v)
plain = H.run([a.python, os.path.join(scen, "train.py")] + list(args), plain_env, cwd=plain_work)
if plain.stdout != p.stdout or plain.returncode != p.returncode:
    bad.append("the script's stdout or exit status differs with nantrace (exit %d / %d):\n--- plain\n%s--- with nantrace\n%s"
               % (plain.returncode, p.returncode, plain.stdout.decode()[-1500:], p.stdout.decode()[-1500:]))
for want in ([] if a.sampled else notes_contain):
    if not any(want in n for n in rep.get("notes", [])):
        bad.append("no note contains %r (notes: %s)" % (want, json.dumps(rep.get("notes", []))[:1500]))
# Every scenario's trace follows the viewers' rules (trace_check.py).
bad += T.check_file(os.path.join(rd, "trace.json"), finished=True, rank=0)
# stderr, report.md, report.json and the trace tell one story (one_story.py).
with open(os.path.join(rd, "report.md"), encoding="utf-8") as f:
    bad += O.check(p.stderr.decode("utf-8", "replace"), rep, f.read(), os.path.join(rd, "trace.json"))
if bad:
    H.fail("report differs from expected.json or the trace breaks a rule:\n  " + "\n  ".join(bad) +
           "\nfinding: " + json.dumps(rep.get("finding", {}), indent=1)[:3000], p)


def normalise(text, rd, repo, python):
    """What differs between runs and machines, replaced by placeholders."""
    for value, name in ((rd, "<RUN_DIR>"), (work, "<CWD>"), (os.path.realpath(work), "<CWD>"), (repo, "<REPO>"),
                        (python, "<PYTHON>")):
        # report.md escapes '_' in table cells: replace that spelling too.
        text = text.replace(value, name).replace(value.replace("_", "\\_"), name)
    return text


MACHINE = ("cpu", "platform", "python", "torch", "cuda", "pid", "nantrace", "device", "device_capability")


def golden_json(rep):
    rep = json.loads(json.dumps(rep))
    env = rep.get("environment", {})
    for k in MACHINE:
        if k in env:
            env[k] = "<%s>" % k.upper()
    if "ts_ns" in rep.get("finding", {}):
        rep["finding"]["ts_ns"] = "<TS>"
    return json.dumps(rep, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def golden_md(text):
    out = []
    for line in text.splitlines():
        m = re.match(r"^\| ([a-z_\\]+) \| .* \|$", line)
        if m and m.group(1).replace("\\", "") in MACHINE:
            line = "| %s | <%s> |" % (m.group(1), m.group(1).replace("\\", "").upper())
        out.append(line)
    return "\n".join(out) + "\n"


with open(os.path.join(rd, "report.md"), encoding="utf-8") as f:
    md_text = f.read()
python_exe = a.python
actual = {
    "report.json": normalise(golden_json(rep), rd, a.repo, python_exe),
    "report.md": normalise(golden_md(md_text), rd, a.repo, python_exe),
}
# A number written with a fraction or an exponent: a measured value (a norm, a loss, a ratio)
# whose last digits move with the CPU, the torch build and the order of a sum. Counts, steps and
# indices are integers and are compared exactly, as is every word around the numbers.
FLOAT = re.compile(r"-?(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|-?\d+[eE][-+]?\d+")
FLOAT_REL = 1e-3


def same_but_float_noise(want, got):
    """The golden copy and this run's text are the same but for measured values within
    FLOAT_REL of each other (relative), so a reviewed copy survives another machine's rounding
    (docs/architecture.md, "Golden reports")."""
    if FLOAT.sub("#", want) != FLOAT.sub("#", got):
        return False
    for a, b in zip(FLOAT.findall(want), FLOAT.findall(got)):
        x, y = float(a), float(b)
        if abs(x - y) > FLOAT_REL * max(abs(x), abs(y)) + 1e-12:
            return False
    return True


golden_dir = os.path.join(scen, "golden")
if a.sampled:
    print("ok: the expected finding with module checks on every 16th step")
elif os.environ.get("NANTRACE_UPDATE_GOLDEN") == "1" and not a.python_path:
    os.makedirs(golden_dir, exist_ok=True)
    for name, text in actual.items():
        with open(os.path.join(golden_dir, name), "w", encoding="utf-8") as f:
            f.write(text)
    print("golden copies rewritten in %s: review them by hand before committing" % golden_dir)
else:
    diffs = []
    for name, text in actual.items():
        path = os.path.join(golden_dir, name)
        if not os.path.isfile(path):
            diffs.append("%s missing: run with NANTRACE_UPDATE_GOLDEN=1, then review it by hand" % path)
            continue
        with open(path, encoding="utf-8") as f:
            want = f.read()
        if want != text and not same_but_float_noise(want, text):
            d = list(difflib.unified_diff(want.splitlines(), text.splitlines(), "golden/" + name, "this run", lineterm=""))
            diffs.append("%s differs from the reviewed copy:\n%s" % (name, "\n".join(d[:80])))
    if diffs:
        H.fail("golden reports of %s:\n" % os.path.basename(scen) + "\n".join(diffs), p)
print("ok %s: %s" % (os.path.basename(scen), json.dumps({k: rep["finding"].get(k) for k in
      ("found", "kind", "step", "phase", "module_path", "op")})))
shutil.rmtree(tmp)
