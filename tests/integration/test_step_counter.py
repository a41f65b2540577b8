"""Unit tests of the step numbering rules (pure Python, no torch)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "injector", "python"))
import importlib.util  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "nt_steps", os.path.join(os.path.dirname(__file__), "..", "..", "injector", "python",
                             "nantrace_torch", "_steps.py"))
_steps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_steps)
StepCounter = _steps.StepCounter


def run(counter, events):
    """Feed 'f' (forward), 'b' (backward), ('o', key) optimizer, 'u' scaler update;
    return the step number current after each event."""
    seen = []
    for e in events:
        if e in ("f", "b"):
            counter.activity()
        elif e == "u":
            counter.iteration_end()
        else:
            counter.optimizer_stepped(e[1])
        seen.append(counter.step)
    return seen


class StepCounterTest(unittest.TestCase):
    def test_first_iteration_is_step_one(self):
        c = StepCounter()
        self.assertEqual(c.step, 0)
        self.assertEqual(run(c, ["f", "b", ("o", 1)]), [1, 1, 1])

    def test_one_optimizer(self):
        c = StepCounter()
        c.add_optimizer(1)
        self.assertEqual(run(c, ["f", "b", ("o", 1)] * 3), [1, 1, 1, 2, 2, 2, 3, 3, 3])

    def test_gan_two_optimizers_is_one_step(self):
        # GPT-SoVITS: G fwd, D fwd, D bwd, D step, D fwd (for G loss), G bwd, G step, update
        c = StepCounter()
        c.add_optimizer("G")
        c.add_optimizer("D")
        it = ["f", "f", "b", ("o", "D"), "f", "b", ("o", "G"), "u"]
        seen = run(c, it * 3)
        self.assertEqual(seen, [1] * 8 + [2] * 8 + [3] * 8)

    def test_scaler_skip_counts_as_stepped(self):
        c = StepCounter()
        c.add_optimizer(1)
        # a skipped step is reported through optimizer_stepped by the GradScaler wrapper
        self.assertEqual(run(c, ["f", "b", ("o", 1), "u", "f", "b", ("o", 1), "u"]),
                         [1, 1, 1, 1, 2, 2, 2, 2])

    def test_update_ends_iteration_even_if_an_optimizer_did_not_step(self):
        c = StepCounter()
        c.add_optimizer("G")
        c.add_optimizer("D")
        self.assertEqual(run(c, ["f", ("o", "D"), "u", "f"]), [1, 1, 1, 2])

    def test_unused_optimizer_is_learned_away(self):
        c = StepCounter()
        c.add_optimizer("used")
        c.add_optimizer("never_steps")
        seen = run(c, ["f", ("o", "used")] * 4)
        # iteration 2's forward is still counted in step 1 (not yet known), then it is learned
        self.assertEqual(seen, [1, 1, 1, 2, 3, 3, 4, 4])

    def test_unknown_optimizer_learned_from_steps(self):
        c = StepCounter()
        self.assertEqual(run(c, ["f", ("o", 7), "f", ("o", 7)]), [1, 1, 2, 2])

    def test_gradient_accumulation(self):
        c = StepCounter()
        c.add_optimizer(1)
        self.assertEqual(run(c, ["f", "b", "f", "b", ("o", 1), "f"]), [1, 1, 1, 1, 1, 2])

    def test_removed_optimizer(self):
        c = StepCounter()
        c.add_optimizer(1)
        c.add_optimizer(2)
        c.remove_optimizer(2)
        self.assertEqual(run(c, ["f", ("o", 1), "f"]), [1, 1, 2])


class ClosureTest(unittest.TestCase):
    """optimizer.step(closure): the closure's forward and backward belong to the step taken."""

    def test_closure_work_is_the_steps_own(self):
        c = StepCounter()
        c.add_optimizer("lbfgs")
        seen = []
        for _ in range(3):
            c.optimizer_stepping("lbfgs")  # step(closure) is called first
            for _ in range(4):             # LBFGS evaluates the closure several times
                c.activity()               # its forward and backward
                c.backward_done()
                seen.append(c.step)
            c.optimizer_step_done("lbfgs")
        self.assertEqual(seen, [1] * 4 + [2] * 4 + [3] * 4)
        self.assertEqual(c.step, 3)

    def test_a_closure_step_beside_a_plain_one(self):
        c = StepCounter()
        c.add_optimizer("g")
        c.add_optimizer("d")
        c.activity()
        c.optimizer_stepped("d")
        c.optimizer_stepping("g")
        c.activity()  # g's closure: still step 1
        self.assertEqual(c.step, 1)
        c.optimizer_step_done("g")
        c.activity()
        self.assertEqual(c.step, 2)


class NoOptimizerTest(unittest.TestCase):
    """Manual SGD (no torch.optim): each top-level backward ends an iteration."""

    def test_each_backward_is_an_iteration(self):
        c = StepCounter()
        seen = []
        for _ in range(4):
            c.activity()        # forward
            c.activity()        # backward begins
            c.backward_done()   # ... and returns; then the manual update
            seen.append(c.step)
        self.assertEqual(seen, [1, 2, 3, 4])

    def test_with_an_optimizer_only_the_optimizer_counts(self):
        c = StepCounter()
        c.add_optimizer("adam")
        seen = []
        for _ in range(3):
            c.activity()
            c.backward_done()
            c.optimizer_stepped("adam")
            seen.append(c.step)
        self.assertEqual(seen, [1, 2, 3])

    def test_an_optimizer_that_stepped_once_keeps_the_optimizer_rules(self):
        c = StepCounter()
        c.activity()
        c.optimizer_stepped("sgd")  # an optimizer made before nantrace saw it
        c.remove_optimizer("sgd")
        c.activity()
        c.backward_done()
        c.activity()
        self.assertEqual(c.step, 2)  # not one per backward: the script has an optimizer


if __name__ == "__main__":
    unittest.main()
