"""A stand-in for the C binding that records every call, so the hooks' logic (steps, phases,
module paths, evidence, replay) can be tested without libnantrace.so. Finiteness is computed
with torch, the way the C scanner would report it."""
import json

import torch

NT_FINITE, NT_NONFINITE = 0, 1


class Check:
    def __init__(self, step, phase, role, path, mtype, op, name, finite, dtype):
        self.step, self.phase, self.role = step, phase, role
        self.path = path.decode() if path else None
        self.mtype = mtype.decode() if mtype else None
        self.op = op.decode() if op else None
        self.name = name.decode() if name else None
        self.finite, self.dtype = finite, dtype

    def __repr__(self):
        return "Check(step=%d phase=%d role=%d %s %s op=%s %s)" % (
            self.step, self.phase, self.role, self.path, self.name, self.op,
            "ok" if self.finite else "BAD")


class FakeApi:
    def __init__(self, config=None, run_dir=None):
        self.config = {"check_level": 1, "every": 1}
        self.config.update(config or {})
        self._run_dir = run_dir
        self.step = 0
        self.checks, self.events, self.scalars, self.meta = [], [], [], {}
        self.scopes, self.steps, self.rank = [], [], None
        self.started = 0
        self.max_scope_depth = 0

    def start(self, frontend):
        self.started += 1
        return 1

    def config_int(self, key):
        return self.config.get(key, -1)

    def run_dir(self):
        return self._run_dir

    def run_file_name(self, stem, ext):
        rank, world = getattr(self, "rank", None) or (-1, 1)
        return "%s.rank%d.%s" % (stem, rank, ext) if world > 1 and rank >= 0 else "%s.%s" % (stem, ext)

    def set_rank(self, rank, world):
        self.rank = (rank, world)

    def set_progress_bar(self, active):
        self.progress_bar = bool(active)

    def set_meta(self, k, v):
        self.meta[k] = v

    def step_begin(self, n):
        self.step = n
        self.steps.append(n)

    def scope_push(self, kind, name, mtype):
        self.scopes.append(name.decode())
        self.max_scope_depth = max(self.max_scope_depth, len(self.scopes))

    def scope_pop(self):
        self.scopes.pop()

    def check(self, phase, role, path, mtype, op, name, t, want_stats=False):
        from nantrace_torch._tensors import eligible
        if not eligible(t):  # as the library's binding: what is not checkable is skipped
            return 3
        finite = bool(torch.isfinite(t.detach()).all())
        self.checks.append(Check(self.step, phase, role, path, mtype, op, name, finite, t.dtype))
        return NT_FINITE if finite else NT_NONFINITE

    def scan_many(self, tensors):
        return None  # as the binding without its extension: the hooks check tensors one by one

    def norm_many(self, tensors):
        return None

    def scalar(self, name, value):
        self.scalars.append((self.step, name, value))

    def scalar_at(self, name, step, value):
        self.scalars.append((step, name, value))

    def event(self, kind, name, detail=None):
        if isinstance(detail, bytes):
            detail = detail.decode()
        # A note's detail is free text (nantrace.h); every other kind's is a JSON object.
        parsed = detail if kind == 0 else (json.loads(detail) if detail else None)
        self.events.append((self.step, kind, name.decode() if isinstance(name, bytes) else name, parsed))

    def stat(self, key):
        return len(self.checks) if key == "checks" else -1

    def origin_found(self):
        return 0

    def finding_json(self):
        """The library's answer to "which module is the origin", simplified: the first
        non-finite forward output, moved out by the origin_in_code events that followed it."""
        from nantrace_torch import _binding as B
        o = self.first_bad(role=0)
        if o is None or o.phase != B.PHASE_FORWARD:
            return "{}"
        module = o.path.decode() if isinstance(o.path, bytes) else o.path
        for _, kind, _, detail in self.events:
            if kind == B.EVENT_ORIGIN_IN_CODE and isinstance(detail, dict) and detail.get("module"):
                module = detail["module"]
        return json.dumps({"found": True, "phase": "forward", "module_path": module, "capture_module": module})

    def first_bad(self, **where):
        for c in self.checks:
            if not c.finite and all(getattr(c, k) == v for k, v in where.items()):
                return c
        return None


NT_PENDING = 2


class AsyncFakeApi(FakeApi):
    """Answers forward-phase checks the way the library answers CUDA checks: NT_PENDING at
    once, the verdict only later, through origin_found() / finding_json(), from the step after
    the first non-finite forward output (the scan result arrives after the forward returned)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.origin = None

    def check(self, phase, role, path, mtype, op, name, t, want_stats=False):
        r = super().check(phase, role, path, mtype, op, name, t, want_stats)
        if phase != 2:  # forward only: enough to make the hooks take the asynchronous path
            return r
        c = self.checks[-1]
        if not c.finite and role == 0 and self.origin is None:
            self.origin = c
        return NT_PENDING

    def origin_found(self):
        return int(self.origin is not None and self.step > self.origin.step)

    def finding_json(self):
        if not self.origin_found():
            return "{}"
        o = self.origin
        return json.dumps({"found": True, "kind": "fp16_overflow", "phase": "forward", "step": o.step,
                           "module_path": o.path, "module_type": o.mtype, "device": "cuda:0",
                           "capture_module": o.path})
