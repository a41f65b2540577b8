"""Shared state of the torch hooks: the binding, the step counter, sampling, the module stack.

Recording starts lazily, at the first training activity (a module forward, a backward, an
optimizer step), not at `import torch`: a process that imports torch but never trains
(a DataLoader worker started by spawn, a tool script) then creates no run directory.
"""
import json
import threading
import time

import torch

from . import _binding as B
from . import _guard
from ._steps import StepCounter

api = None              # Binding or a test fake
counter = StepCounter()
_started = False        # True once start() succeeded
_dead = False           # True once start() failed / process is a worker
planned = False         # start() already succeeded at `import torch` (see __init__._plan_run)


def mark_planned():
    """The library was started at `import torch` (__init__._plan_run)."""
    global planned
    planned = True
check_level = 1         # 0 off, 1 module, 2 op
every = 1               # module checks on every Nth step
module_checks = True    # module-level checks on in the current step
# NANTRACE_EVERY=auto (the default): every step is checked while steps 2..AUTO_STEPS are timed;
# then, if their median is under AUTO_FAST_S, every AUTO_EVERY-th step (issue 17: on short steps
# the checks' fixed cost is what shows; a fault in between re-runs its step with every check on).
AUTO_STEPS = 9
AUTO_FAST_S = 0.025
AUTO_EVERY = 16
auto = False            # the choice is still to be made
_step_t0 = None         # when the current step began (while auto is undecided)
_step_times = []        # seconds each of steps 2..AUTO_STEPS took, begin to optimizer step
full_checks = False     # switched on after a fault on an unsampled step
class _ThreadState(threading.local):
    """Per thread: .stack (list of Frame, or None before the first forward), .suspended (our
    own replay or ops in progress), .phase. Class defaults, so that reading one that a thread
    never set raises nothing (the extension's hooks read them on every module call)."""
    stack = None
    suspended = False
    scaler_checked = False  # inside GradScaler.step, which checked the gradients


tls = _ThreadState()
on_step_begin = []      # callbacks(step) run at each step boundary (context, distributed)
on_started = []         # callbacks() run once recording has started
on_module_checks = []   # callbacks(on) when a step's module checks may have changed (NANTRACE_EVERY)


def _module_checks_changed():
    for cb in on_module_checks:
        try:
            cb(module_checks)
        except Exception as e:  # noqa: BLE001
            _guard.disable("step", e)


def stack():
    s = getattr(tls, "stack", None)
    if s is None:
        s = tls.stack = []
    return s


def suspended():
    return getattr(tls, "suspended", False)


class _HooksSuspended:
    """`with hooks_suspended():` nantrace's own hooks stay out of what runs inside (our
    replays, the ops of our own checks); on leaving, the previous state comes back, so a
    suspension nested in another (a replay run from a capture) does not end the outer one."""
    __slots__ = ("prev",)

    def __enter__(self):
        self.prev = getattr(tls, "suspended", False)
        tls.suspended = True
        return self

    def __exit__(self, *exc):
        tls.suspended = self.prev
        return False


def hooks_suspended():
    return _HooksSuspended()


def phase():
    return getattr(tls, "phase", B.PHASE_FORWARD)


def set_phase(p):
    tls.phase = p


def ensure_started():
    """True when recording. Cheap after the first call."""
    global _started, _dead, check_level, every
    if _started:
        return True
    if _dead or api is None:
        return False
    try:
        from torch.utils.data import get_worker_info
        if get_worker_info() is not None:  # inside a DataLoader worker: stay quiet
            _dead = True
            _guard.disable_all()
            return False
    except Exception:
        pass
    if not planned and not api.start("torch"):
        _dead = True
        _guard.disable_all()
        return False
    _started = True
    lvl = api.config_int("check_level")
    check_level = lvl if lvl in (0, 1, 2) else 1
    ev = api.config_int("every")
    global auto
    auto = ev == 0  # NANTRACE_EVERY=auto
    every = ev if ev and ev > 0 else 1
    if check_level == 0:
        _guard.disable_all()
        return False
    for cb in on_started:
        try:
            cb()
        except Exception as e:  # noqa: BLE001
            _guard.disable("start", e)
    return True


def _begin_step(n):
    global module_checks, _step_t0
    api.step_begin(n)
    if auto:
        if n > AUTO_STEPS:
            _choose_every(n)
        else:
            _step_t0 = time.perf_counter()
    module_checks = full_checks or every <= 1 or (n - 1) % every == 0
    if every > 1 and check_level == 1:
        _module_checks_changed()
    for cb in on_step_begin:
        try:
            cb(n)
        except Exception as e:  # noqa: BLE001
            _guard.disable("step", e)


def step_work_done():
    """The step's work is done (its optimizer stepped, or its backward returned in a loop without
    one): while NANTRACE_EVERY=auto is undecided, how long the step took."""
    global _step_t0
    if _step_t0 is not None:
        if 2 <= counter.step <= AUTO_STEPS:
            _step_times.append(time.perf_counter() - _step_t0)
        _step_t0 = None


def _choose_every(n):
    """NANTRACE_EVERY=auto: every AUTO_EVERY-th step from step n on when the timed steps are
    short, else every step; said once, in the report's notes."""
    global auto, every
    auto = False
    if full_checks or len(_step_times) < 4:
        return
    ms = 1000.0 * sorted(_step_times)[len(_step_times) // 2]
    if ms >= 1000.0 * AUTO_FAST_S:
        return
    every = AUTO_EVERY
    first = n + (-(n - 1)) % every
    api.event(B.EVENT_NOTE, "Check sampling",
              "steps 2-%d took %.1f ms each (median), so short that checking every module at every step "
              "would cost more than the step can carry: from step %d on, module outputs and their gradients "
              "were checked every %dth step (steps %d, %d, ...). The batch, the loss and the gradients "
              "reaching the optimizer were checked at every step, and a non-finite value on a step in "
              "between re-runs that step at once with every check on. NANTRACE_EVERY=1 checks every step"
              % (AUTO_STEPS, ms, n, every, first, first + every))


def activity():
    """A forward / backward / input event: may begin the next step."""
    n = counter.activity()
    if n is not None:
        _begin_step(n)


def backward_done():
    """A top-level backward returned (ends an iteration in a loop without an optimizer)."""
    counter.backward_done()


def optimizer_stepped(key):
    n = counter.optimizer_stepped(key)
    if n is not None:
        _begin_step(n)


def optimizer_stepping(key):
    """An optimizer step that runs a closure began: the closure's work is this step's."""
    n = counter.optimizer_stepping(key)
    if n is not None:
        _begin_step(n)


def optimizer_step_done(key):
    """That step returned."""
    counter.optimizer_step_done(key)


def lift_sampling(on):
    """on: module checks on for one forward of a sampled-out step (an evaluation); off: back to
    sampled out. Returns whether it lifted anything."""
    global module_checks
    if on:
        if module_checks:
            return False
        module_checks = True
    elif full_checks:
        return False
    else:
        module_checks = False
    _module_checks_changed()
    return True


def switch_full_checks(reason):
    """A cheap check found non-finite on a step whose module checks were sampled out."""
    global full_checks, module_checks
    if full_checks or module_checks:
        return
    full_checks = True
    module_checks = True
    _module_checks_changed()  # every module hook back now, also for the forward in flight
    api.event(B.EVENT_CHECK_MODE, "full_checks",
              json.dumps({"module": "", "level": "module", "every": 1, "step": counter.step,
                          "reason": reason}))


def dumps(obj):
    """JSON for event details: never NaN/Infinity literals."""
    def fix(v):
        if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
            return str(v)
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        return v
    return json.dumps(fix(obj))


def reset_for_tests(new_api):
    global api, counter, _started, _dead, check_level, every, module_checks, full_checks, planned
    api = new_api
    planned = False
    counter = StepCounter()
    _started = _dead = False
    check_level, every, module_checks, full_checks = 1, 1, True, False
    global auto, _step_t0
    auto, _step_t0 = False, None
    del _step_times[:]
    tls.stack = []
    tls.suspended = False
    tls.phase = B.PHASE_FORWARD
    on_step_begin.clear()
    on_started.clear()
    on_module_checks.clear()
    _guard.reset()
    _ = torch  # keep the import: hooks modules rely on torch being loaded here
