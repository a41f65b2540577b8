"""Replay the culprit module on its captured inputs (once per run).

Inputs are captured at the fault for CPU tensors (_modules), or at a later recurrence for CUDA
tensors (_capture); the replay runs on the device they are on.

1. Pin the op: run a deep copy of the module under the same autocast state, with a dispatch
   mode that checks every aten op (role REPLAY) and stops at the first non-finite output.
2. Verify the fix: run it again in fp32 (autocast off, inputs and parameters .float()), and in
   bf16 autocast when the run used fp16 autocast; report each as a "fix_check" note.
3. Save module + inputs + autocast state to <run_dir>/repro/origin_module.pt for `nantrace repro`.

A "replay_start" note opens the replay and the "replay" note closes it: the analysis takes the
checks between them as the replay's evidence, whatever step they come at.

The host's state never changes: the module is copied, inputs are cloned, the RNG is forked and
nothing here runs with gradients. On CUDA the replay reads results back, so it synchronizes the
device, once, after the fault.
"""
import contextlib
import copy
import os
import sys
import threading

import torch

from . import _binding as B
from . import _paths
from . import _runtime as R
from ._tensors import map_tensors, detached_clone, iter_tensors

_orig_save = None  # torch.save before our wrapper (set_original_save, from _training.install)


def set_original_save(fn):
    """The repro is saved with the host's own torch.save, not through our checkpoint wrapper."""
    global _orig_save
    _orig_save = fn


def autocast_state(device_type="cpu"):
    st = {"device_type": device_type, "enabled": False, "dtype": None}
    try:
        if torch.is_autocast_enabled(device_type):
            st.update(enabled=True, dtype=str(torch.get_autocast_dtype(device_type)).replace("torch.", ""))
    except Exception:  # noqa: BLE001 - older torch
        try:
            if device_type == "cpu" and torch.is_autocast_cpu_enabled():
                st.update(enabled=True, dtype=str(torch.get_autocast_cpu_dtype()).replace("torch.", ""))
            elif device_type == "cuda" and torch.is_autocast_enabled():
                st.update(enabled=True, dtype=str(torch.get_autocast_gpu_dtype()).replace("torch.", ""))
        except Exception:  # noqa: BLE001
            pass
    return st


# Hook dictionaries of a module: the copy keeps only the hooks that compute its weights.
_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
_GLOBAL_HOOK_DICTS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                      "_global_backward_pre_hooks", "_global_forward_hooks_always_called",
                      "_global_forward_hooks_with_kwargs")


def _weight_hook(h):
    """A hook that computes a weight from its parameters (torch.nn.utils.weight_norm's
    WeightNorm, spectral_norm's SpectralNorm): the module does not work without it."""
    name = type(h).__name__
    return name in ("WeightNorm", "SpectralNorm") and type(h).__module__.startswith("torch.nn.utils")


def pristine_copy(module):
    """A copy of the module to replay: its own parameters and buffers (the host's are never
    touched), none of the user's hooks (a replay must not run them), weight-computing hooks kept.
    Modules with weight_norm / spectral_norm hold their computed weight as a non-leaf tensor,
    which deepcopy refuses: the copy gets a detached clone of it instead (its hook recomputes it
    from the copied parameters at the next forward)."""
    memo = {}
    for m in module.modules():
        for v in vars(m).values():
            if isinstance(v, torch.Tensor) and not isinstance(v, torch.nn.Parameter) and not v.is_leaf:
                memo[id(v)] = v.detach().clone()
    dup = copy.deepcopy(module, memo)
    for m in dup.modules():
        for name in _HOOK_DICTS:
            d = getattr(m, name, None)
            if isinstance(d, dict):
                for k in [k for k, h in d.items() if not _weight_hook(h)]:
                    del d[k]
    return dup


@contextlib.contextmanager
def no_global_module_hooks(keep=()):
    """The user's global module hooks (register_module_forward_hook, ...) stay out of the replay:
    set aside for its duration and put back as they were, whatever happens inside. `keep`: hooks
    left registered (nantrace's own, which check a step replay); a hook's flags (always_call,
    with_kwargs) live in other dicts under the same key, and stay with it."""
    from torch.nn.modules import module as M
    dicts = [d for d in (getattr(M, n, None) for n in _GLOBAL_HOOK_DICTS) if isinstance(d, dict)]
    kept = {k for d in dicts for k, h in d.items() if callable(h) and h in keep}
    saved = []
    for d in dicts:
        saved.append((d, list(d.items())))
        for k in [k for k in d if k not in kept]:
            del d[k]
    try:
        yield
    finally:
        for d, items in saved:
            d.clear()
            d.update(items)


class _MutedInThisThread:
    """Stands in for sys.stdout / sys.stderr while a replay runs: what the replayed forward
    prints in this thread is dropped (the host's output must not change), what other threads
    write goes through as it would."""

    def __init__(self, real):
        self._real = real
        self._thread = threading.get_ident()

    def write(self, s):
        if threading.get_ident() == self._thread:
            return len(s)
        return self._real.write(s)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        if threading.get_ident() != self._thread:
            self._real.flush()

    def __getattr__(self, name):
        return getattr(self._real, name)


@contextlib.contextmanager
def silenced():
    """Nothing the replayed code prints reaches the host's stdout or stderr."""
    saved = sys.stdout, sys.stderr
    sys.stdout = _MutedInThisThread(saved[0]) if saved[0] is not None else None
    sys.stderr = _MutedInThisThread(saved[1]) if saved[1] is not None else None
    try:
        yield
    finally:
        # Put back only what we put there: a script that rebinds them meanwhile keeps its own.
        if isinstance(sys.stdout, _MutedInThisThread) and sys.stdout._real is saved[0]:
            sys.stdout = saved[0]
        if isinstance(sys.stderr, _MutedInThisThread) and sys.stderr._real is saved[1]:
            sys.stderr = saved[1]


def _dtype(name):
    return getattr(torch, name) if name else None


def run_module(module, args, kwargs, autocast, mode=None):
    """Run module(*args, **kwargs) on clones, without grad, RNG forked. Returns the output."""
    args = map_tensors(args, detached_clone)
    kwargs = map_tensors(kwargs or {}, detached_clone)
    device_type = autocast.get("device_type") or "cpu"
    devices = [torch.cuda.current_device()] if device_type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad(), no_global_module_hooks(), silenced():
        with torch.autocast(device_type, dtype=_dtype(autocast.get("dtype")) or torch.bfloat16,
                            enabled=bool(autocast.get("enabled"))):
            if mode is not None:
                with mode:
                    return module(*args, **kwargs)
            return module(*args, **kwargs)


def summarize(out):
    finite, max_abs = True, 0.0
    for _, t in iter_tensors(out, "output"):
        f = t.detach().float()
        fin = torch.isfinite(f)
        if not bool(fin.all()):
            finite = False
        vals = f[fin]
        if vals.numel():
            max_abs = max(max_abs, float(vals.abs().max()))
    return {"finite": finite, "max_abs": max_abs}


def to_fp32(obj):
    return map_tensors(obj, lambda t: t.float() if t.is_floating_point() else t)


def variants(autocast):
    """The fixes worth verifying for this run's precision."""
    dev = autocast.get("device_type") or "cpu"
    out = [("fp32", {"device_type": dev, "enabled": False, "dtype": None}, True)]
    if autocast.get("enabled") and autocast.get("dtype") == "float16":
        out.append(("bf16", {"device_type": dev, "enabled": True, "dtype": "bfloat16"}, False))
    return out


def device_type_of(args, kwargs):
    for obj in (args, kwargs or {}):
        for _, t in iter_tensors(obj, "x"):
            return t.device.type
    return "cpu"


def runs_compiled(module, stack=()):
    """Whether `module` ran under torch.compile: it is an OptimizedModule, was compiled in place
    (module.compile()), or is the model an OptimizedModule on the stack wraps."""
    if type(module).__name__ == "OptimizedModule" or getattr(module, "_compiled_call_impl", None) is not None:
        return True
    return any(type(f.module).__name__ == "OptimizedModule" and getattr(f.module, "_orig_mod", None) is module
               for f in stack)


def _track_scopes(copy, mode):
    """Hooks on our own copy (never the host's modules): the submodule running at each op, for
    ReplayMode to note where the first non-finite output was made."""
    def enter(name):
        def hook(mod, args):
            mode.scopes.append((name, type(mod).__name__))
        return hook

    def leave(mod, args, output):  # returns None: the output stays the module's
        if mode.scopes:
            mode.scopes.pop()

    handles = []
    for name, m in copy.named_modules():
        if name:
            handles.append(m.register_forward_pre_hook(enter(name)))
            handles.append(m.register_forward_hook(leave, always_call=True))
    return handles


def _child_path(path, qualname):
    return path + ("." if "/" in path else "/") + qualname


def replay_and_verify(module, args, kwargs, path, mtype, autocast=None, captured=None, compiled=False):
    """autocast: the autocast state the module ran under (default: the current one on the
    inputs' device). captured: {"step": N, "recurrence": True} when the inputs come from a
    recurrence after the first finding rather than from the fault itself."""
    from ._opcheck import ReplayMode, StopReplay
    api = R.api
    # A wrapper (torch.compile's OptimizedModule, DDP) is replayed as the model it wraps: eagerly,
    # without collectives. A compiled module (compiled=True: no hook ran inside it) is replayed
    # with its submodules tracked, to say in which one the first non-finite op output was made.
    compiled = compiled or runs_compiled(module)
    module = _paths.unwrap(module)
    with R.hooks_suspended():  # our own hooks stay out of the replay
        ac = autocast or autocast_state(device_type_of(args, kwargs))
        api.event(B.EVENT_REPLAY_BEGIN, "replay_start", R.dumps(dict({"module": path.decode("utf-8", "replace"),
                                                              "step": R.counter.step}, **(captured or {}))))
        try:
            pristine = pristine_copy(module)
        except Exception as e:  # noqa: BLE001 - e.g. modules that cannot be copied
            api.event(B.EVENT_REPLAY_END, "replay", R.dumps({"module": path.decode("utf-8", "replace"), "op": None}))
            api.event(B.EVENT_EVIDENCE_UNAVAILABLE, "replay",
                      R.dumps({"module": path.decode("utf-8", "replace"), "reason": "deepcopy failed: %s" % e}))
            return
        cap_args = map_tensors(args, detached_clone)
        cap_kwargs = map_tensors(kwargs or {}, detached_clone)
        # 1. pin the op
        mode = ReplayMode(path, mtype)
        target = pristine_copy(pristine)
        scopes = _track_scopes(target, mode) if compiled else []
        try:
            run_module(target, cap_args, cap_kwargs, ac, mode)
        except StopReplay:
            pass
        except Exception as e:  # noqa: BLE001
            api.event(B.EVENT_EVIDENCE_UNAVAILABLE, "replay", R.dumps({"module": path.decode("utf-8", "replace"),
                                                                        "reason": "the replay failed: %s" % str(e)[:200]}))
        finally:
            for h in scopes:
                h.remove()
        end = {"module": path.decode("utf-8", "replace"), "op": mode.found, "autocast": ac}
        if compiled and mode.found and mode.inner:
            end["inner"] = _child_path(path.decode("utf-8", "replace"), mode.inner[0])
            end["inner_type"] = mode.inner[1]
        api.event(B.EVENT_REPLAY_END, "replay", R.dumps(end))
        # 2. verify the fix
        for name, vac, fp32 in variants(ac):
            try:
                m = pristine_copy(pristine)
                a, k = cap_args, cap_kwargs
                if fp32:
                    m = m.float()
                    a, k = to_fp32(a), to_fp32(k)
                res = summarize(run_module(m, a, k, vac))
                res = {"variant": name, **res, "module": path.decode("utf-8", "replace")}
            except Exception as e:  # noqa: BLE001
                res = {"variant": name, "error": str(e)[:200]}
            api.event(B.EVENT_FIX_CHECK, "fix_check", R.dumps(res))
        # 3. save for `nantrace repro`
        _save_repro(pristine, cap_args, cap_kwargs, ac, path, mtype, (captured or {}).get("step"))


def _save_repro(module, args, kwargs, ac, path, mtype, step=None):
    api = R.api
    run_dir = api.run_dir()
    if not run_dir:
        return
    # Per process (origin_module.rank1.pt): ranks share the run directory.
    target = os.path.join(run_dir, "repro", api.run_file_name("origin_module", "pt"))
    try:
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        payload = {
            "module": module, "args": args, "kwargs": kwargs, "autocast": ac,
            "module_path": path.decode("utf-8", "replace"),
            "module_type": mtype.decode("utf-8", "replace"),
            "step": step if step is not None else R.counter.step,
            "script": os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else "",
            "torch": torch.__version__,
        }
        tmp = target + ".tmp"
        # O_EXCL + O_NOFOLLOW: never write through a link planted in the run directory.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        with os.fdopen(fd, "wb") as f:
            (_orig_save or torch.save)(payload, f)
        os.replace(tmp, target)
        side = os.path.join(os.path.dirname(target), api.run_file_name("origin_module", "json"))
        fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        meta = {k: v for k, v in payload.items() if k not in ("module", "args", "kwargs")}
        with os.fdopen(fd, "w") as f:
            f.write(R.dumps(meta))
        api.event(B.EVENT_REPRO_SAVED, target)
    except Exception as e:  # noqa: BLE001 - e.g. a class pickle cannot find
        try:
            os.unlink(target + ".tmp")
        except OSError:
            pass
        api.event(B.EVENT_EVIDENCE_UNAVAILABLE, "repro", R.dumps({"reason": str(e)[:200]}))
