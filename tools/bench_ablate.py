#!/usr/bin/env python3
"""Where nantrace's overhead goes, by switching parts of the Python hooks off: copies the built
library (build/lib) to a temporary folder, turns the named hook functions of that copy into
`return None`, and runs tools/bench_overhead.py (paired mode) on the copy, one variant after the
other. The checkout and build/ are never modified. A diagnosis tool (issue 17), not a mode of the
product: a variant with parts off misses faults.

    python tools/bench_ablate.py --workload transformer --rounds 150
    python tools/bench_ablate.py --variants base,no_module_hooks

Variants (each also prints the in-situ line of bench_overhead.py):
  base                     the library as built
  no_module_hooks          the global module pre/post hooks return at once (torch still calls them)
  no_optimizer             the optimizer step's pre/post wrappers return at once
  no_module_hooks_no_step  both, and the backward entry's begin/end as well
  no_global_hooks          no global module hook registered at all (torch's fast module call)
  no_global_hooks_no_step  that, and the optimizer and backward wrappers off
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# file -> functions whose body becomes `return None` (their first line is `def name(...):`).
_MODULE_HOOKS = {"_modules.py": ["_pre_hook_args(module, args)", "_post_hook_any(module, args, *rest)"]}
_OPTIMIZER = {"_training.py": ["_opt_pre(opt, args, kwargs)", "_opt_post(opt, args, kwargs)"]}
_STEP = {"_training.py": ["_opt_pre(opt, args, kwargs)", "_opt_post(opt, args, kwargs)",
                          "_backward_begins(outputs)", "_backward_ends(state)"]}
_NO_GLOBAL_HOOKS = {"_modules.py": ["install()"]}
VARIANTS = {
    "base": {},
    "no_global_hooks": _NO_GLOBAL_HOOKS,
    "no_global_hooks_no_step": dict(_NO_GLOBAL_HOOKS, **_STEP),
    "no_module_hooks": _MODULE_HOOKS,
    "no_optimizer": _OPTIMIZER,
    "no_module_hooks_no_step": dict(_MODULE_HOOKS, **_STEP),
}


def stub_out(pkg, edits):
    for fname, sigs in edits.items():
        path = os.path.join(pkg, fname)
        with open(path) as f:
            src = f.read()
        for sig in sigs:
            line = "def %s:\n" % sig
            if line not in src:
                raise SystemExit("bench_ablate: %s has no `def %s:` (the hook was renamed?)" % (fname, sig))
            src = src.replace(line, line + "    return None  # bench_ablate\n", 1)
        with open(path, "w") as f:
            f.write(src)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", default="transformer", choices=["demo", "transformer", "mlp"])
    p.add_argument("--rounds", type=int, default=150)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--lib-dir", default=os.path.join(REPO, "build", "lib"))
    a = p.parse_args(argv)
    names = [v for v in a.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        print("bench_ablate: unknown variant %s; accepted: %s" % (", ".join(unknown), ", ".join(VARIANTS)),
              file=sys.stderr)
        return 2
    if not os.path.exists(os.path.join(a.lib_dir, "libnantrace.so")):
        print("bench_ablate: no libnantrace.so in %s (build first)" % a.lib_dir, file=sys.stderr)
        return 2
    for name in names:
        tmp = tempfile.mkdtemp(prefix="nantrace_ablate_")
        try:
            lib = os.path.join(tmp, "lib")
            shutil.copytree(a.lib_dir, lib, symlinks=True)
            stub_out(os.path.join(lib, "python", "nantrace_torch"), VARIANTS[name])
            out = subprocess.run([sys.executable, os.path.join(HERE, "bench_overhead.py"), "--workload", a.workload,
                                  "--rounds", str(a.rounds), "--lib", os.path.join(lib, "libnantrace.so")],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                                 check=False).stdout
            lines = [ln for ln in out.splitlines() if ln.startswith("nantrace ") or ln.startswith("in situ")]
            print("== %s" % name)
            print("\n".join(lines) if lines else out[-2000:])
            sys.stdout.flush()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
