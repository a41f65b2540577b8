"""Multi-process training (issue 6): 2 ranks, DDP over gloo on CPU, a NaN planted in rank 1's
batch at step 3 only. Every rank writes its own rank-named trace and report into ONE run
directory; nantrace-merge names rank 1, step 3, phase input as where the fault began, although
the NaN reaches rank 0 too through the gradient all-reduce.

    --variant spawn     torch.multiprocessing.spawn (GPT-SoVITS's way)
    --variant gan       spawn, generator + discriminator each in DDP, two optimizers, one GradScaler
    --variant torchrun  torchrun --nproc_per_node 2 (the venv's torchrun next to --python)
    --run-dir           set NANTRACE_RUN_DIR explicitly (a user-chosen run directory) instead of
                        letting the launcher choose one under NANTRACE_DIR
"""
import json
import os
import re
import socket
import subprocess

import nt_harness as H
import trace_check as T

RANK_RE = re.compile(r'"rank":\s+(\d+)')  # Holistic Trace Analysis' pattern

a = H.parse_args([("--merge", {"required": True}),
                  ("--variant", {"choices": ["spawn", "gan", "torchrun"], "default": "spawn"}),
                  ("--run-dir", {"action": "store_true"})])
tmp = H.tempdir("multirank-" + a.variant)
out = os.path.join(tmp, "out")
script = os.path.join(a.repo, "tests", "integration", "multirank", "ddp_train.py")
extra = ["--gan"] if a.variant == "gan" else []
if a.variant == "torchrun":
    torchrun = os.path.join(os.path.dirname(a.python), "torchrun")
    if not os.path.isfile(torchrun):
        H.fail("no torchrun next to %s" % a.python)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [torchrun, "--nproc_per_node", "2", "--master_port", str(port), script, "torchrun"] + extra
else:
    cmd = [a.python, script, "spawn"] + extra

env = H.preload_env(a.lib, out)
if a.run_dir:
    env["NANTRACE_RUN_DIR"] = os.path.join(tmp, "chosen-run-dir")
p = H.run(cmd, env, cwd=tmp)
if p.returncode != 0:
    H.fail("training failed", p)

# One run directory for the whole run, the ranks' files side by side in it.
if a.run_dir:
    run_dir = env["NANTRACE_RUN_DIR"]
else:
    subdirs = sorted(d for d in os.listdir(out) if os.path.isdir(os.path.join(out, d))) if os.path.isdir(out) else []
    if len(subdirs) != 1:
        H.fail("expected one run directory under NANTRACE_DIR, found %d: %s (each rank chose its own: the launcher "
               "process must fix the run directory and export NANTRACE_RUN_DIR before it starts the ranks)"
               % (len(subdirs), subdirs), p)
    run_dir = os.path.join(out, subdirs[0])
files = sorted(os.listdir(run_dir))
reports = {}
for rank in (0, 1):
    for name in ("report.rank%d.json" % rank, "trace.rank%d.json" % rank):
        if name not in files:
            H.fail("%s missing in the run directory (files: %s)" % (name, files), p)
    with open(os.path.join(run_dir, "trace.rank%d.json" % rank), encoding="utf-8") as f:
        text = f.read()
    m = RANK_RE.search(text)
    if not m or int(m.group(1)) != rank:
        H.fail("trace.rank%d.json: distributedInfo \"rank\": %d not found (first match: %s)"
               % (rank, rank, m.group(0) if m else None))
    problems = T.check_file(os.path.join(run_dir, "trace.rank%d.json" % rank), finished=True, rank=rank)
    if problems:
        H.fail("trace.rank%d.json breaks rules:\n  " % rank + "\n  ".join(problems))
    with open(os.path.join(run_dir, "report.rank%d.json" % rank), encoding="utf-8") as f:
        reports[rank] = json.load(f)
    r = reports[rank]
    if r.get("rank") != rank or r.get("world_size") != 2:
        H.fail("report.rank%d.json: rank %r world_size %r" % (rank, r.get("rank"), r.get("world_size")))

# Whatever a rank saves for `nantrace repro` is its own file: ranks never overwrite each other.
repro_dir = os.path.join(run_dir, "repro")
for name in sorted(os.listdir(repro_dir)) if os.path.isdir(repro_dir) else []:
    if not re.fullmatch(r"origin_module\.rank[01]\.(pt|json)", name):
        H.fail("repro/%s is not a rank's own file (want origin_module.rank<R>.pt/.json)" % name)
for rank, r in reports.items():
    clash = [n for n in r.get("notes", []) if "File exists" in n]
    if clash:
        H.fail("report.rank%d.json: ranks wrote one file: %s" % (rank, clash))

# Every rank sees non-finite values. With GradScaler, rank 0's all-reduced NaN gradients are a
# step the scaler skipped (handled, not a fault): then its report says so instead of a finding.
for rank, r in reports.items():
    handled = a.variant == "gan" and any(s.get("step") == 3 for s in r.get("benign_skips", []))
    if not r["finding"]["found"] and not handled:
        H.fail("report.rank%d.json shows no non-finite finding: %s" % (rank, json.dumps(r["finding"])[:400]))
    if r["summary"]["nonfinite_checks"] < 1:
        H.fail("report.rank%d.json: no non-finite check counted" % rank)
# The rank's own view cannot tell where it began: rank 1 alone holds the bad batch.
want_module = "Generator" if a.variant == "gan" else "Net"
want = {"found": True, "step": 3, "phase": "input", "kind": "bad_input", "module_path": want_module}
bad = H.subset_mismatches(want, reports[1]["finding"], "report.rank1.json finding")
if bad:
    H.fail("rank 1's own report:\n  " + "\n  ".join(bad))


def check_merged(where):
    with open(os.path.join(run_dir, "report.merged.json"), encoding="utf-8") as f:
        merged = json.load(f)
    mism = H.subset_mismatches({"rank": 1, "world_size": 2, "finding": want}, merged, where)
    if mism:
        H.fail("merged finding does not name rank 1, step 3, input:\n  " + "\n  ".join(mism))
    with open(os.path.join(run_dir, "report.merged.md"), encoding="utf-8") as f:
        title = f.readline()
    if "at step 3 on rank 1" not in title:
        H.fail("%s: report.merged.md title does not name the rank: %r" % (where, title))
    merged_path = os.path.join(run_dir, "trace.merged.json")
    problems = T.check_file(merged_path, finished=True, merged=True)
    if problems:
        H.fail("%s: trace.merged.json breaks rules:\n  " % where + "\n  ".join(problems))
    header, trace, _ = T.load(merged_path)
    names = sorted(e["args"]["name"].split(" (")[0] for e in trace
                   if e.get("ph") == "M" and e.get("name") == "process_name" and e["args"]["name"].startswith("rank "))
    if names != ["rank 0", "rank 1"]:
        H.fail("%s: trace.merged.json processes %s, expected one per rank" % (where, names))
    if header.get("nantrace", {}).get("merged_ranks") != [0, 1]:
        H.fail("%s: trace.merged.json header does not list ranks 0 and 1: %s" % (where, header))
    marks = [e for e in trace if e.get("ph") == "i" and e.get("s") == "g"]
    if len(marks) != 1 or "rank 1" not in marks[0]["name"]:
        H.fail("%s: one global marker naming rank 1 expected, found %s" % (where, marks))
    # HTA, as a user runs it on a multi-rank run: one trace per rank.
    try:
        seen = T.hta_load({r: os.path.join(run_dir, "trace.rank%d.json" % r) for r in (0, 1)}, run_dir)
        if sorted(seen) != [0, 1] or not all(seen[r] for r in seen):
            H.fail("%s: HTA sees ranks/steps %s" % (where, seen))
        # The merged trace loads too (as one trace: it is not one rank's) with both ranks' steps.
        merged_seen = T.hta_load({0: merged_path}, run_dir)
        if not merged_seen.get(0) or not set(merged_seen[0]) >= (set(seen[0]) & set(seen[1])):
            H.fail("%s: HTA sees %s in trace.merged.json, per rank %s" % (where, merged_seen, seen))
    except ImportError:
        print("note: HolisticTraceAnalysis is not installed: HTA load skipped")


# The runtime may already have merged at the end of the launcher process: check that too.
if "report.merged.json" in files:
    check_merged("merged at the end of the run")
m = subprocess.run([a.merge, run_dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
if m.returncode != 0:
    H.fail("nantrace-merge failed", m)
stdout = m.stdout.decode()
if "on rank 1" not in stdout or "step 3 (input)" not in stdout:
    H.fail("nantrace-merge does not print the merged finding", m)
check_merged("nantrace-merge")
print("ok: %s: merged finding rank 1, step 3, input (%s)" % (a.variant, run_dir))
