"""`nantrace repro RUN_DIR`: replay the captured culprit module as it ran, and in fp32.

    python -m nantrace_torch.repro RUN_DIR/repro/origin_module.pt

Classes defined in the training script's __main__ are found by executing only the script's
imports and definitions (never its training loop) in a module named __main__.
"""
import ast
import os
import sys
import types


def _load_main_definitions(script):
    """Execute the imports, classes, functions and constant assignments of `script` as __main__."""
    with open(script, encoding="utf-8") as f:
        tree = ast.parse(f.read(), script)
    keep = (ast.Import, ast.ImportFrom, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    body = [n for n in tree.body if isinstance(n, keep) or
            (isinstance(n, (ast.Assign, ast.AnnAssign)) and isinstance(getattr(n, "value", None), ast.Constant))]
    mod = types.ModuleType("__main__")
    mod.__file__ = script
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    exec(compile(ast.Module(body=body, type_ignores=[]), script, "exec"), mod.__dict__)  # noqa: S102
    sys.modules["__main__"] = mod


def _load(path):
    """The saved blob, and the device it replays on: where it was captured when that device is
    here, else the CPU."""
    import json
    import torch
    meta = {}
    try:
        with open(os.path.splitext(path)[0] + ".json", encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        pass
    script = meta.get("script") if isinstance(meta, dict) else None
    captured_on = ((meta.get("autocast") or {}).get("device_type") if isinstance(meta, dict) else None) or "cpu"
    device = captured_on if captured_on == "cpu" or (captured_on == "cuda" and torch.cuda.is_available()) else "cpu"
    map_location = None if device == captured_on else "cpu"
    if script:  # modules imported by the training script sit next to it
        sys.path.insert(0, os.path.dirname(script))
    try:
        return torch.load(path, weights_only=False, map_location=map_location), captured_on, device
    except AttributeError as e:  # a class defined in the script's __main__
        if not script or not os.path.isfile(script):
            raise SystemExit("nantrace: cannot rebuild the module (%s); its class was defined in "
                             "a script that is not available (%s)" % (e, script or "unknown"))
    _load_main_definitions(script)
    return torch.load(path, weights_only=False, map_location=map_location), captured_on, device


def main(argv):
    if len(argv) != 1:
        sys.stderr.write("usage: python -m nantrace_torch.repro RUN_DIR/repro/origin_module.pt\n")
        return 2
    from ._replay import run_module, summarize, to_fp32, variants
    import copy
    blob, captured_on, device = _load(argv[0])
    module, args, kwargs, ac = blob["module"], blob["args"], blob["kwargs"], blob["autocast"]
    print("module: %s (%s), captured at step %s" % (blob.get("module_path"), blob.get("module_type"), blob.get("step")))
    if device != captured_on:
        ac = dict(ac, device_type=device)
        print("captured on %s, which this machine lacks: replaying on %s (autocast there may round "
              "differently)" % (captured_on, device))
    res = summarize(run_module(copy.deepcopy(module), args, kwargs, ac))
    print("as captured (autocast %s): finite=%s max_abs=%.6g" % (
        ac.get("dtype") if ac.get("enabled") else "off", res["finite"], res["max_abs"]))
    for name, vac, fp32 in variants(ac):
        m, a, k = copy.deepcopy(module), args, kwargs
        if fp32:
            m, a, k = m.float(), to_fp32(args), to_fp32(kwargs)
        r = summarize(run_module(m, a, k, vac))
        print("%s: finite=%s max_abs=%.6g" % (name, r["finite"], r["max_abs"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
