"""Scenario: a healthy fp16 autocast run with GradScaler: no fault, no warning, no skip.

Activations stay near 1 (far from fp16's 65504) and the initial loss scale (2**8) leaves the
scaled gradients finite from the first step, so GradScaler never skips.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

STEPS = 8


class HealthyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(6, 16, 3, padding=1)
        self.norm = nn.GroupNorm(4, 16)
        self.out = nn.Conv1d(16, 6, 1)

    def forward(self, x):
        return self.out(F.silu(self.norm(self.conv(x))))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = HealthyNet()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 8)
    for step in range(1, STEPS + 1):
        x = torch.randn(4, 6, 24)
        with torch.autocast("cpu", dtype=torch.float16):
            loss = F.mse_loss(model(x).float(), torch.roll(x, 1, -1))
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        print([loss.item(), step, scaler.get_scale()], flush=True)


if __name__ == "__main__":
    main()
