"""Scenario: divergence from a learning rate far too high (fp32).

A linear regressor trained with SGD under an exponential warm-up that was never capped: the
learning rate is multiplied by 100 every step (step k trains at 100**k).  The summed L1 loss
keeps the gradients bounded (|dL/db| = batch size = 8), so the parameters swing with the
learning rate (|b| ~ 8 * 100**k) while every forward value stays finite; at step 19 the
learning rate is 1e38 and the update lr * 8 = 8e38 passes float32's 3.4e38: SGD writes +-inf
into the parameters.  The first non-finite values are LinearRegressor/fc's parameters after
the optimizer step of step 19.  (The run stops there: at step 20 the learning rate itself, 1e40,
no longer fits a float32 and SGD would raise.)
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

STEPS = 19


class LinearRegressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 1)

    def forward(self, x):
        return self.fc(x)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = LinearRegressor()
    opt = torch.optim.SGD(model.parameters(), lr=100.0)
    warmup = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 100.0 ** s)  # never capped
    w_true = torch.randn(16, 1)
    for step in range(1, STEPS + 1):
        x = 0.01 * torch.randn(8, 16)
        y = x @ w_true + 0.5
        loss = F.l1_loss(model(x), y, reduction="sum")
        opt.zero_grad()
        loss.backward()
        opt.step()
        warmup.step()
        print([loss.item(), step, opt.param_groups[0]["lr"]], flush=True)


if __name__ == "__main__":
    main()
