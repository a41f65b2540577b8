"""The `nantrace` command: run a command with nantrace injected, show a report, replay a
finding, merge a multi-process run, say where the library is.

    nantrace run [--dir D] [--check module|op] [--every N] [--lib PATH] -- CMD ...
    nantrace report RUN_DIR
    nantrace repro RUN_DIR [--python PY]
    nantrace merge RUN_DIR
    nantrace lib                      # for LD_PRELOAD=$(nantrace lib)
    nantrace --version

Standard library only: it must work with any python3, including one without torch.

Two layouts (docs/install.md): installed (pip, or `cmake --install`), where this package's
directory also holds libnantrace.so, libnantrace_runtime.so, nantrace-merge and python/ (the
bootstrap and hooks); and the source tree, where they are under build/ and injector/python.
"""
import argparse
import os
import re
import shlex
import sys

from . import __version__

HERE = os.path.dirname(os.path.realpath(__file__))
INSTALLED = os.path.isfile(os.path.join(HERE, "libnantrace.so"))
REPO = os.path.dirname(os.path.dirname(HERE))  # injector/nantrace -> the repository (source tree)


def die(msg, code=2):
    sys.stderr.write("nantrace: %s\n" % msg)
    sys.exit(code)


def _own(*installed, source):
    """A file of this installation: next to this package when installed, else in the tree."""
    return os.path.join(HERE, *installed) if INSTALLED else os.path.join(REPO, *source)


def find_lib(explicit):
    for cand, why in ((explicit, "--lib"), (os.environ.get("NANTRACE_LIB"), "NANTRACE_LIB"),
                      (_own("libnantrace.so", source=("build", "lib", "libnantrace.so")), None)):
        if not cand:
            continue
        if os.path.isfile(cand):
            return os.path.realpath(cand)
        if why:
            die("%s: no such library: %s" % (why, cand))
    die("libnantrace.so not found: build it (cmake --build build) or pass --lib PATH")


def positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a positive integer, got %r" % text)
    if v < 1:
        raise argparse.ArgumentTypeError("expected a positive integer, got %r" % text)
    return v


def cmd_run(a):
    cmd = list(a.command)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        die("run: no command given (usage: nantrace run [options] -- CMD ...)")
    lib = find_lib(a.lib)
    env = dict(os.environ)
    pre = env.get("LD_PRELOAD", "")
    parts = [p for p in pre.replace(":", " ").split() if p]
    if lib not in parts:
        env["LD_PRELOAD"] = " ".join([lib] + parts) if parts else lib
    env["NANTRACE_LIB"] = lib
    if a.dir:
        env["NANTRACE_DIR"] = os.path.abspath(a.dir)
    if a.check:
        env["NANTRACE_CHECK"] = a.check
    if a.every:
        env["NANTRACE_EVERY"] = str(a.every)
    try:
        os.execvpe(cmd[0], cmd, env)  # the exit status is the command's own
    except OSError as e:
        die("run: cannot execute %s: %s" % (shlex.quote(cmd[0]), e.strerror), 127)


def _run_dir(path):
    if not os.path.isdir(path):
        die("no such run directory: %s" % path)
    return path


def cmd_report(a):
    d = _run_dir(a.run_dir)
    names = sorted(n for n in os.listdir(d) if n.startswith("report") and n.endswith(".md"))
    if not names:
        die("no report.md in %s (the run may still be going, or was killed before the end)" % d, 1)
    for i, n in enumerate(names):
        if i:
            sys.stdout.write("\n")
        with open(os.path.join(d, n), encoding="utf-8", errors="replace") as f:
            sys.stdout.write(f.read())
    return 0


def _python(explicit):
    for cand in (explicit, os.environ.get("NANTRACE_PYTHON"),
                 os.path.expanduser("~/.cache/nantrace/venv/bin/python")):
        if cand and os.path.isfile(cand):
            return cand
    return sys.executable


def _hooks_dir():
    cands = [os.path.join(HERE, "python")] if INSTALLED else [
        os.path.join(REPO, "injector", "python"), os.path.join(REPO, "build", "lib", "python")]
    for cand in cands:
        if os.path.isdir(os.path.join(cand, "nantrace_torch")):
            return cand
    die("nantrace_torch package not found next to the launcher")


def _repro_blob(d, rank):
    """The captured module of a run directory: repro/origin_module.pt, or one rank's
    origin_module.rank<R>.pt (ranks write their own; --rank picks one when several did)."""
    rep = os.path.join(d, "repro")
    names = sorted(n for n in (os.listdir(rep) if os.path.isdir(rep) else [])
                   if re.fullmatch(r"origin_module(\.rank\d+|\.pid\d+)?\.pt", n))
    if rank is not None:
        names = [n for n in names if n == "origin_module.rank%d.pt" % rank]
    if not names:
        die("no captured module in %s%s (repro/origin_module[.rankR].pt is written when the origin is a "
            "module's forward)" % (d, "" if rank is None else " for rank %d" % rank), 1)
    if len(names) > 1:
        die("several ranks saved a captured module in %s: %s; choose one with --rank R" %
            (rep, ", ".join(names)), 2)
    return os.path.join(rep, names[0])


def cmd_repro(a):
    d = _run_dir(a.run_dir)
    blob = _repro_blob(d, a.rank)
    env = dict(os.environ)
    for k in ("LD_PRELOAD", "NANTRACE_LIB"):
        env.pop(k, None)  # the replay itself runs without nantrace
    env["PYTHONPATH"] = os.pathsep.join([_hooks_dir()] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    py = _python(a.python)
    argv = [py, "-m", "nantrace_torch.repro", blob]
    try:
        os.execve(py, argv, env)
    except OSError as e:
        die("repro: cannot execute %s: %s" % (py, e.strerror), 127)


def cmd_merge(a):
    d = _run_dir(a.run_dir)
    tool = (a.merge_tool or os.environ.get("NANTRACE_MERGE")
            or _own("nantrace-merge", source=("build", "bin", "nantrace-merge")))
    if not os.path.isfile(tool):
        die("merge: nantrace-merge not found at %s (build it, or pass --merge-tool PATH)" % tool)
    try:
        os.execv(tool, [tool, d])
    except OSError as e:
        die("merge: cannot execute %s: %s" % (tool, e.strerror), 127)


def cmd_lib(a):
    sys.stdout.write(find_lib(None) + "\n")
    return 0


def main(argv):
    p = argparse.ArgumentParser(prog="nantrace", description="Find where NaN/Inf first appear in PyTorch training.")
    p.add_argument("--version", action="version", version="nantrace " + __version__)
    sub = p.add_subparsers(dest="sub", metavar="COMMAND")
    r = sub.add_parser("run", help="run a command with nantrace injected")
    r.add_argument("--dir", help="parent directory for run directories (NANTRACE_DIR)")
    r.add_argument("--check", choices=("module", "op"), help="check level (NANTRACE_CHECK)")
    r.add_argument("--every", type=positive_int, metavar="N", help="check module outputs every Nth step (NANTRACE_EVERY)")
    r.add_argument("--lib", help="path of libnantrace.so")
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ...")
    r.set_defaults(fn=cmd_run)
    s = sub.add_parser("report", help="print a run's report.md")
    s.add_argument("run_dir")
    s.set_defaults(fn=cmd_report)
    s = sub.add_parser("repro", help="replay the culprit module as captured and in fp32")
    s.add_argument("run_dir")
    s.add_argument("--python", help="python with torch (default: NANTRACE_PYTHON, ~/.cache/nantrace/venv)")
    s.add_argument("--rank", type=int, help="the rank whose captured module to replay, when several ranks saved one")
    s.set_defaults(fn=cmd_repro)
    s = sub.add_parser("merge", help="merge per-rank traces and reports (runs nantrace-merge)")
    s.add_argument("run_dir")
    s.add_argument("--merge-tool", help="path of nantrace-merge (default: the installed one)")
    s.set_defaults(fn=cmd_merge)
    s = sub.add_parser("lib", help="print the path of libnantrace.so (LD_PRELOAD=$(nantrace lib) python train.py)")
    s.set_defaults(fn=cmd_lib)
    a = p.parse_args(argv)
    if not getattr(a, "fn", None):
        p.print_usage(sys.stderr)
        die("a command is required: run, report, repro, merge or lib")
    return a.fn(a) or 0


def console_main():
    """Entry point of the installed `nantrace` script."""
    sys.exit(main(sys.argv[1:]))
