"""Scenario: the loss blows up without a single NaN (issue 16, item 5).

An fp32 regressor trains normally for 5 steps (loss about 1). Before step 6 its output layer's
weights are scaled by 1e3, as a bad checkpoint merge or a corrupt weight update would do. The
loss jumps by about 1e6 and stays there: Adam's steps are bounded by the learning rate, so the
weights never recover within the run, and never overflow either.

Planted, written by hand: no non-finite value; a loss blow-up beginning at step 6, and the
module whose largest |x| jumped most at step 6 is `Regressor/fc2`.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

STEPS = 10


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 1)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = Regressor()
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    for step in range(1, STEPS + 1):
        if step == 6:
            with torch.no_grad():
                model.fc2.weight.mul_(1e3)
        x = torch.randn(16, 8)
        y = x.sum(dim=1, keepdim=True) * 0.1
        loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print([step, loss.item()], flush=True)


if __name__ == "__main__":
    main()
