"""Training-step numbering, kept free of torch so it can be unit-tested on its own.

A step is one training iteration, numbered from 1. The only reliable marker of an iteration
in an unmodified script is the optimizer: an iteration is complete when every live optimizer
has stepped in it (or was skipped by a GradScaler), or when GradScaler.update() runs. The next
forward / backward / input event after completion begins the next step. An optimizer that
steps twice within one iteration also begins a new one (it means we over-estimated the set of
optimizers that step per iteration; the set is then re-learned from what actually stepped).

A loop without any torch.optim optimizer (manual `p.sub_(lr * g)` after `.backward()` or
`torch.autograd.grad`) has no such marker: there, each top-level backward (or autograd.grad)
ends an iteration. Once an optimizer exists, only the optimizer rules apply.
"""


class StepCounter:
    def __init__(self):
        self.step = 0           # 0 = before the first iteration
        self._known = set()     # optimizers believed to step once per iteration
        self._stepped = set()   # optimizers that stepped in the current iteration
        self._complete = False
        self._ever_stepped = False  # any optimizer stepped in this run

    # ---- optimizer lifetime -------------------------------------------------
    def add_optimizer(self, key):
        self._known.add(key)

    def remove_optimizer(self, key):
        self._known.discard(key)
        self._stepped.discard(key)

    @property
    def complete(self):
        return self._complete

    # ---- events; each returns the number of a step that began, or None ---------
    def activity(self):
        """A forward, backward or batch-input event."""
        if self.step == 0 or self._complete:
            return self._begin()
        return None

    def optimizer_stepped(self, key):
        """An optimizer stepped (or GradScaler skipped it)."""
        began = self.optimizer_stepping(key)
        self.optimizer_step_done(key)
        return began

    def optimizer_stepping(self, key):
        """An optimizer step began. With a closure (LBFGS) the forward and backward the closure
        runs inside the call belong to this step, so the iteration is complete only when the
        call returns (optimizer_step_done)."""
        began = None
        if self.step == 0 or self._complete:
            began = self._begin()
        elif key in self._stepped:
            # Stepped twice in one iteration: some optimizer we counted on never steps.
            # Learn the real per-iteration set from the iteration that just ended.
            self._known = set(self._stepped)
            began = self._begin()
        self._known.add(key)
        self._stepped.add(key)
        self._ever_stepped = True
        return began

    def optimizer_step_done(self, key):
        if key in self._stepped and self._known <= self._stepped:
            self._complete = True

    def backward_done(self):
        """A top-level backward / autograd.grad call returned: the end of an iteration in a
        loop that has no optimizer at all."""
        if self.step > 0 and not self._known and not self._ever_stepped:
            self._complete = True

    def iteration_end(self):
        """GradScaler.update(): the iteration is over whatever stepped."""
        if self.step > 0:
            self._complete = True

    def _begin(self):
        self.step += 1
        self._stepped = set()
        self._complete = False
        return self.step
