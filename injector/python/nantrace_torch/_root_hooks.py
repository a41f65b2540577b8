"""Steps whose module checks are sampled out (NANTRACE_EVERY=N) run without nantrace's global
module hooks: torch then calls every module the fast way, as without nantrace.

While a global module hook exists, torch runs every module call through its slow path, and our
hooks cost a call each way even when they check nothing: on a 10 ms transformer step that was
about 4 of the 7.6 points a sampled-out step still cost (docs/benchmarks.md). So on a sampled-
out step our global hooks are set aside (taken out of torch's hook dicts, keys kept) and each
root model seen so far gets a forward pre-hook and forward hook of its own instead: the root's
forward is still seen (step, phase, batch check, capture for the step replay), its submodules
run untouched. When module checks come back (a checked step, a fault switching full checks on,
even in the middle of a root's forward), the global hooks are put back where they were in their
dicts and the roots' own hooks are removed.

What stays as it was:
- a model pickled or deep-copied while it holds our root hooks: the hook pickles as
  `functools.partial(sys.audit, "nantrace.inert_hook")`, a no-op any Python can load, and a deep
  copy shares the live hook (a copy is a root like any other);
- torch.compile: dynamo guards on module hooks, so once anything is compiled (torch.compile,
  Module.compile, or one of our hooks seen while tracing) the global hooks stay, for good;
- a failure here puts the global hooks back, for good, and is logged once.
"""
import functools
import sys

from torch.nn.modules import module as nn_module

from . import _guard
from . import _paths

_HOOK_DICTS = ("_global_forward_pre_hooks", "_global_forward_hooks", "_global_forward_hooks_always_called",
               "_global_forward_hooks_with_kwargs", "_global_backward_hooks", "_global_backward_pre_hooks")

_hooks = {}          # set by _modules.install: "pre", "post", "ours", "transparent"
_aside = []          # (dict, key, value) of our global entries while set aside
_root_handles = []   # RemovableHandle of the roots' own hooks while set aside
_never = [False]     # toggling is off for good (compilation seen, or a failure)


class RootHook:
    """A root's own hook while the global ones are set aside: calls ours, pickles as a no-op."""
    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args):
        if not _aside:
            return None  # the global hooks are back (a stale copy's hook): they do the work
        return self.fn(*args)

    def __reduce__(self):
        return functools.partial, (sys.audit, "nantrace.inert_hook")

    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self


def set_aside():
    return bool(_aside)


def configure(pre, post, ours, transparent):
    """From _modules.install: its global pre and post hooks (what a root's own hooks call), all
    of its global hooks (what is set aside), and its test for torch.compile's own modules."""
    _hooks.update(pre=pre, post=post, ours=tuple(ours), transparent=transparent)


def on_module_checks(on):
    """R.on_module_checks: module checks on (hooks back) or sampled out (hooks aside)."""
    sample_out(not on)


def _compiled(root):
    return getattr(root, "_compiled_call_impl", None) is not None or type(root).__name__ == "OptimizedModule"


def sample_out(off):
    """off: this step's module checks are sampled out (hooks aside) or not (hooks back)."""
    if _never[0] or not _hooks:
        return
    try:
        if off and not _aside:
            _set_aside()
        elif not off and _aside:
            _put_back()
    except Exception as e:  # noqa: BLE001 - never into the host's training
        never()
        _guard.disable("root_hooks", e)


def never():
    """Global hooks from now on, whatever the sampling (compilation, a failure)."""
    _never[0] = True
    try:
        _put_back()
    except Exception:  # noqa: BLE001
        pass


def _set_aside():
    roots = [r for r in list(_paths._roots.keys()) if not _hooks["transparent"](r)]
    if not roots or any(_compiled(r) for r in roots):
        return
    pre, post = RootHook(_hooks["pre"]), RootHook(_hooks["post"])
    ours = _hooks["ours"]
    dicts = [d for d in (getattr(nn_module, n, None) for n in _HOOK_DICTS) if isinstance(d, dict)]
    keys = {k for d in dicts for k, h in d.items() if callable(h) and h in ours}
    if not keys:
        return
    for d in dicts:  # the hooks and their flags (always_call, with_kwargs), under the same keys
        for k in keys & d.keys():
            _aside.append((d, k, d.pop(k)))
    for r in roots:
        _root_handles.append(r.register_forward_pre_hook(pre))
        _root_handles.append(r.register_forward_hook(post, with_kwargs=True, always_call=True))


def _put_back():
    while _root_handles:
        _root_handles.pop().remove()
    touched = []
    while _aside:
        d, k, v = _aside.pop()
        d[k] = v
        if not any(d is t for t in touched):
            touched.append(d)
    for d in touched:
        # Keys are handle ids, which count up: sorting puts ours back where they were among
        # the script's own global hooks.
        items = sorted(d.items(), key=lambda kv: kv[0])
        d.clear()
        d.update(items)


def reset():
    """Uninstall / suspend: the global hooks are removed by their handles; forget our state."""
    _put_back()


def reset_for_tests():
    _put_back()
    _never[0] = False
