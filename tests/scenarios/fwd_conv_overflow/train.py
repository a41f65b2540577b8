"""Scenario: fp16 overflow in a forward ConvTranspose1d upsampling layer.

A small upsampling vocoder trained with CPU fp16 autocast and GradScaler.  Before step 5 the
second upsampling layer's weights surge 2**19 times (as a bad checkpoint reload or a diverging
update would do).  Its weights stay finite in fp16 (max |w| ~ 4.6e4 < 65504) and its input is
unchanged (max |x| ~ 0.7), but its output, max |y| ~ 0.28 before the surge, would be ~1.5e5:
+-inf first appears in UpsampleNet/ups.1 during the forward pass of step 5.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

FAULT_STEP = 5
STEPS = 7


class UpsampleNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_pre = nn.Conv1d(8, 64, 5, padding=2)
        self.ups = nn.ModuleList([nn.ConvTranspose1d(64, 32, 8, 4, 2), nn.ConvTranspose1d(32, 16, 8, 4, 2)])
        self.conv_post = nn.Conv1d(16, 1, 5, padding=2)

    def forward(self, x):
        x = self.conv_pre(x)
        for up in self.ups:
            x = up(F.leaky_relu(x, 0.1))
        return torch.tanh(self.conv_post(x))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = UpsampleNet()
    opt = torch.optim.AdamW(model.parameters(), 2e-4)
    scaler = torch.amp.GradScaler("cpu")
    for step in range(1, STEPS + 1):
        x = torch.randn(2, 8, 16)
        y = torch.sin(torch.linspace(0, 20, 256)).expand(2, 1, 256)
        if step == FAULT_STEP:
            with torch.no_grad():
                model.ups[1].weight.mul_(2.0 ** 19)
        with torch.autocast("cpu", dtype=torch.float16):
            y_hat = model(x)
            loss = F.l1_loss(y_hat.float(), y)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        print([loss.item(), step, scaler.get_scale()], flush=True)


if __name__ == "__main__":
    main()
