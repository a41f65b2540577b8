"""Capture of the culprit module's inputs at a recurrence, for tensors checked asynchronously.

A CPU check answers at once, so _modules keeps the culprit's inputs at the fault itself and
replays it there. A CUDA check answers later (the scan kernel runs on the stream; its result
reaches the library through pinned memory): by the time the library knows that a module's
output was the origin, that forward is long over and its inputs may be gone. So:

1. Arm. At each step boundary, while nothing has been replayed yet, ask the library whether it
   has found an origin (one cheap call). If the origin is a module's forward output (not bad
   input data, not propagated), arm capture for that module path and switch on op-level checks
   inside it (_modules.arm_op_level), so the recurrence is also pinned to its op live.
2. Snapshot. At each later forward of the armed module, its post hook keeps device clones of
   the inputs and of the module's parameters and buffers, and enqueues a finiteness test of the
   outputs whose one-byte answer is copied to pinned host memory behind a CUDA event. Nothing
   here synchronizes the device: it only enqueues work on the current stream.
3. Resolve. Answers are read only once their event has completed (polled at step boundaries
   and at the armed module's forwards). A finite recurrence's snapshot is dropped; the first
   non-finite one is the recurrence: the module is rebuilt with the captured parameters and
   replayed on the captured inputs on its own device (_replay: pin the op, verify the fix, save
   it for `nantrace repro`).

4. Outwards. If the captured inputs are themselves non-finite, the module only relayed the
   value, which was born in code between modules of one enclosing it (a residual add). Capture
   is armed again for the innermost enclosing module that runs (the first post hook of a module
   whose path encloses the relay's), and the recurrence after that is replayed there, announced
   by an "origin_in_code" note that moves the finding to that module (docs/architecture.md).

Bounded: at most MAX_IN_FLIGHT snapshots wait for their answer (a forward that finds the queue
full is not captured), and capture gives up, with a note, after MAX_ATTEMPTS forwards without
a recurrence, or when even the outermost module's inputs were non-finite.
"""
import copy
import json

import torch

from . import _binding as B
from . import _guard
from . import _runtime as R
from ._tensors import Readback, detached_clone, iter_tensors, map_tensors

MAX_IN_FLIGHT = 2
MAX_ATTEMPTS = 64

armed_path = None   # module path (bytes) whose forwards are snapshotted; None when not armed
_enclosing = None   # relay path (bytes): snapshot the innermost running module enclosing it
_relay = None       # the origin's module path (str) once capture moved outwards from it
_state = "idle"     # idle -> armed -> done; "done" is final
_pending = []       # Snapshots waiting for their answer, oldest first
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


@_guard.guarded("capture")
def on_step_begin(step):
    if _state == "idle":
        _maybe_arm()
    if _pending:
        poll()


def _maybe_arm():
    global _state, armed_path
    from . import _modules
    if _modules._replayed or not R.api.origin_found():
        return
    _state = "done"  # decided once, whatever the finding
    try:
        finding = json.loads(R.api.finding_json())
    except ValueError:
        return
    path = finding.get("module_path") if isinstance(finding, dict) else None
    if (finding.get("phase") != "forward" or not isinstance(path, str) or not path
            or finding.get("kind") in ("bad_input", "propagated")):
        return
    armed_path = path.encode("utf-8", "replace")
    _state = "armed"
    _modules.arm_op_level(armed_path)
    R.api.event(B.EVENT_CAPTURE, "armed",
                R.dumps({"module": path, "step": R.counter.step, "device": finding.get("device"),
                         "why": "the origin was found after its forward had returned (asynchronous "
                                "check): its inputs are captured when the fault recurs"}))


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


@_guard.guarded("capture")
def on_forward(module, args, kwargs, output, path, mtype):
    """Post hook of the armed module."""
    global _attempts
    if _state != "armed":
        return
    if len(_pending) >= MAX_IN_FLIGHT:
        poll()
        if len(_pending) >= MAX_IN_FLIGHT or _state != "armed":
            return
    outputs = [t for _, t in iter_tensors(output, "output")]
    if not outputs:
        return
    _attempts += 1
    with R.hooks_suspended():  # our own ops stay out of op-level checking
        with torch.no_grad():
            _pending.append(Snapshot(module, args, kwargs, outputs, path, mtype))
    poll()


def poll():
    """Read the answers that have arrived, in order; never waits."""
    global _state, armed_path
    while _pending and _state == "armed" and _pending[0].ready():
        snap = _pending.pop(0)
        if not snap.finite():
            _stop()
            _replay_snapshot(snap)
            return
    if _state == "armed" and _attempts >= MAX_ATTEMPTS and not _pending:
        label = (armed_path or _enclosing or b"").decode("utf-8", "replace")
        _stop()
        R.api.event(B.EVENT_CAPTURE, "gave_up",
                    R.dumps({"module": label, "forwards": _attempts,
                             "why": "the fault did not recur in the module's next forwards"}))


def _stop():
    global _state, armed_path, _enclosing
    _state, armed_path, _enclosing = "done", None, None
    _pending.clear()


def _replay_snapshot(snap):
    global _state, _enclosing, _relay, _attempts
    from . import _modules, _replay
    api = R.api
    label = snap.path.decode("utf-8", "replace")
    captured = {"step": snap.step, "recurrence": True}
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
            return
        module = copy.deepcopy(snap.module)
        module.load_state_dict(snap.state)  # the parameters as they were at the recurrence
    _modules._replayed = True
    if _relay is not None:  # the analysis moves the origin here (it encloses the relay)
        api.event(B.EVENT_ORIGIN_IN_CODE, "origin_in_code",
                  R.dumps({"module": label, "module_type": snap.mtype.decode("utf-8", "replace"),
                           "relay": _relay, "recurrence": True}))
    # Evidence from the recurrence: the module's inputs and its own parameters, in the window
    # the analysis reads as the replay's (opened by replay_start, closed by the "replay" note).
    api.event(B.EVENT_REPLAY_BEGIN, "replay_start", R.dumps(dict({"module": label}, **captured)))
    _modules.check_evidence(module, snap.args, snap.kwargs, snap.path, snap.mtype)
    _replay.replay_and_verify(module, snap.args, snap.kwargs, snap.path, snap.mtype,
                              autocast=snap.autocast, captured=captured)


def reset_for_tests():
    global armed_path, _enclosing, _relay, _state, _attempts
    armed_path, _enclosing, _relay, _state, _attempts = None, None, None, "idle", 0
    _pending.clear()
