"""The update-to-weight ratio of each optimizer step, per parameter group: the norm of what the
step changed over the norm of the weights before it (about 1e-3 is usual for Adam; far above,
the learning rate is too high and one step can throw the model out of range).

Measured on a fixed strided sample of each parameter (every element of a small one, up to
_SAMPLE of a large one), taken as views so the step's in-place update shows through them: one
fused copy before the step, one fused subtraction and two fused norms after it. The sample's
ratio estimates the whole parameter's (an optimizer moves elements alike; Adam almost
uniformly). CPU values are read at once; device values come back through the read-back queue,
never waited for, and are recorded at the step they belong to.
"""
import math
import weakref

import torch

from . import _guard
from . import _runtime as R
from ._tensors import Pending, Readback, ReadbackQueue, foreach_norms

_SAMPLE = 4096
_foreach_norm = getattr(torch, "_foreach_norm", None)
_views = weakref.WeakKeyDictionary()  # optimizer -> (key, [(group, view)]), rebuilt when its params change
_before = {}                          # id(optimizer) -> (views, copies, groups) until its step returns
_pending = ReadbackQueue(8)           # Pending(step, Readback of per-group ratios), device tensors


def _key(opt):
    """Cheap to compute each step: the groups, their sizes and the first parameter's storage
    (a view taken before `p.data = ...` would show the old storage)."""
    groups = opt.param_groups
    first = groups[0]["params"][0] if groups and groups[0].get("params") else None
    ptr = first.data_ptr() if isinstance(first, torch.Tensor) else None
    return (len(groups), tuple(id(g.get("params")) for g in groups),
            tuple(len(g.get("params", ())) for g in groups), ptr)


def _sample(p):
    flat = p.detach().view(-1) if p.is_contiguous() else None
    if flat is None or flat.numel() == 0:
        return None
    stride = max(1, flat.numel() // _SAMPLE)
    return flat[::stride]


def _views_of(opt):
    key = _key(opt)
    cached = _views.get(opt)
    if cached is not None and cached[0] == key:
        return cached[1]
    views = []
    for gi, g in enumerate(opt.param_groups):
        for p in g.get("params", ()):
            if isinstance(p, torch.Tensor) and p.is_floating_point():
                v = _sample(p)
                if v is not None:
                    views.append((gi, v))
    _views[opt] = (key, views)
    return views


@_guard.guarded("update_ratio")
def before_step(opt):
    """Snapshot the sample before the optimizer updates the weights."""
    if _foreach_norm is None:
        return
    views = _views_of(opt)
    if not views:
        return
    tensors = [v for _, v in views]
    devices = {t.device for t in tensors}
    if len(devices) != 1:
        return  # a model spread over devices: its groups' norms would need a gather
    with R.hooks_suspended(), torch.no_grad():
        copies = torch._foreach_mul(tensors, 1.0)
    _before[id(opt)] = (tensors, copies, [g for g, _ in views])


@_guard.guarded("update_ratio")
def after_step(opt):
    """The step returned: record ||update|| / ||weights|| of each group as "update_ratio"
    (several groups or optimizers: "update_ratio #2", ... in order)."""
    flush()
    snap = _before.pop(id(opt), None)
    if snap is None:
        return
    tensors, copies, groups = snap
    with R.hooks_suspended(), torch.no_grad():
        # float64 on the host: the squares of weights past 1e19 (a diverging run) still fit.
        acc = torch.float64 if tensors[0].is_cpu or any(t.dtype is torch.float64 for t in tensors) else torch.float32
        delta = torch._foreach_sub(tensors, copies)
        dn = torch.stack(foreach_norms(delta, acc))
        wn = torch.stack(foreach_norms(copies, acc))
        bounds = []
        start = 0
        for i in range(1, len(groups) + 1):
            if i == len(groups) or groups[i] != groups[start]:
                bounds.append((start, i))
                start = i
        ratios = torch.stack([dn[a:b].norm() / wn[a:b].norm() for a, b in bounds])
    if ratios.is_cuda:
        if not _pending.full():
            _pending.push(Pending(R.counter.step, Readback(ratios)))
        return
    _emit(ratios.tolist(), None)


def _emit(values, step):
    """A group whose weights were all zero has no ratio, and an update that wrote NaN is the
    parameter checks' to report: neither is a ratio."""
    for v in values:
        if math.isfinite(v):
            if step is None:
                R.api.scalar("update_ratio", v)
            else:
                R.api.scalar_at("update_ratio", step, v)


def flush():
    while True:
        p = _pending.pop_ready()
        if p is None:
            return
        _emit(p.back.value().tolist(), p.meta)
