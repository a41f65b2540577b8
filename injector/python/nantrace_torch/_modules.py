"""Global module hooks: module scopes, forward-output checks, gradients at module outputs,
batches entering the root model, evidence and replay on the first non-finite forward output."""
import json
import sys

import torch
from torch.nn.modules import module as nn_module

from . import _binding as B
from . import _guard
from . import _runtime as R
from ._paths import root_info
from ._tensors import iter_tensors, bname

_handles = []
_evidence_left = 4      # evidence checks for at most this many non-finite module outputs
_replayed = False
culprit = None          # id() of the module where op-level checking switched on
_op_mode = None         # OpCheckMode used inside the culprit
_is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", lambda: False)


class Frame:
    __slots__ = ("module", "path", "mtype", "pushed", "opmode", "root", "info")

    def __init__(self, module, path, mtype, root, info):
        self.module, self.path, self.mtype = module, path, mtype
        self.root, self.info = root, info
        self.pushed = False
        self.opmode = False


def _unwind_to(st, module):
    """Pop frames above `module`'s frame (left by forwards that raised). Returns its frame."""
    for i in range(len(st) - 1, -1, -1):
        if st[i].module is module:
            for stale in st[i + 1:]:
                _close(stale)
            frame = st[i]
            del st[i:]
            return frame
    return None


def _close(frame):
    if frame.opmode and _op_mode is not None:
        try:
            _op_mode.__exit__(None, None, None)
        except Exception:  # noqa: BLE001
            pass
        frame.opmode = False
    if frame.pushed:
        R.api.scope_pop()
        frame.pushed = False


def clear_stack():
    """Called where no forward can be in flight (backward(), optimizer step)."""
    st = R.stack()
    while st:
        _close(st.pop())


@_guard.guarded("module")
def _pre_hook(module, args, kwargs):
    if R.suspended() or _is_compiling() or not R.ensure_started():
        return None
    st = R.stack()
    if st and any(f.module is module for f in st):
        _unwind_to(st, module)  # re-entered after a forward that raised
    if not st:
        info = root_info(module)
        if torch.is_grad_enabled():
            R.activity()
        R.set_phase(B.PHASE_FORWARD)
        path, mtype = info.paths[id(module)]
        frame = Frame(module, path, mtype, module, info)
        if info.has_params:
            _check_batch(path, mtype, args, _caller_kwargs())
    else:
        parent = st[-1]
        e = parent.info.path_of(module, parent.root)
        if e is None:
            name = type(module).__name__
            e = (bname(parent.path.decode() + "/" + name), bname(name))
        frame = Frame(module, e[0], e[1], parent.root, parent.info)
    st.append(frame)
    if R.module_checks:
        R.api.scope_push(B.SCOPE_MODULE, frame.path, frame.mtype)
        frame.pushed = True
    if culprit is not None and id(module) == culprit and _op_mode is not None:
        _op_mode.__enter__()
        frame.opmode = True
    return None


def _caller_kwargs():
    """The keyword arguments of the root's forward call. Global pre-hooks are not given them, so
    read them from Module._call_impl's frame (two levels up: guard wrapper, _pre_hook_args)."""
    try:
        f = sys._getframe(3)
        for _ in range(3):
            if f is None:
                return None
            kw = f.f_locals.get("kwargs") if f.f_code.co_name in ("inner", "_call_impl") else None
            if isinstance(kw, dict):
                return kw
            f = f.f_back
    except Exception:  # noqa: BLE001
        pass
    return None


def _check_batch(path, mtype, args, kwargs):
    api = R.api
    bad = False
    for name, t in iter_tensors(args, "args"):
        bad |= api.check(B.PHASE_INPUT, B.ROLE_OUTPUT, path, mtype, None, bname(name), t) == B.NT_NONFINITE
    if kwargs:
        for name, t in iter_tensors(kwargs, "kwargs"):
            bad |= api.check(B.PHASE_INPUT, B.ROLE_OUTPUT, path, mtype, None, bname(name), t) == B.NT_NONFINITE
    if bad:
        R.switch_full_checks("non-finite input batch")


@_guard.guarded("module")
def _post_hook(module, args, kwargs, output):
    if R.suspended() or _is_compiling():
        return None
    st = R.stack()
    if not st:
        return None
    frame = _unwind_to(st, module)
    if frame is None:
        return None
    if frame.opmode:
        _op_mode.__exit__(None, None, None)
        frame.opmode = False
    try:
        if frame.pushed:
            _check_outputs(frame, module, args, kwargs, output)
    finally:
        if frame.pushed:
            R.api.scope_pop()
            frame.pushed = False
    return None


def _check_outputs(frame, module, args, kwargs, output):
    api = R.api
    path, mtype = frame.path, frame.mtype
    grad_on = torch.is_grad_enabled()
    recent = R.tls.__dict__.setdefault("recent", [])
    for name, t in iter_tensors(output, "output"):
        # A container returning its last child's tensor (nn.Sequential): already checked.
        ver = t._version
        if any(r is t and v == ver for r, v in recent):
            continue
        recent.append((t, ver))
        if len(recent) > 4:
            del recent[0]
        r = api.check(B.PHASE_FORWARD, B.ROLE_OUTPUT, path, mtype, None, bname(name), t)
        if r == B.NT_NONFINITE:
            _on_nonfinite_output(frame, module, args, kwargs)
        if grad_on and t.requires_grad:
            t.register_hook(_grad_hook(path, mtype, bname("grad_" + name)))


def _grad_hook(path, mtype, gname):
    @_guard.guarded("backward")
    def hook(grad):
        if grad is not None and not R.suspended():
            from ._tensors import eligible
            if eligible(grad):
                R.api.check(B.PHASE_BACKWARD, B.ROLE_OUTPUT, path, mtype, None, gname, grad)
        return None
    return hook


def _on_nonfinite_output(frame, module, args, kwargs):
    """Evidence for a non-finite forward output: the module's inputs and direct parameters;
    then, the first time and for CPU tensors, replay it to pin the op and verify the fix."""
    global _evidence_left, _replayed, culprit, _op_mode
    if _evidence_left <= 0:
        return
    _evidence_left -= 1
    api = R.api
    path, mtype = frame.path, frame.mtype
    inputs_bad = False
    on_cpu = True
    for prefix, obj in (("args", args), ("kwargs", kwargs or {})):
        for name, t in iter_tensors(obj, prefix):
            on_cpu &= t.device.type == "cpu"
            inputs_bad |= api.check(B.PHASE_FORWARD, B.ROLE_INPUT, path, mtype, None, bname(name), t) == B.NT_NONFINITE
    from ._tensors import eligible
    for pname, p in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
        if eligible(p):
            on_cpu &= p.device.type == "cpu"
            inputs_bad |= api.check(B.PHASE_FORWARD, B.ROLE_PARAM, path, mtype, None, bname(pname), p) == B.NT_NONFINITE
    if inputs_bad:
        return  # propagated here; the origin is earlier
    if culprit is None and R.check_level == 1:
        from ._opcheck import OpCheckMode
        _op_mode = OpCheckMode()
        culprit = id(module)
        api.event(B.EVENT_CHECK_MODE, path.decode("utf-8", "replace"),
                  json.dumps({"module": path.decode("utf-8", "replace"), "level": "op",
                              "step": R.counter.step}))
    if not _replayed and on_cpu:
        _replayed = True
        from . import _replay
        _replay.replay_and_verify(module, args, kwargs, path, mtype)


def install():
    # torch warns about global hooks on every torch.compile(module) call; the hooks are ours, not
    # the user's, so that warning (and only it) is silenced to keep the host's stderr unchanged.
    import warnings
    warnings.filterwarnings("ignore", message=r"Using `torch\.compile\(module\)` when there are global hooks")
    # Global forward pre-hooks receive (module, args) only; the forward hook gets kwargs too.
    _handles.append(nn_module.register_module_forward_pre_hook(_pre_hook_args))
    # always_call: the hook also runs when forward raises, so the module stack stays balanced.
    # On that path torch calls it as hook(module, args, None) whatever with_kwargs says.
    try:
        _handles.append(nn_module.register_module_forward_hook(
            _post_hook_any, with_kwargs=True, always_call=True))
    except TypeError:  # older torch: no always_call / with_kwargs on global hooks
        _handles.append(nn_module.register_module_forward_hook(_post_hook_nokw))


def uninstall():
    for h in _handles:
        h.remove()
    _handles.clear()


def _pre_hook_args(module, args):
    _pre_hook(module, args, None)
    return None


def _post_hook_any(module, args, *rest):
    if len(rest) == 2:
        _post_hook(module, args, rest[0], rest[1])
    else:  # forward raised: only unwind
        _unwind_after_error(module)
    return None


@_guard.guarded("module")
def _unwind_after_error(module):
    st = R.stack()
    frame = _unwind_to(st, module) if st else None
    if frame is not None:
        _close(frame)


def _post_hook_nokw(module, args, output):
    _post_hook(module, args, None, output)
    return None


def reset_for_tests():
    global _evidence_left, _replayed, culprit, _op_mode
    _evidence_left, _replayed, culprit, _op_mode = 4, False, None, None
