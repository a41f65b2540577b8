"""The step replay: a fault on a step whose module checks were sampled out, located at once.

With NANTRACE_EVERY=N, most steps run without module output checks. On such a step every
training root forward is captured as it starts: the module, its inputs (by reference, only
until the step's backward returns), the CPU RNG state and the autocast state; its outputs are
kept as they return. When the loss check then finds a non-finite loss, the weights have not
moved yet (the check runs before backward and before the optimizer). So the step's root
forwards are re-run at once, in order, on copies of the roots (`_replay.pristine_copy`: the
host's modules, buffers and counters never change), with the same inputs, RNG state and
autocast, and with every module output checked. The first non-finite module output of that
re-run locates the origin at the very step it was born, with its evidence and op replay as
on a checked step.

The re-run is compared with the step bit for bit (NaN equal to NaN): "reproduced" when every
root output matches. Reproduced with every module output finite, the loss computation outside
the modules made the value, and the loss stays the origin. Not reproduced (a nondeterministic
forward, inputs changed in place meanwhile), the finding stays `not_located` and the next
recurrence locates it, as before.

What is not re-run: a root first seen on a sampled-out step is captured like any other; device
tensors are not (the finding then waits for the recurrence, docs/gpu.md); a fault born in
backward (finite loss, non-finite gradients) is not: its graph is gone by the optimizer step.
"""
import weakref

import torch

from . import _binding as B
from . import _paths
from . import _replay
from . import _runtime as R
from ._tensors import iter_tensors, map_tensors, detached_clone

MAX_CAPTURES = 8  # root forwards kept per step (a GAN's two models, a few micro-batches)


class _Capture:
    __slots__ = ("module", "args", "kwargs", "rng", "autocast", "output", "grads", "grad_enabled", "__weakref__")

    def __init__(self, module, args, kwargs, rng, autocast, grad_enabled):
        self.module, self.args, self.kwargs, self.rng, self.autocast = module, args, kwargs, rng, autocast
        self.grad_enabled = grad_enabled
        self.output = None
        self.grads = {}  # output name -> the gradient that arrived at it in the step's backward


class _KeepGrad:
    """A tensor hook on a root output of a sampled-out step: keeps the gradient that arrives
    there (by reference, until the step ends), what a backward re-run starts from. It holds its
    capture weakly: the capture holds the output, whose hook this is, and a cycle through a
    tensor's hooks is never collected."""
    __slots__ = ("cap", "name")

    def __init__(self, cap, name):
        self.cap, self.name = weakref.ref(cap), name

    def __call__(self, grad):
        cap = self.cap()
        if cap is not None and _kept[0] + _nbytes(grad) <= MAX_GRAD_BYTES:
            _kept[0] += _nbytes(grad)
            cap.grads[self.name] = grad
        return None


MAX_GRAD_BYTES = 64 << 20  # root-output gradients kept per step; beyond, no backward re-run
_kept = [0]
_captures = []
_running = [False]  # a step replay is running (the root pre hook then skips the batch check)
_off = [False]      # no capture from now on (torch.compile seen: a copy would be compiled anew)


def disable():
    """torch.compile / Module.compile seen: re-running a copy of a compiled model would compile
    it again in the host's process (a recompilation the host did not ask for), so steps are no
    longer captured; a fault on a sampled-out step is located at its recurrence instead."""
    _off[0] = True
    clear()


def running():
    return _running[0]


def _on_cpu(args, kwargs):
    for _, t in iter_tensors((args, kwargs or {}), "x"):
        if not t.is_cpu:
            return False
    return True


def capture(module, args, kwargs):
    """A training root forward begins on a sampled-out step (called by the root pre hook)."""
    if _running[0] or _off[0] or len(_captures) >= MAX_CAPTURES or not _on_cpu(args, kwargs):
        return
    _captures.append(_Capture(module, args, kwargs, _rng_now(), _replay.autocast_state("cpu"),
                              torch.is_grad_enabled()))


def _rng_now():
    """The CPU generator's state, as a generator of its own (its bytes are read only at a
    replay). torch.get_rng_state() here, once per root forward, grew the process by about its
    5 KB a step on a long fp16 run (tests/integration/robust/test_bounded.py); a cloned
    generator does not."""
    clone = getattr(torch.default_generator, "clone_state", None)
    return clone() if clone is not None else torch.get_rng_state()


def _rng_bytes(rng):
    return rng.get_state() if isinstance(rng, torch.Generator) else rng


def _nbytes(t):
    return t.numel() * t.element_size() if isinstance(t, torch.Tensor) else 0


def on_root_output(module, output):
    """That root forward returned: its outputs, to compare the re-run with, and a hook on each
    that needs a gradient, to keep the gradient backward brings there."""
    if _running[0]:
        return
    for c in reversed(_captures):
        if c.module is module and c.output is None:
            c.output = output
            for name, t in iter_tensors(output, "o"):
                if t.requires_grad and t.grad_fn is not None:
                    t.register_hook(_KeepGrad(c, name))
            return


def clear():
    if _captures:
        del _captures[:]
    _kept[0] = 0


def on_step_begin(n):
    clear()


def reset_for_tests():
    clear()
    _off[0] = False


def _named_copy(module):
    """A pristine copy of a root, named in the report exactly as the root it copies."""
    dup = _replay.pristine_copy(module)
    info = _paths._roots.get(module)
    cinfo = _paths.RootInfo(dup)
    if info is not None:
        cinfo.label = info.label
        cinfo.refresh(dup)
    _paths._roots[dup] = cinfo
    return dup


def _same(a, b):
    """The re-run's outputs equal the step's, bit for bit (NaN equal to NaN)."""
    xs, ys = list(iter_tensors(a, "o")), list(iter_tensors(b, "o"))
    if len(xs) != len(ys) or not xs:
        return False
    for (nx, x), (ny, y) in zip(xs, ys):
        if nx != ny or x.shape != y.shape or x.dtype != y.dtype:
            return False
        x, y = x.detach(), y.detach()
        if not bool(((x == y) | (torch.isnan(x) & torch.isnan(y))).all()):
            return False
    return True


def _run(cap, ours, dup=None, backward=None):
    """Re-run one captured root forward on a copy (`dup`, made here if None); with `backward`
    (torch's own autograd.backward), with gradients on and then backward from the gradients
    the step's outputs received. Returns the re-run's output."""
    dup = _named_copy(cap.module) if dup is None else dup
    try:
        args = map_tensors(cap.args, detached_clone)
        kwargs = map_tensors(cap.kwargs or {}, detached_clone)
        ac = cap.autocast
        grad_mode = torch.enable_grad() if backward is not None and cap.grad_enabled else torch.no_grad()
        with torch.random.fork_rng(devices=[]), grad_mode, _replay.no_global_module_hooks(keep=ours), _replay.silenced():
            torch.set_rng_state(_rng_bytes(cap.rng))
            with torch.autocast("cpu", dtype=_replay._dtype(ac.get("dtype")) or torch.bfloat16,
                                enabled=bool(ac.get("enabled"))):
                out = dup(*args, **kwargs)
            if backward is not None:
                _backward_from(out, cap.grads, backward)
            return out
    finally:
        _paths._roots.pop(dup, None)


def _backward_from(out, grads, backward):
    """Backward through the re-run from the gradients the step's root outputs received, with
    the phase and the backward-origin search set up as for the script's own backward."""
    from . import _backward_origin
    pairs = [(t, grads[name]) for name, t in iter_tensors(out, "o") if name in grads and t.grad_fn is not None]
    if not pairs:
        return
    tls = R.tls
    prev = getattr(tls, "in_backward", False), R.phase()
    _backward_origin.begin_backward([t for t, _ in pairs])
    tls.in_backward, tls.phase = True, B.PHASE_BACKWARD
    try:
        backward([t for t, _ in pairs], [g for _, g in pairs])
    finally:
        tls.in_backward, tls.phase = prev[0], prev[1]


def replay(ours):
    """The loss of a sampled-out step is non-finite and the analysis has it unlocated: re-run
    the step's root forwards with every module output checked. `ours`: nantrace's own global
    module hooks. Returns whether it ran."""
    caps = list(_captures)
    if not caps:
        return False
    return _replay_window(lambda: _forwards_reproduced(caps, ours))


def _forwards_reproduced(caps, ours):
    same = True
    for cap in caps:
        out = _run(cap, ours)
        del R.stack()[:]  # a forward that raised leaves nothing behind
        same = same and cap.output is not None and _same(out, cap.output)
    return same


def replay_backward(ours, backward, params):
    """The gradients an optimizer is about to use hold NaN/Inf on a sampled-out step, its loss
    was finite and the analysis has the value unlocated: re-run the step's root forwards and
    their backward (from the gradients the step's root outputs received) on copies, every
    module output and every gradient at one checked. `backward`: torch's own
    autograd.backward; `params`: the host's (name-ordered copies are compared with them).
    Returns whether it ran."""
    caps = [c for c in _captures if c.grads]
    if not caps or any(c.output is None for c in caps):
        return False
    return _replay_window(lambda: _backward_reproduced(caps, ours, backward, params))


def _backward_reproduced(caps, ours, backward, params):
    dups = {}
    for cap in caps:
        dup = dups.get(id(cap.module))
        if dup is None:
            dup = dups[id(cap.module)] = (cap.module, _named_copy(cap.module))
        _run(cap, ours, dup[1], backward)
        del R.stack()[:]
    # The copies' gradients, summed in the step's order as the host's were, against the host's.
    wanted = {id(p) for p in params}
    for host, dup in dups.values():
        for (_, hp), (_, dp) in zip(host.named_parameters(), dup.named_parameters()):
            if id(hp) not in wanted:
                continue
            if (hp.grad is None) != (dp.grad is None):
                return False
            if hp.grad is not None and not _same(dp.grad, hp.grad):
                return False
    return True


def _replay_window(run):
    """Run a step replay between its replay_start / replay events; `run()` says whether the
    re-run reproduced the step."""
    clear()
    api = R.api
    step = R.counter.step
    api.event(B.EVENT_REPLAY_BEGIN, "replay_start", R.dumps({"module": "", "step": step, "step_replay": True}))
    status, reason = "not_reproduced", ""
    stack = R.stack()
    saved_stack = list(stack)
    del stack[:]
    _running[0] = True
    try:
        if run():
            status = "reproduced"
        else:
            reason = ("what it computed differs from the step's outputs or gradients (a nondeterministic "
                      "forward, or inputs changed in place)")
    except Exception as e:  # noqa: BLE001 - the finding waits for the recurrence instead
        status, reason = "failed", "%s: %s" % (type(e).__name__, str(e)[:200])
    finally:
        _running[0] = False
        stack[:] = saved_stack
        api.event(B.EVENT_REPLAY_END, "replay",
                  R.dumps({"module": "", "op": None, "step_replay": True, "status": status, "reason": reason}))
    return True
