"""The update-to-weight ratio of each optimizer step, per parameter group: the norm of what the
step changed over the norm of the weights before it (about 1e-3 is usual for Adam; far above,
the learning rate is too high and one step can throw the model out of range).

Measured on a fixed sample of each parameter: every element of a small one (up to _SAMPLE),
four chunks of _CHUNK elements spread over a large one, taken as views so the step's in-place
update shows through them. On CPU with the extension their bytes are copied before the step
and the norms summed in C after it (no torch op: a dozen dispatches per step cost more than
the arithmetic, issue 17); otherwise one `torch.cat` into a flat buffer before and after the
step, one subtraction and one norm per group. The sample's ratio estimates the whole parameter's (an optimizer
moves elements alike; Adam almost uniformly). CPU values are read at once; device values come
back through the read-back queue, never waited for, and are recorded at the step they belong to.
"""
import math
import weakref

import torch

from . import _binding as B
from . import _guard
from . import _runtime as R
from ._tensors import DTYPE_CODES as _DTYPE_CODES, Pending, Readback, ReadbackQueue

_UNUSUAL = 0.1  # an update of a tenth of the weights' norm: the core's kDivergentUpdateRatio
_SAMPLE = 1024
_CHUNK = 256
_plans = weakref.WeakKeyDictionary()  # optimizer -> Plan, rebuilt when its params change
_before = {}                          # id(optimizer) -> Plan whose `before` holds this step's snapshot
_pending = ReadbackQueue(8)           # Pending(step, Readback of per-group ratios), device tensors


def _key(opt):
    """Cheap to compute each step: the groups, their sizes and the first parameter's storage
    (a view taken before `p.data = ...` would show the old storage)."""
    groups = opt.param_groups
    first = groups[0]["params"][0] if groups and groups[0].get("params") else None
    ptr = first.data_ptr() if isinstance(first, torch.Tensor) else None
    return (len(groups), tuple(id(g.get("params")) for g in groups),
            tuple(len(g.get("params", ())) for g in groups), ptr)


def sample_views(t):
    """Views of the elements sampled from `t`: all of a small tensor, four spread chunks of a
    large one; [] for a non-contiguous or empty one."""
    if not t.is_contiguous():
        return []
    flat = t.detach().view(-1)
    n = flat.numel()
    if n == 0:
        return []
    if n <= _SAMPLE:
        return [flat]
    return [flat[o:o + _CHUNK] for o in (0, n // 4, n // 2, n - _CHUNK)]


class Plan:
    """An optimizer's sample: the views, where each group's elements lie in the flat buffer
    (bounds) and where its views end (ends), and the buffers (one dtype and device, else no
    plan). CPU plans with the extension keep their snapshot as bytes instead (fast_*)."""

    __slots__ = ("key", "views", "bounds", "before", "after", "counts", "ends", "code", "snapshot")

    def __init__(self, key, views, bounds, ends, like):
        self.key, self.views, self.bounds, self.ends = key, views, bounds, ends
        self.counts = tuple(v.numel() for v in views)
        n = sum(self.counts)
        self.before = torch.empty(n, dtype=like.dtype, device=like.device)
        self.after = torch.empty(n, dtype=like.dtype, device=like.device)
        self.code = _DTYPE_CODES.get(like.dtype) if like.is_cpu else None
        self.snapshot = None


def _plan_of(opt):
    key = _key(opt)
    plan = _plans.get(opt)
    if plan is not None and plan.key == key:
        return plan
    views, bounds, ends, start = [], [], [], 0
    for g in opt.param_groups:
        n = 0
        for p in g.get("params", ()):
            if isinstance(p, torch.Tensor) and p.is_floating_point():
                for v in sample_views(p):
                    views.append(v)
                    n += v.numel()
        if n:
            bounds.append((start, start + n))
            ends.append(len(views))
            start += n
    plan = None
    if views and len({(v.dtype, v.device) for v in views}) == 1:
        plan = Plan(key, views, bounds, tuple(ends), views[0])
    _plans[opt] = plan if plan is not None else _NoPlan(key)
    return plan


class _NoPlan:
    """A model whose parameters mix dtypes or devices: no ratio (docs/limits.md)."""

    __slots__ = ("key",)

    def __init__(self, key):
        self.key = key


@_guard.guarded("update_ratio")
def before_step(opt):
    """Snapshot the sample before the optimizer updates the weights: one copy."""
    plan = _plan_of(opt)
    if not isinstance(plan, Plan):
        return
    fast = getattr(R.api, "fast", None)
    if fast is not None and plan.code is not None:
        plan.snapshot = fast.copy_samples(plan.views, plan.counts, plan.code)
    else:
        plan.snapshot = None
        with R.hooks_suspended(), torch.no_grad():
            torch.cat(plan.views, out=plan.before)
    _before[id(opt)] = plan


_HALF_CODES = (B.DTYPE_F16, B.DTYPE_BF16)


@_guard.guarded("update_ratio")
def after_step(opt):
    """The step returned: record ||update|| / ||weights|| of each group as "update_ratio"
    (several groups or optimizers: "update_ratio #2", ... in order). Returns False when the
    sample says the parameters need no full scan this step (full-precision weights, every
    sampled value finite, every update below kDivergentUpdateRatio's 0.1); True (or None when
    this hook is off) otherwise."""
    flush()
    plan = _before.pop(id(opt), None)
    if plan is None:
        return True
    if plan.snapshot is not None:  # CPU, with the extension: the arithmetic in C, no torch op
        snap, plan.snapshot = plan.snapshot, None
        ratios = R.api.fast.sample_ratios(plan.views, plan.counts, plan.code, snap, plan.ends)
        _emit(ratios, None)
        return _needs_full_scan(plan, ratios)
    with R.hooks_suspended(), torch.no_grad():
        torch.cat(plan.views, out=plan.after)
        delta = plan.after.sub_(plan.before)
        ratios, overflow = _ratios(delta, plan.before, plan.bounds, None)
        if plan.before.is_cpu and overflow:
            # The squares of weights past 1e19 (a diverging run) overflow a float32 norm: the
            # host redoes it in float64. (Only then: float64 temporaries every step fragmented
            # the heap of a 20,000-step run by tens of MiB, robust.bounded.)
            ratios, _ = _ratios(delta, plan.before, plan.bounds, torch.float64)
    if ratios.is_cuda:
        if not _pending.full():
            _pending.push(Pending(R.counter.step, Readback(ratios)))
        return True
    values = ratios.tolist()
    _emit(values, None)
    return _needs_full_scan(plan, values)


def _needs_full_scan(plan, ratios):
    """Half-precision weights, or a sampled ratio that is non-finite or unusual: the parameters
    get their full scan this step (docs/architecture.md, "What is sampled")."""
    return plan.code in _HALF_CODES or not all(math.isfinite(r) and r < _UNUSUAL for r in ratios)


def _ratios(delta, before, bounds, dtype):
    """Per group ||delta|| / ||before||, and whether a norm overflowed its dtype (CPU only)."""
    norm = torch.linalg.vector_norm
    dn = torch.stack([norm(delta[a:b], dtype=dtype) for a, b in bounds])
    wn = torch.stack([norm(before[a:b], dtype=dtype) for a, b in bounds])
    overflow = dn.is_cpu and bool(torch.isinf(dn).any() or torch.isinf(wn).any())
    return dn / wn, overflow


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


def reset_for_tests():
    _plans.clear()
    _before.clear()
    _pending.clear()

