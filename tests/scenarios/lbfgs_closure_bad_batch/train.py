"""Scenario: LBFGS, whose step(closure) runs the forward and backward inside the step.

A full-batch regression trained with torch.optim.LBFGS, five iterations, each one
`optimizer.step(closure)` call in which LBFGS evaluates the closure up to four times. The
batch of iteration 3 holds a NaN feature (a missing value read as NaN): the first non-finite
value is the batch entering `Regressor` at step 3 (the closure's work belongs to the step being
taken), and the run has 5 steps.
"""
import torch
import torch.nn as nn

FAULT_STEP = 3
STEPS = 5


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, x):
        return self.net(x)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = Regressor()
    opt = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=4)
    w = torch.randn(5, 1)
    for step in range(1, STEPS + 1):
        x = torch.randn(32, 5)
        y = x @ w
        if step == FAULT_STEP:
            x[7, 2] = float("nan")  # a missing value

        def closure():
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            return loss

        loss = opt.step(closure)
        print([round(loss.item(), 6), step], flush=True)


if __name__ == "__main__":
    main()
