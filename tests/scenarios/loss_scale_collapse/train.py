"""Scenario: loss-scale collapse: the forward pass overflows fp16 at every step under GradScaler.

The projector's second layer was initialised with a far too large gain (x4096; its weights,
|w| <= 512, are finite in fp16).  Its fp16 output (max |y| ~ 2.8e5 wanted) passes 65504 from
the first step on, so the loss is inf, GradScaler finds inf gradients, skips
the step and halves the scale, again and again: loss scaling cannot fix an overflow of the
forward pass.  First non-finite: Projector/fc2's output in the forward pass of step 1.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

STEPS = 8


class Projector(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(64, 64)
        with torch.no_grad():
            self.fc2.weight.mul_(4096.0)  # the bad init gain

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = Projector()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    scaler = torch.amp.GradScaler("cpu")
    for step in range(1, STEPS + 1):
        x = 200.0 * torch.rand(8, 32)   # unnormalised features, finite
        with torch.autocast("cpu", dtype=torch.float16):
            loss = F.mse_loss(model(x).float(), torch.zeros(8, 64))
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        print([loss.item(), step, scaler.get_scale()], flush=True)


if __name__ == "__main__":
    main()
