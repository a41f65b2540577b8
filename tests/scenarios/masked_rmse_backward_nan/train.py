"""Scenario: an RMSE loss over masked frames whose square root meets 0 in backward.

The loss is `torch.sqrt(((pred - target) * mask).pow(2).mean())`. Its forward is finite for
any mask: sqrt(0) = 0. At step 3 the batch has no valid frame (the mask is all zeros), so the
mean is exactly 0, and sqrt's derivative there, 1 / (2 sqrt(0)), is Inf; multiplied by the
zeros that the mask left, it becomes NaN. The model's own backward never saw a non-finite
gradient before this one: the first non-finite gradient is at the model's output (`Net`),
made by the backward of the loss computation (several nodes: no single one is named).
fp32, no loss scaler.
"""
import torch
import torch.nn as nn

FAULT_STEP = 3
STEPS = 5


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 3))

    def forward(self, x):
        return self.body(x)


def masked_rmse(pred, target, mask):
    return torch.sqrt(((pred - target) * mask).pow(2).mean())


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(1, STEPS + 1):
        x, target = torch.randn(5, 6), torch.randn(5, 3)
        mask = (torch.rand(5, 1) > 0.3).float()
        if step == FAULT_STEP:
            mask.zero_()  # a batch of padding only
        loss = masked_rmse(model(x), target, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print([round(loss.item(), 6), step], flush=True)


if __name__ == "__main__":
    main()
