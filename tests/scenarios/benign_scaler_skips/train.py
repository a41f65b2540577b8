"""Scenario: benign GradScaler skips at start-up (no fault).

GradScaler starts at 2**40.  The scaled loss's gradients overflow fp16 in the backward pass, so
GradScaler skips the step and halves the scale, until the scale fits (scale * |grad| < 65504);
then training proceeds with finite losses.  These skips are handled by GradScaler: nothing is
wrong with the run, and no fault must be reported.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

STEPS = 24


class SmallConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(4, 16, 3, padding=1)
        self.conv2 = nn.Conv1d(16, 4, 3, padding=1)

    def forward(self, x):
        return self.conv2(F.gelu(self.conv1(x)))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = SmallConvNet()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 40)
    target = torch.randn(4, 4, 32)
    for step in range(1, STEPS + 1):
        x = torch.randn(4, 4, 32)
        with torch.autocast("cpu", dtype=torch.float16):
            loss = F.mse_loss(model(x).float(), target)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        print([loss.item(), step, scaler.get_scale()], flush=True)


if __name__ == "__main__":
    main()
