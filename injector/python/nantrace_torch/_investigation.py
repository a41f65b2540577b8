"""The investigation of the origin, owned here: one place holds its sequence, its state, its
budget and its decisions; the hook modules call in and write none of it.

    first non-finite module output (on_nonfinite_output, from _modules' post hook)
      -> evidence: the module's inputs and own parameters (check_evidence)
      -> inputs already non-finite: follow back into the innermost enclosing forward whose own
         inputs are finite (its code made the value: announced as NT_EVENT_ORIGIN_IN_CODE)
      -> op-level checks inside the culprit from now on (arm_op_level)
      -> CPU tensors: replay the culprit once (pin the op, verify the fix, save the repro)
    device tensors (answers arrive after the forward returned):
      -> at a step boundary the library names the module to capture (finding's
         "capture_module": the library decides, Python does not re-derive it from the kind)
      -> _capture snapshots that module's next forwards and hands back the recurrence
      -> the recurrence is replayed once, with its evidence in a replay window

Budget: evidence for at most EVIDENCE_BUDGET non-finite module outputs; one replay per run.
Import order: _modules -> _investigation -> _capture, _replay (no circle)."""
import json
import sys

from . import _binding as B
from . import _capture
from . import _data
from . import _guard
from . import _runtime as R
from ._tensors import eligible, iter_tensors, bname

EVIDENCE_BUDGET = 4

_evidence_left = EVIDENCE_BUDGET
_replayed = False       # the one replay of the run has happened
_capture_decided = False
culprit = None          # path (bytes) of the module where op-level checking switched on
_op_mode = None         # the OpCheckMode used inside the culprit


def op_mode_for(path):
    """The op-level mode to enter for a forward of `path`, or None."""
    return _op_mode if culprit is not None and path == culprit else None


def arm_op_level(path):
    """Check every op inside the module at `path` from now on (module level only), so that a
    recurrence of the fault is pinned to its op in the live run."""
    global culprit, _op_mode
    if culprit is not None or R.check_level != 1:
        return
    from ._opcheck import OpCheckMode
    _op_mode = OpCheckMode()
    culprit = path
    R.api.event(B.EVENT_CHECK_MODE, path.decode("utf-8", "replace"),
                json.dumps({"module": path.decode("utf-8", "replace"), "level": "op", "step": R.counter.step}))


def check_evidence(module, args, kwargs, path, mtype):
    """Check a module's inputs (role INPUT) and its own parameters and buffers (role PARAM),
    the evidence for its non-finite output. Returns (any of them non-finite, all on CPU)."""
    api = R.api
    inputs_bad = False
    on_cpu = True
    for prefix, obj in (("args", args), ("kwargs", kwargs or {})):
        for name, t in iter_tensors(obj, prefix):
            on_cpu &= t.is_cpu
            inputs_bad |= api.check(B.PHASE_FORWARD, B.ROLE_INPUT, path, mtype, None, bname(name), t) == B.NT_NONFINITE
    for pname, p in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
        if eligible(p):
            on_cpu &= p.is_cpu
            inputs_bad |= api.check(B.PHASE_FORWARD, B.ROLE_PARAM, path, mtype, None, bname(pname), p) == B.NT_NONFINITE
    return inputs_bad, on_cpu


def on_nonfinite_output(frame, module, args, kwargs):
    """A forward output was non-finite: gather its evidence; then, the first time and for CPU
    tensors, replay the module whose code made the value."""
    global _evidence_left, _replayed
    if _evidence_left <= 0:
        return
    _evidence_left -= 1
    path, mtype = frame.path, frame.mtype
    inputs_bad, on_cpu = check_evidence(module, args, kwargs, path, mtype)
    if inputs_bad:
        # Every output checked before was finite, yet this module's inputs are not: the value
        # was born in code between modules (a residual add, an activation called as a
        # function) of a module enclosing this one.
        anc = _follow_back()
        if anc is None:
            return  # propagated from where nothing was checked (or not known yet)
        module, args, kwargs, path, mtype = anc.module, anc.args, anc.kwargs, anc.path, anc.mtype
        on_cpu = True
    arm_op_level(path)
    if not _replayed and on_cpu and _is_origin(path):
        _replayed = True
        from . import _replay
        _replay.replay_and_verify(module, args, kwargs, path, mtype,
                                  compiled=_replay.runs_compiled(module, R.stack()))


def _is_origin(path):
    """Whether the library's origin is (now) the module at `path`: the replay, its fix check and
    the repro are the origin's, at the origin's moment, or nothing (a non-finite output after
    the origin, say a module at the step after a loss made NaN, is not replayed)."""
    try:
        finding = json.loads(R.api.finding_json())
    except ValueError:
        return False
    return isinstance(finding, dict) and finding.get("capture_module") == path.decode("utf-8", "replace")


def pin_in_graph(tensor, path, mtype, phase):
    """The first non-finite value is `tensor`, made by code no module hook saw (a loss written
    with plain functions): read its op from the autograd graph (_graph_origin), nothing re-run,
    and hand the op's inputs and output to the library in a replay window marked "graph"."""
    from . import _backward_origin, _graph_origin
    api = R.api
    label = (path or b"").decode("utf-8", "replace")
    with R.hooks_suspended():
        values, nodes = _backward_origin.checked_outputs()
        try:
            pin = _graph_origin.find(tensor, values, nodes)
        except Exception as e:  # noqa: BLE001 - evidence only: the finding stands without it
            pin = _graph_origin.Pin("undetermined", reason="reading the autograd graph failed (%s)" % str(e)[:120])
        status, reason = pin.status, pin.reason
        bad = [i for i in pin.inputs if i.tensor is not None and i.node is None and not _graph_origin.finite(i.tensor)]
        if status == "untracked" and bad and _data.from_recent_batch(bad[0].tensor):
            # Not made by any op of this step: a tensor of the batch the DataLoader returned
            # (the targets the loss compares with) holds the value.
            status = "data"
            reason = ("its input `%s` is a tensor of the batch the DataLoader returned (not given to the model: "
                      "used by the loss), and it already held non-finite values" % bad[0].name)
            _data.bad_samples(bad[0].name, bad[0].tensor)
        api.event(B.EVENT_REPLAY_BEGIN, "replay_start", R.dumps({"module": label, "graph": True, "step": R.counter.step}))
        op = bname(pin.op) if pin.op else None
        if op is not None and status in ("pinned", "untracked", "data"):
            for inp in pin.inputs:
                if inp.tensor is not None and eligible(inp.tensor):
                    api.check(phase, B.ROLE_INPUT, path, mtype, op, bname(inp.name), inp.tensor)
            if pin.output is not None and eligible(pin.output):
                api.check(phase, B.ROLE_REPLAY, path, mtype, op, b"output", pin.output)
        # What made each input ("self" <- aten::_softmax): the fix for log(softmax) is log_softmax.
        made_by = {}
        for inp in pin.inputs:
            producer = _graph_origin.op_name_of(inp.node) if inp.node is not None else None
            if producer:
                made_by[inp.name] = "aten::" + producer
        api.event(B.EVENT_REPLAY_END, "replay", R.dumps({
            "module": label, "op": pin.op if status in ("pinned", "untracked", "data") else None, "graph": True,
            "node": pin.node_name, "status": status, "reason": reason, "input_ops": made_by}))
    return pin


def live_call_kwargs(module):
    """The keyword arguments `module` was called with, read from its Module._call_impl frame,
    which is still running (the forward it encloses is in progress). Module frames do not keep
    them (the global pre-hook is not given them, and reading them at every call would cost
    each module a frame walk); here, once at a fault, the walk is cheap. None when not found."""
    try:
        f = sys._getframe(1)
        for _ in range(400):
            if f is None:
                return None
            if f.f_code.co_name == "_call_impl" and f.f_locals.get("self") is module:
                kw = f.f_locals.get("kwargs")
                return kw if isinstance(kw, dict) else None
            f = f.f_back
    except Exception:  # noqa: BLE001
        pass
    return None


def _follow_back():
    """The innermost enclosing forward whose own inputs are finite: its code made the value.
    Each candidate is announced (NT_EVENT_ORIGIN_IN_CODE: the analysis moves the finding
    there) and its inputs and parameters are checked as the new evidence. Returns its Frame,
    or None when every enclosing forward already had non-finite inputs or the answers are not
    known yet (device tensors: checked asynchronously)."""
    api = R.api
    for anc in reversed(R.stack()):
        if anc.kwargs is None:
            anc.kwargs = live_call_kwargs(anc.module)
        api.event(B.EVENT_ORIGIN_IN_CODE, "origin_in_code",
                  R.dumps({"module": anc.path.decode("utf-8", "replace"),
                           "module_type": anc.mtype.decode("utf-8", "replace")}))
        if not all(t.is_cpu for obj in (anc.args, anc.kwargs or {}) for _, t in iter_tensors(obj, "x")):
            return None
        inputs_bad, _ = check_evidence(anc.module, anc.args, anc.kwargs, anc.path, anc.mtype)
        if not inputs_bad:
            return anc
    return None


# ---- device tensors: capture at the recurrence ------------------------------------------

@_guard.guarded("capture")
def on_step_begin(step):
    if not _capture_decided:
        _decide_capture()
    _resolve(_capture.poll())


def _decide_capture():
    """Once the library has an origin (and nothing was replayed at the fault): capture the
    module it names, if any. Decided once, whatever the answer."""
    global _capture_decided
    if _replayed or not R.api.origin_found():
        return
    _capture_decided = True
    try:
        finding = json.loads(R.api.finding_json())
    except ValueError:
        return
    target = finding.get("capture_module") if isinstance(finding, dict) else None
    if not isinstance(target, str) or not target:
        return
    path = target.encode("utf-8", "replace")
    _capture.arm(path, device=finding.get("device"))
    arm_op_level(path)


def wants_snapshot(path):
    return _capture.armed() and _capture.wants(path)


@_guard.guarded("capture")
def on_module_output(module, args, kwargs, output, path, mtype):
    """Post hook of a module capture wants: snapshot it, and resolve any answers that came."""
    _capture.on_forward(module, args, kwargs, output, path, mtype)
    _resolve(_capture.poll())


def _resolve(recurrence):
    """The recurrence _capture handed back (its inputs finite, the module rebuilt as it was):
    replay it once, with its evidence in the replay window."""
    global _replayed
    if recurrence is None or _replayed:
        return
    _replayed = True
    from . import _replay
    rc = recurrence
    label = rc.path.decode("utf-8", "replace")
    api = R.api
    if rc.relay is not None:  # the analysis moves the origin here (it encloses the relay)
        api.event(B.EVENT_ORIGIN_IN_CODE, "origin_in_code",
                  R.dumps({"module": label, "module_type": rc.mtype.decode("utf-8", "replace"),
                           "relay": rc.relay, "recurrence": True}))
    # Evidence from the recurrence: the module's inputs and its own parameters, in the window
    # the analysis reads as the replay's (REPLAY_BEGIN ... REPLAY_END).
    api.event(B.EVENT_REPLAY_BEGIN, "replay_start", R.dumps(dict({"module": label}, **rc.captured)))
    check_evidence(rc.module, rc.args, rc.kwargs, rc.path, rc.mtype)
    _replay.replay_and_verify(rc.module, rc.args, rc.kwargs, rc.path, rc.mtype,
                              autocast=rc.autocast, captured=rc.captured)


def replayed():
    return _replayed


def reset_for_tests():
    global _evidence_left, _replayed, _capture_decided, culprit, _op_mode
    _evidence_left, _replayed, _capture_decided, culprit, _op_mode = EVIDENCE_BUDGET, False, False, None, None
    _capture.reset_for_tests()
