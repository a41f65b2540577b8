"""Loss (.backward), optimizer steps, GradScaler, torch.save / torch.load."""
import math
import os
import sys
import weakref

import torch

from . import _backward_origin
from . import _binding as B
from . import _checkpoints
from . import _data
from . import _guard
from . import _investigation
from . import _modules
from . import _paths
from . import _replay
from . import _root_hooks
from . import _runtime as R
from . import _step_replay
from . import _trainers
from . import _update_ratio
from ._tensors import Pending, Readback, ReadbackQueue, eligible, bname, foreach_norms

_restore = []           # (owner, attribute, original) to undo on uninstall
_handles = []
_opt_labels = {}        # id(optimizer) -> label bytes
_post_count = {}        # id(optimizer) -> number of completed steps seen by the post hook
_skipped_since_update = set()  # id(scaler) that skipped an optimizer since its last update
_pending_scales = ReadbackQueue(8)  # Pending((step, found_inf), Readback of (before, after)), CUDA scalers
_LOSS = b"loss"


def _original(owner, name):
    """What owner.name was before our patch (torch's own function)."""
    for o, n, orig in _restore:
        if o is owner and n == name:
            return orig
    return getattr(owner, name)


def _patch(owner, name, new):
    orig = getattr(owner, name)
    _restore.append((owner, name, orig))
    setattr(owner, name, new)
    return orig


# ---- loss ------------------------------------------------------------------------------
@_guard.guarded("loss")
def _on_loss(tensors):
    if R.suspended() or not R.ensure_started():
        return
    _modules.clear_stack()
    _backward_origin.begin_backward(tensors)
    R.activity()
    api = R.api
    for t in tensors:
        if not isinstance(t, torch.Tensor):
            continue
        t = getattr(t, "_nantrace_unscaled", t)  # GradScaler.scale(loss): check the real loss
        if not eligible(t):
            continue
        had_origin = bool(api.origin_found())
        modules_checked = R.module_checks  # this step's module outputs were checked (not sampled out)
        r = api.check(B.PHASE_LOSS, B.ROLE_OUTPUT, None, None, None, _LOSS, t)
        if r == B.NT_NONFINITE:
            R.switch_full_checks("non-finite loss")
            if not had_origin and not modules_checked and api.origin_found():
                # Module outputs were sampled out on this step: re-run its forward at once,
                # every module output checked (the weights have not moved yet).
                modules_checked = _step_replay.replay(_modules.our_hooks()) and _loss_is_origin()
            if not had_origin and modules_checked and api.origin_found():
                # The loss is the first non-finite value: the code between the model and the
                # loss made it. Its op is read from the autograd graph, nothing re-run.
                _investigation.pin_in_graph(t, None, None, B.PHASE_LOSS)
        if t.device.type == "cpu" and t.numel() == 1:
            with R.hooks_suspended():
                api.scalar("loss", float(t.detach()))


def _loss_is_origin():
    """After a step replay: the analysis holds the loss as the origin, located (every module
    output of the re-run was finite)."""
    import json
    try:
        f = json.loads(R.api.finding_json())
    except ValueError:
        return False
    return isinstance(f, dict) and f.get("kind") != "not_located" and f.get("phase") == "loss"


def _loss_entry(orig):
    """A wrapper of an autograd entry point whose first argument is the loss or a sequence of
    them: Tensor.backward (self), torch.autograd.backward (tensors), torch.autograd.grad
    (outputs, as manual SGD and meta-learning loops differentiate them). Checked as the loss
    unless called inside a backward."""
    entry = _SHIM["make"](orig, _backward_begins, _backward_ends)
    entry.__doc__ = orig.__doc__
    return entry


# The one frame nantrace puts between the user's call and torch's entry point. Its code is
# compiled under a file name that the warnings module treats as internal ("importlib" and
# "_bootstrap" in it, as CPython's own import frames), so a warning torch raises there with
# stacklevel=2 (torch.autograd.grad's only_inputs, backward's grad_variables) still points at
# the user's line, not at nantrace (test: integration.host_untouched).
_SHIM_SOURCE = """
def make(orig, begin, end):
    def entry(outputs, *args, **kwargs):
        state = begin(outputs)
        try:
            return orig(outputs, *args, **kwargs)
        finally:
            end(state)
    return entry
"""
_SHIM = {}
exec(compile(_SHIM_SOURCE, "<nantrace loss entry (importlib._bootstrap-like: skipped by warnings)>", "exec"), _SHIM)


def _backward_begins(outputs):
    tls = R.tls
    top = not getattr(tls, "in_backward", False)
    if top:
        _on_loss(outputs if isinstance(outputs, (tuple, list)) else (outputs,))
    state = (top, getattr(tls, "in_backward", False), R.phase())
    tls.in_backward = True
    tls.phase = B.PHASE_BACKWARD
    return state


def _backward_ends(state):
    top, prev_in, prev_phase = state
    tls = R.tls
    tls.in_backward = prev_in
    tls.phase = prev_phase
    if top:
        _backward_returned()


@_guard.guarded("loss")
def _backward_returned():
    _backward_origin.release()
    R.step_work_done()
    if not R.suspended():
        R.backward_done()


# ---- optimizer -------------------------------------------------------------------------
def _label(opt):
    lab = _opt_labels.get(id(opt))
    if lab is None:
        lab = _opt_labels[id(opt)] = bname("%s#%d" % (type(opt).__name__, len(_opt_labels)))
    return lab


def _lr(opt):
    try:
        lr = opt.param_groups[0].get("lr")
        return float(lr) if lr is not None else None
    except Exception:  # noqa: BLE001
        return None


def _params(opt):
    for gi, group in enumerate(opt.param_groups):
        for pi, p in enumerate(group.get("params", ())):
            if isinstance(p, torch.Tensor):
                yield gi, pi, p


def _param_site(p, gi, pi):
    e = _paths.param_name(p)
    if e is not None:
        return e[1], e[2], e[3]
    return bname("param_groups[%d][%d]" % (gi, pi)), None, None


def _check_grads(opt, phase):
    """Check the gradients an optimizer is about to use. Returns (any non-finite, global norm
    of CPU gradients or None, the gradients)."""
    tensors = []
    sites = []
    for gi, pi, p in _params(opt):
        g = p.grad
        if g is not None:
            tensors.append(g)
            sites.append((p, gi, pi))
    return _check_all(tensors, sites, phase, want_norm=True) + (tensors,)


def _check_params(opt):
    tensors = []
    sites = []
    for gi, pi, p in _params(opt):
        tensors.append(p)
        sites.append((p, gi, pi))
    return _check_all(tensors, sites, B.PHASE_OPTIMIZER_PARAM, want_norm=False)[0]


def _check_all(tensors, sites, phase, want_norm):
    """Whether any of the optimizer's tensors holds NaN/Inf, and (want_norm) their global norm.

    CPU tensors, with the extension: one library call reads them all, nothing recorded
    (norm_many for gradients: one pass that sums the squares in double, whose finiteness is the
    tensors'; scan_many for parameters). Otherwise one fused norm (a NaN or Inf anywhere makes it
    non-finite). When all are finite, the per-tensor checks (one library call each, the bulk of
    an optimizer step's cost) are skipped: finite optimizer-phase checks carry nothing the
    analysis uses. Otherwise, or for CUDA tensors, the per-tensor path runs in parameter order,
    so the first bad tensor is still the one named."""
    api = R.api
    norm = None
    if not tensors:
        return False, None
    scanned = api.norm_many(tensors) if want_norm else api.scan_many(tensors)
    if scanned is not None and scanned[0] == 0:
        return False, (math.sqrt(scanned[2]) if want_norm and math.isfinite(scanned[2]) else None)
    if scanned is None:
        kept = [i for i, t in enumerate(tensors) if eligible(t)]
        if len(kept) != len(tensors):
            tensors, sites = [tensors[i] for i in kept], [sites[i] for i in kept]
        norm = _fused_norm(tensors)
        if norm is not None and math.isfinite(norm):
            return False, norm
    elif want_norm:
        norm = float("nan")
    if (scanned is not None or norm is not None) and api.origin_found():
        # After the fault, weights and gradients full of NaN say nothing new: the scan (or the
        # fused norm) still says the step is non-finite, the per-tensor checks are spared.
        return True, norm
    bad = False
    for t, (p, gi, pi) in zip(tensors, sites):
        name, path, mtype = _param_site(p, gi, pi)
        bad |= api.check(phase, B.ROLE_OUTPUT, path, mtype, None, name, t) == B.NT_NONFINITE
    return bad, norm


_foreach_norm = getattr(torch, "_foreach_norm", None)


def _fused_norm(tensors):
    """Global L2 norm of CPU tensors, accumulated in fp32 (fp64 if any is), in two fused calls; None for CUDA
    tensors (reading it would synchronize the device) or when torch lacks the fused op.
    A finite tensor can only give a non-finite norm when its squares overflow fp32
    (|x| > 1e19): that costs the per-tensor checks, never a missed fault."""
    if not tensors or _foreach_norm is None or not all(t.is_cpu for t in tensors):
        return None
    with R.hooks_suspended():  # op-level checking stays out of our own ops
        try:
            with torch.no_grad():
                return float(_global_norm(tensors))
        except RuntimeError:  # an odd mix of tensors: the per-tensor checks still run
            return None


def _global_norm(tensors):
    """0-d tensor: the L2 norm of all `tensors` (one device), accumulated in fp32, or fp64 when
    any of them is fp64."""
    acc = torch.float64 if any(t.dtype is torch.float64 for t in tensors) else torch.float32
    return torch.linalg.vector_norm(torch.stack(foreach_norms(tensors, acc)))


_pending_norms = ReadbackQueue(4)  # Pending(step, Readback) of device gradient norms


@_guard.guarded("grad_norm")
def _device_grad_norm(grads):
    """CUDA gradients: the global norm is computed on the device and copied to pinned memory
    behind an event; it is read at a later optimizer step once the event has completed (never
    waited for) and recorded at the step it belongs to. At most 4 wait."""
    _flush_device_norms()
    if _pending_norms.full() or _foreach_norm is None or not all(g.is_cuda for g in grads):
        return
    with R.hooks_suspended():
        with torch.no_grad():
            back = Readback(_global_norm(grads))
    _pending_norms.push(Pending(R.counter.step, back))


def _flush_device_norms():
    while True:
        p = _pending_norms.pop_ready()
        if p is None:
            return
        R.api.scalar_at("grad_norm", p.meta, float(p.back.value()))


_closure_steps = set()  # id(opt) of the steps in flight that run a closure


def _closure_of(opt, args, kwargs):
    """The closure given to opt.step (the hook's args start with the optimizer itself)."""
    rest = args[1:] if args and args[0] is opt else args
    c = rest[0] if rest else (kwargs or {}).get("closure")
    return c if callable(c) else None


@_guard.guarded("optimizer")
def _opt_pre(opt, args, kwargs):
    if R.suspended() or not R.ensure_started():
        return None
    _modules.clear_stack()
    _backward_origin.release()
    if _closure_of(opt, args, kwargs) is not None:
        # optimizer.step(closure) (LBFGS, Lightning's automatic optimization): the closure's
        # forward and backward run inside this call and belong to the step being taken; its
        # gradients exist only once the closure ran, so they are checked after the step.
        _closure_steps.add(id(opt))
        R.optimizer_stepping(id(opt))
        _update_ratio.before_step(opt)
        return None
    R.optimizer_stepped(id(opt))
    _before_update(opt)
    _update_ratio.before_step(opt)
    return None


# Sampled optimizer-side reads (issue 17; docs/architecture.md, "What is sampled"): a
# GradScaler's step has already checked every gradient (the optimizer steps only when it found
# no Inf/NaN), so then only the gradient norm is read, every _NORM_EVERY-th step; parameters
# get their full scan every _NORM_EVERY-th step and at once when the update-ratio sample of the
# step shows anything unusual, every step when they are half precision.
_NORM_EVERY = 4


def _sampled_step():
    step = R.counter.step
    if R.every > 1:
        # NANTRACE_EVERY=N: these reads come with the module checks, every Nth step (a NaN
        # written into the weights meanwhile reaches the loss, whose step replay names it).
        return step <= 1 or R.module_checks
    return step <= 1 or step % _NORM_EVERY == 0


def _before_update(opt):
    """The gradients an optimizer is about to use (or used), checked, with the lr and norm."""
    api = R.api
    had_origin, modules_checked = bool(api.origin_found()), R.module_checks
    if getattr(R.tls, "scaler_checked", False) and not _sampled_step():
        bad, gn, grads = False, None, ()  # GradScaler found them finite; no norm this step
    else:
        bad, gn, grads = _check_grads(opt, B.PHASE_OPTIMIZER_GRAD)
    if bad:
        R.switch_full_checks("non-finite gradient before an optimizer step")
        if not had_origin and not modules_checked and api.origin_found():
            # Born in this sampled-out step's backward (its loss was finite): re-run the step's
            # forward and backward at once, every gradient checked (the weights have not moved).
            _step_replay.replay_backward(_modules.our_hooks(), _original(torch.autograd, "backward"),
                                         [p for _, _, p in _params(opt)])
    lr = _lr(opt)
    if lr is not None:
        api.scalar("lr", lr)
    if gn is not None:
        api.scalar("grad_norm", gn)
    elif grads:
        _device_grad_norm(grads)
    R.set_phase(B.PHASE_OPTIMIZER_PARAM)


@_guard.guarded("optimizer")
def _opt_post(opt, args, kwargs):
    R.set_phase(B.PHASE_FORWARD)
    R.step_work_done()
    _post_count[id(opt)] = _post_count.get(id(opt), 0) + 1
    closure_step = id(opt) in _closure_steps
    _closure_steps.discard(id(opt))
    if R.suspended() or not R.ensure_started():
        return None
    if closure_step:
        _modules.clear_stack()
        _before_update(opt)
        R.set_phase(B.PHASE_FORWARD)
        R.optimizer_step_done(id(opt))
    api = R.api
    unusual = _update_ratio.after_step(opt)
    if (unusual is not False or _sampled_step()) and _check_params(opt):
        R.switch_full_checks("non-finite parameter after an optimizer step")
    lr = _lr(opt)
    # Written out: json.dumps on every step cost more than the event (a rate that is not a finite
    # number goes through dumps, which writes it as a string).
    detail = ('{"lr": %r, "skipped": false}' % lr) if lr is not None and math.isfinite(lr) else \
        R.dumps({"lr": lr, "skipped": False})
    api.event(B.EVENT_OPTIMIZER_STEP, _label(opt), detail)
    return None


def _wrap_optimizer_init(orig_init):
    def __init__(self, *args, **kwargs):
        orig_init(self, *args, **kwargs)
        _on_optimizer_created(self)
    __init__.__doc__ = orig_init.__doc__
    return __init__


@_guard.guarded("optimizer")
def _on_optimizer_created(opt):
    key = id(opt)
    R.counter.add_optimizer(key)
    weakref.finalize(opt, _forget_optimizer, key)


def _forget_optimizer(key):
    try:
        R.counter.remove_optimizer(key)
        _post_count.pop(key, None)
        _opt_labels.pop(key, None)
    except Exception:  # noqa: BLE001
        pass


# ---- GradScaler ------------------------------------------------------------------------
def _wrap_scaler_scale(orig):
    def scale(self, outputs):
        out = orig(self, outputs)
        if isinstance(outputs, torch.Tensor) and out is not outputs and _guard.enabled("scaler"):
            try:
                out._nantrace_unscaled = outputs
            except Exception:  # noqa: BLE001
                pass
        return out
    return scale


def _wrap_scaler_step(orig):
    def step(self, optimizer, *args, **kwargs):
        before = _post_count.get(id(optimizer), 0)
        # The optimizer steps inside only when the scaler found every gradient finite: its
        # hooks need not read them again (_before_update).
        tls = R.tls
        prev = tls.scaler_checked
        tls.scaler_checked = bool(getattr(self, "_enabled", True))
        try:
            out = orig(self, optimizer, *args, **kwargs)
        finally:
            tls.scaler_checked = prev
        _after_scaler_step(self, optimizer, before)
        return out
    return step


@_guard.guarded("scaler")
def _after_scaler_step(scaler, opt, before):
    if not _guard.enabled("optimizer"):
        return  # without the post hook we cannot tell a skip from a step
    if not getattr(scaler, "_enabled", True) or _post_count.get(id(opt), 0) != before:
        return  # the optimizer stepped (our post hook saw it)
    if R.suspended() or not R.ensure_started():
        return
    R.optimizer_stepped(id(opt))
    _check_grads(opt, B.PHASE_UNSCALE)  # evidence: the inf GradScaler found
    _skipped_since_update.add(id(scaler))
    R.api.event(B.EVENT_OPTIMIZER_STEP, _label(opt),
                R.dumps({"lr": _lr(opt), "skipped": True, "via": "GradScaler"}))


def _wrap_scaler_update(orig):
    def update(self, *args, **kwargs):
        before = _scale_before(self)
        out = orig(self, *args, **kwargs)
        _after_update(self, before)
        return out
    return update


@_guard.guarded("scaler")
def _scale_before(scaler):
    s = getattr(scaler, "_scale", None)
    if s is None or not getattr(scaler, "_enabled", True) or R.suspended():
        return None
    if s.device.type == "cpu":
        return float(s)
    return s.detach().clone()  # device copy, no sync; read later


@_guard.guarded("scaler")
def _after_update(scaler, before):
    if R.suspended() or not R.ensure_started():
        return
    found = id(scaler) in _skipped_since_update
    _skipped_since_update.discard(id(scaler))
    s = getattr(scaler, "_scale", None)
    api = R.api
    if before is not None and s is not None:
        if isinstance(before, float):
            _emit_scale(R.counter.step, before, float(s), found)
        else:
            _flush_pending_scales()
            pair = torch.stack([before.reshape(()), s.detach().reshape(()).to(before.dtype)])
            _pending_scales.push(Pending((R.counter.step, found), Readback(pair)))
    R.counter.iteration_end()
    _ = api


def _flush_pending_scales():
    """CUDA: emit earlier updates' values, in order, once their copies have landed (never
    synchronizes; an update whose copy is late waits in the queue instead of being lost)."""
    while True:
        p = _pending_scales.pop_ready()
        if p is None:
            return
        step, found = p.meta
        pair = p.back.value()
        _emit_scale(step, float(pair[0]), float(pair[1]), found)


def _emit_scale(step, before, after, found):
    api = R.api
    api.event(B.EVENT_SCALER_UPDATE, "GradScaler",
              R.dumps({"scale_before": before, "scale_after": after, "found_inf": found, "step": step}))
    api.scalar("loss_scale", before)


# ---- torch.save --------------------------------------------------------------------------
def _wrap_save(orig):
    def save(obj, f, *args, **kwargs):
        out = orig(obj, f, *args, **kwargs)
        _after_save(obj, f)
        return out
    save.__doc__ = orig.__doc__
    save.__wrapped__ = orig
    return save


def _wrap_load(orig):
    def load(f, *args, **kwargs):
        out = orig(f, *args, **kwargs)
        _after_load(f)
        return out
    load.__doc__ = orig.__doc__
    load.__wrapped__ = orig
    return load


@_guard.guarded("save")
def _after_save(obj, f):
    """A file written by torch.save (a buffer without a name is not a checkpoint on disk)."""
    if not R._started or R.suspended():
        return
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
    else:
        path = getattr(f, "name", None)
        if not isinstance(path, str):
            return
    path = os.path.abspath(path)
    t = _trainers.trainer_of(sys.argv)
    detail = _checkpoints.facts(obj, path, t.get("resumes_from", ()) if t else ())
    R.api.event(B.EVENT_CHECKPOINT, path, R.dumps(detail))


@_guard.guarded("load")
def _after_load(f):
    _checkpoints.note_load(f)


# ---- install -----------------------------------------------------------------------------
def _wrap_compile(orig, dynamo=True):
    """torch.compile / Module.compile (dynamo guards on module hooks) and TorchScript's module
    compilation (it compiles a module's hooks): from the first of them on, nantrace's global
    module hooks stay registered on every step and no root holds hooks of ours."""
    import functools

    @functools.wraps(orig)
    def compile(*args, **kwargs):
        _root_hooks.never()
        if dynamo:  # a copy re-run would be compiled anew (TorchScript does not go through dynamo)
            _step_replay.disable()
        return orig(*args, **kwargs)
    return compile


def install():
    import torch.optim.optimizer as optim_mod
    for owner in (torch, torch.nn.Module):
        if callable(getattr(owner, "compile", None)):
            _patch(owner, "compile", _wrap_compile(getattr(owner, "compile")))
    try:  # torch.jit.script(module) compiles the module's hooks too: a root's own hook would fail it
        import torch.jit._recursive as jit_recursive
        _patch(jit_recursive, "create_script_module", _wrap_compile(jit_recursive.create_script_module, dynamo=False))
    except Exception:  # noqa: BLE001 - another torch: nothing to patch
        pass
    _patch(torch.Tensor, "backward", _loss_entry(torch.Tensor.backward))
    _patch(torch.autograd, "backward", _loss_entry(torch.autograd.backward))
    _patch(torch.autograd, "grad", _loss_entry(torch.autograd.grad))
    _patch(optim_mod.Optimizer, "__init__", _wrap_optimizer_init(optim_mod.Optimizer.__init__))
    _handles.append(optim_mod.register_optimizer_step_pre_hook(_opt_pre))
    _handles.append(optim_mod.register_optimizer_step_post_hook(_opt_post))
    scalers = []
    try:
        from torch.amp import GradScaler as AmpScaler
        scalers.append(AmpScaler)
    except Exception:  # noqa: BLE001
        pass
    try:
        from torch.cuda.amp import GradScaler as CudaScaler
        # In recent torch it subclasses torch.amp.GradScaler: patching the base covers it.
        if not any(issubclass(CudaScaler, s) for s in scalers):
            scalers.append(CudaScaler)
    except Exception:  # noqa: BLE001
        pass
    for cls in scalers:
        _patch(cls, "scale", _wrap_scaler_scale(cls.scale))
        _patch(cls, "step", _wrap_scaler_step(cls.step))
        _patch(cls, "update", _wrap_scaler_update(cls.update))
    _data.install(_patch)
    _replay.set_original_save(torch.save)
    _patch(torch, "save", _wrap_save(torch.save))
    _patch(torch, "load", _wrap_load(torch.load))


def uninstall():
    for h in _handles:
        h.remove()
    _handles.clear()
    while _restore:
        owner, name, orig = _restore.pop()
        setattr(owner, name, orig)
