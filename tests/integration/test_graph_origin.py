"""The op that made a non-finite value, read from its autograd graph (_graph_origin): each case
plants one op on purpose and expects that op, its inputs and its output, or an honest "not
determined" / "entered from outside the graph". Nothing of the user's is re-run: a module's
forward counter must not move while the graph is read. Runs in-process, no library needed."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "injector", "python"))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from nantrace_torch import _graph_origin as G  # noqa: E402


class Counted(nn.Module):
    """A model that counts its forwards and draws from the RNG (dropout): a search that re-ran
    it would show in both."""

    def __init__(self):
        super().__init__()
        self.calls = 0
        self.net = nn.Sequential(nn.Linear(6, 16), nn.Dropout(0.1), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, x):
        self.calls += 1
        return self.net(x)


def finite(t):
    return bool(torch.isfinite(t).all())


class GraphOriginTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.model = Counted()
        self.x = torch.randn(32, 6)
        self.out = self.model(self.x)

    def search(self, t):
        rng = torch.get_rng_state()
        pin = G.find(t)
        self.assertEqual(self.model.calls, 1, "the search ran the user's forward")
        self.assertTrue(torch.equal(rng, torch.get_rng_state()), "the search drew from the RNG")
        return pin

    def inputs(self, pin):
        return {i.name: i.tensor for i in pin.inputs}

    def test_division_by_a_zero_variance(self):
        y = torch.full((32, 1), 0.5)
        loss = ((self.out - y) ** 2).mean() / y.var()
        pin = self.search(loss)
        self.assertEqual((pin.status, pin.op, pin.node_name), ("pinned", "aten::div", "DivBackward0"))
        ins = self.inputs(pin)
        self.assertEqual(float(ins["other"]), 0.0)
        self.assertTrue(finite(ins["self"]))
        self.assertTrue(torch.isinf(pin.output).all())

    def test_log_of_a_zero_fraction_behind_a_negation(self):
        # neg saves nothing: log's value is recomputed from what log saved (its input, 0).
        frac = (torch.sigmoid(self.out) * 0).mean()
        loss = F.mse_loss(self.out, torch.zeros_like(self.out)) * -torch.log(frac)
        pin = self.search(loss)
        self.assertEqual((pin.status, pin.op), ("pinned", "aten::log"))
        self.assertEqual(float(self.inputs(pin)["self"]), 0.0)
        self.assertEqual(float(pin.output), float("-inf"))

    def test_exp_overflow_in_functional_code(self):
        loss = (self.out + torch.exp(self.out * 1000)).sum()
        pin = self.search(loss)
        self.assertEqual((pin.status, pin.op), ("pinned", "aten::exp"))
        self.assertTrue(finite(self.inputs(pin)["self"]))
        self.assertFalse(finite(pin.output))

    def test_fp16_overflow_through_a_cast_and_a_matmul(self):
        # _to_copy keeps its target dtype only in the node's metadata; mm's half input is
        # recomputed through it, and the multiply by 1000 is what leaves the half range.
        w = torch.full((1, 4), 600.0, dtype=torch.half)
        loss = ((self.out.half() @ w) * 1000).sum()
        pin = self.search(loss)
        self.assertEqual((pin.status, pin.op), ("pinned", "aten::mul"))
        self.assertEqual(self.inputs(pin)["self"].dtype, torch.half)
        self.assertTrue(finite(self.inputs(pin)["self"]))
        self.assertTrue(torch.isinf(pin.output).any())

    def test_a_value_that_needs_no_gradient_entered_from_outside(self):
        pos_frac = torch.zeros(())  # a batch without positives, computed without autograd
        loss = F.binary_cross_entropy_with_logits(self.out, torch.zeros_like(self.out)) * -torch.log(pos_frac)
        pin = self.search(loss)
        self.assertEqual((pin.status, pin.op), ("untracked", "aten::mul"))
        self.assertIn("`other`", pin.reason)
        self.assertFalse(finite(self.inputs(pin)["other"]))

    def test_non_finite_targets(self):
        y = torch.zeros(32, 1)
        y[3] = float("nan")
        pin = self.search(F.mse_loss(self.out, y))
        self.assertEqual((pin.status, pin.op), ("untracked", "aten::mse_loss"))
        self.assertIn("`target`", pin.reason)

    def test_a_parameter_already_non_finite(self):
        with torch.no_grad():
            self.model.net[3].weight[0, 0] = float("nan")
        out = self.model.net(self.x)
        self.model.calls = 1
        pin = self.search(out.sum())
        self.assertEqual(pin.status, "untracked")
        self.assertIn("parameter", pin.reason)

    def test_a_chunk_along_the_last_dim_is_recomputed(self):
        # chunk(dim=-1) saves its dim as the unsigned bits of -1; the search reads it back as -1
        # to recompute the chunk that fed exp (logvar * 2000 keeps no value of its own).
        mu, logvar = torch.cat([self.out, self.out], dim=-1).chunk(2, dim=-1)
        loss = torch.exp(logvar * 2000).mean()
        pin = G.find(loss, known=[((self.out.grad_fn, 0), self.out)], finite_nodes=[self.out.grad_fn])
        self.assertEqual((pin.status, pin.op), ("pinned", "aten::exp"))
        self.assertTrue(finite(self.inputs(pin)["self"]))

    def test_not_determined_when_autograd_kept_no_value(self):
        # sub by a Python scalar keeps neither the scalar nor its result: sqrt's input is unknown.
        loss = torch.sqrt(((self.out - 1) ** 2).mean() - 1e6)
        pin = self.search(loss)
        self.assertEqual((pin.status, pin.op), ("undetermined", "aten::sqrt"))
        self.assertIn("not known", pin.reason)

    def test_no_graph_under_no_grad(self):
        with torch.no_grad():
            loss = torch.log(torch.zeros(3)).sum()
        self.assertEqual(G.find(loss).status, "no_graph")

    def test_known_module_outputs_are_used_and_not_entered(self):
        # The model output is known (checked at the module's output): the search takes its value
        # from there and reads nothing inside the model.
        loss = torch.log(self.out.abs() * 0).mean()
        pin = G.find(loss, known=[((self.out.grad_fn, self.out.output_nr), self.out)],
                     finite_nodes=[self.out.grad_fn])
        self.assertEqual((pin.status, pin.op), ("pinned", "aten::log"))

    def test_op_names(self):
        x = torch.randn(3, requires_grad=True)
        self.assertEqual(G.op_name_of(F.mse_loss(x, torch.zeros(3)).grad_fn), "mse_loss")
        self.assertIn(G.op_name_of(torch.log_softmax(x, 0).grad_fn), ("log_softmax", "_log_softmax"))

        class Custom(torch.autograd.Function):
            @staticmethod
            def forward(ctx, a):
                return a * 2

            @staticmethod
            def backward(ctx, g):
                return g * 2

        self.assertIsNone(G.op_name_of(Custom.apply(x).grad_fn))


if __name__ == "__main__":
    unittest.main(verbosity=1)
