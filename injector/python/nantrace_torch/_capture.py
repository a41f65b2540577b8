"""Capture of the culprit module's inputs at a recurrence, for tensors checked asynchronously.

A CPU check answers at once, so _modules keeps the culprit's inputs at the fault itself and
replays it there. A CUDA check answers later (the scan kernel runs on the stream; its result
reaches the library through pinned memory): by the time the library knows that a module's
output was the origin, that forward is long over and its inputs may be gone. So:

1. Arm. _investigation asks the library, at step boundaries, which module to capture (the
   finding's "capture_module") and arms capture for it (arm()); it also switches on op-level
   checks inside it, so the recurrence is also pinned to its op live.
2. Snapshot. At each later forward of the armed module, its post hook keeps device clones of
   the inputs and of the module's parameters and buffers, and enqueues a finiteness test of the
   outputs whose one-byte answer is copied to pinned host memory behind a CUDA event. Nothing
   here synchronizes the device: it only enqueues work on the current stream.
3. Resolve. Answers are read only once their event has completed (polled at step boundaries
   and at the armed module's forwards). A finite recurrence's snapshot is dropped; the first
   non-finite one is the recurrence: the module is rebuilt with the captured parameters and
   handed back by poll() as a Recurrence; _investigation replays it on the captured inputs on
   its own device (_replay: pin the op, verify the fix, save it for `nantrace repro`).

4. Outwards. If the captured inputs are themselves non-finite, the module only relayed the
   value, which was born in code between modules of one enclosing it (a residual add). Capture
   is armed again for the innermost enclosing module that runs (the first post hook of a module
   whose path encloses the relay's), and the recurrence after that is replayed there, announced
   by an NT_EVENT_ORIGIN_IN_CODE that moves the finding to that module (docs/architecture.md).

This module is the capture machine only: it imports nothing of the other hook modules.

Bounded: at most MAX_IN_FLIGHT snapshots wait for their answer (a forward that finds the queue
full is not captured), and capture gives up, with a note, after MAX_ATTEMPTS forwards without
a recurrence, or when even the outermost module's inputs were non-finite.
"""

import torch

from . import _binding as B
from . import _runtime as R
from ._tensors import Readback, ReadbackQueue, detached_clone, iter_tensors, map_tensors

MAX_IN_FLIGHT = 2
MAX_ATTEMPTS = 64

armed_path = None   # module path (bytes) whose forwards are snapshotted; None when not armed
_enclosing = None   # relay path (bytes): snapshot the innermost running module enclosing it
_relay = None       # the origin's module path (str) once capture moved outwards from it
_state = "idle"     # idle -> armed -> done; "done" is final
_pending = ReadbackQueue(MAX_IN_FLIGHT)  # Snapshots waiting for their answer, oldest first
_attempts = 0


class Snapshot:
    """One forward of the armed module: what is needed to replay it, and whether it went bad."""

    def __init__(self, module, args, kwargs, outputs, path, mtype):
        from ._replay import autocast_state
        self.module = module  # copied only if this turns out to be the recurrence
        self.path, self.mtype = path, mtype
        self.step = R.counter.step
        self.args = map_tensors(args, detached_clone)
        self.kwargs = map_tensors(kwargs or {}, detached_clone)
        self.state = {k: v.detach().clone() for k, v in module.state_dict(keep_vars=True).items()
                      if isinstance(v, torch.Tensor)}
        self.autocast = autocast_state(outputs[0].device.type)
        self._answer = Readback(torch.stack([torch.isfinite(t).all() for t in outputs]).all())

    def ready(self):
        return self._answer.ready()

    def finite(self):
        return bool(self._answer.value())


def arm(path, device=None):
    """Capture the forwards of the module at `path` (bytes) from now on. Once per run."""
    global _state, armed_path
    if _state != "idle":
        return
    armed_path = path
    _state = "armed"
    R.api.event(B.EVENT_CAPTURE, "armed",
                R.dumps({"module": path.decode("utf-8", "replace"), "step": R.counter.step, "device": device,
                         "why": "the origin was found after its forward had returned (asynchronous "
                                "check): its inputs are captured when the fault recurs"}))


def armed():
    return _state == "armed"


class Recurrence:
    """A recurrence to replay: the module rebuilt with its parameters at that forward, and
    the inputs captured there (finite)."""

    def __init__(self, snap, module, relay):
        self.module, self.args, self.kwargs = module, snap.args, snap.kwargs
        self.path, self.mtype, self.autocast = snap.path, snap.mtype, snap.autocast
        self.captured = {"step": snap.step, "recurrence": True}
        self.relay = relay  # the first captured module's path (str) when capture moved outwards


def encloses(outer, inner):
    """True when module path `outer` (bytes) is a proper ancestor of `inner`."""
    return (len(inner) > len(outer) and inner.startswith(outer)
            and inner[len(outer):len(outer) + 1] in (b".", b"/"))


def wants(path):
    """Post hooks ask this while capture is armed: snapshot this module's forward?"""
    global armed_path, _enclosing
    if path == armed_path:
        return True
    if _enclosing is not None and encloses(path, _enclosing):
        # Post hooks run innermost first: the first enclosing module to finish is the one
        # whose code made the value. From now on capture that module.
        armed_path, _enclosing = path, None
        return True
    return False


def on_forward(module, args, kwargs, output, path, mtype):
    """Post hook of the armed module (through _investigation, which polls around it)."""
    global _attempts
    if _state != "armed" or _pending.full():
        return
    outputs = [t for _, t in iter_tensors(output, "output")]
    if not outputs:
        return
    _attempts += 1
    with R.hooks_suspended():  # our own ops stay out of op-level checking
        with torch.no_grad():
            _pending.push(Snapshot(module, args, kwargs, outputs, path, mtype))


def poll():
    """Read the answers that have arrived, in order; never waits. Returns the Recurrence to
    replay, or None."""
    while _state == "armed":
        snap = _pending.pop_ready()
        if snap is None:
            break
        if not snap.finite():
            _stop()
            return _recurrence(snap)
    if _state == "armed" and _attempts >= MAX_ATTEMPTS and not _pending:
        label = (armed_path or _enclosing or b"").decode("utf-8", "replace")
        _stop()
        R.api.event(B.EVENT_CAPTURE, "gave_up",
                    R.dumps({"module": label, "forwards": _attempts,
                             "why": "the fault did not recur in the module's next forwards"}))
    return None


def _stop():
    global _state, armed_path, _enclosing
    _state, armed_path, _enclosing = "done", None, None
    _pending.clear()


def _recurrence(snap):
    """The non-finite snapshot: a Recurrence to replay, or None when its inputs were already
    non-finite (capture moves outwards, or gives up at the root)."""
    global _state, _enclosing, _relay, _attempts
    api = R.api
    label = snap.path.decode("utf-8", "replace")
    with R.hooks_suspended():
        bad_inputs = any(not bool(torch.isfinite(t).all())
                         for obj in (snap.args, snap.kwargs) for _, t in iter_tensors(obj, "x"))
        if bad_inputs:
            # A relay: move outwards (point 4 of the module docstring), unless this is the root.
            outer = b"/" in snap.path
            api.event(B.EVENT_CAPTURE, "moved_outwards" if outer else "gave_up",
                      R.dumps({"module": label, "step": snap.step,
                               "why": "at the recurrence the module's inputs were already non-finite"}))
            if outer:
                if _relay is None:
                    _relay = label
                _state, _enclosing, _attempts = "armed", snap.path, 0
            return None
        from ._replay import pristine_copy  # weight_norm modules copy too; no user hooks
        module = pristine_copy(snap.module)
        module.load_state_dict(snap.state)  # the parameters as they were at the recurrence
    return Recurrence(snap, module, _relay)


def reset_for_tests():
    global armed_path, _enclosing, _relay, _state, _attempts
    armed_path, _enclosing, _relay, _state, _attempts = None, None, None, "idle", 0
    _pending.clear()
