"""Op-level checks: a TorchDispatchMode that checks the floating outputs of every aten op.

Used three ways: for the whole run (NANTRACE_CHECK=op), inside the culprit module only after a
module-level finding, and to replay the culprit module on its captured inputs (role REPLAY).
"""
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from . import _binding as B
from . import _guard
from . import _runtime as R
from ._tensors import iter_tensors, bname

_op_names = {}
# Ops whose outputs are uninitialised memory (filled by the next op): garbage NaNs there mean nothing.
_UNINITIALISED = (b"aten::empty", b"aten::new_empty", b"aten::resize", b"aten::set_")


def uninitialised_output(op):
    return op.startswith(_UNINITIALISED)


def op_name(func):
    b = _op_names.get(func)
    if b is None:
        packet = str(getattr(func, "overloadpacket", func))  # "aten.exp"
        ns, _, rest = packet.partition(".")
        b = _op_names[func] = bname(ns + "::" + rest if rest else packet)
    return b


class StopReplay(Exception):
    """Raised inside a replay at the first non-finite op output, to stop the forward there."""


class OpCheckMode(TorchDispatchMode):
    """Checks op outputs in the live run. Site module = the innermost module being run."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if _guard.enabled("op") and not R.suspended():
            try:
                self._check(func, out)
            except Exception as e:  # noqa: BLE001
                _guard.disable("op", e)
        return out

    def _check(self, func, out):
        st = R.stack()
        path, mtype = (st[-1].path, st[-1].mtype) if st else (None, None)
        phase = R.phase()
        op = op_name(func)
        if uninitialised_output(op):
            return
        api = R.api
        for name, t in iter_tensors(out, "output"):
            r = api.check(phase, B.ROLE_OUTPUT, path, mtype, op, bname(name), t)
            if r == B.NT_NONFINITE and not R.module_checks:
                R.switch_full_checks("non-finite op output on a sampled-out step")


class ReplayMode(TorchDispatchMode):
    """Checks each op's inputs (role INPUT) and outputs (role REPLAY) while replaying a module;
    stops at the first non-finite output."""

    def __init__(self, path, mtype):
        super().__init__()
        self.path, self.mtype = path, mtype
        self.found = None  # op name (str) of the first non-finite output
        self.scopes = []   # (qualified name, type) of the submodules running, when tracked
        self.inner = None  # the innermost of them at the first non-finite output

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        op = op_name(func)
        api = R.api
        outs = list(iter_tensors(out, "output")) if not uninitialised_output(op) else None
        if not outs:
            return out
        for name, t in iter_tensors(args, "input"):
            api.check(B.PHASE_FORWARD, B.ROLE_INPUT, self.path, self.mtype, op, bname(name), t)
        bad = False
        for name, t in outs:
            r = api.check(B.PHASE_FORWARD, B.ROLE_REPLAY, self.path, self.mtype, op, bname(name), t)
            # A device check answers later (NT_PENDING); the replay must stop at this op, so
            # it reads the answer now. That synchronizes the device: this is the one-off replay
            # after a fault, not the training.
            if r == B.NT_NONFINITE or (r != B.NT_FINITE and not bool(torch.isfinite(t).all())):
                bad = True
        if bad:
            self.found = op.decode()
            self.inner = self.scopes[-1] if self.scopes else None
            raise StopReplay(self.found)
        return out
