"""Scenario: a training loop with no torch.optim optimizer: the gradients come from
`torch.autograd.grad` and the weights are updated by hand (`p.sub_(lr * g)`), as meta-learning
and hand-written SGD loops do. The loss is normalised by the variance of the batch's targets,
written with plain torch functions: `mse / y.var()`.

The batch of step 4 has constant targets (every row 0.5: a sensor stuck at one value), so
y.var() is 0 and the division gives +inf. The first non-finite value is the loss at step 4,
made by `aten::div` with a zero divisor in the loss computation (no module made it): division by
zero, phase loss, op aten::div. Each autograd.grad call ends an iteration: the run has 6 steps.
"""
import torch
import torch.nn as nn

FAULT_STEP = 4


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
    params = list(model.parameters())
    for step in range(1, 7):
        x = torch.randn(32, 6)
        y = x.sum(1, keepdim=True) if step != FAULT_STEP else torch.full((32, 1), 0.5)
        pred = model(x)
        loss = ((pred - y) ** 2).mean() / y.var()
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(0.01 * g)
        print(step, round(loss.item(), 5), flush=True)


if __name__ == "__main__":
    main()
