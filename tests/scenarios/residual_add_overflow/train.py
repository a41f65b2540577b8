"""Scenario: fp16 overflow in a residual add, code between modules (HiFi-GAN ResBlock shape).

`ResBlock.forward` does `x = x + conv(leaky_relu(x))` twice. Before step 4 the block's input
scale is pushed up (as a diverging upstream layer would do) so that convs.0's output and x are
each finite in fp16 (|x| ~ 4e4) but their sum is not: +inf is born in `aten::add` inside
ResBlock's own forward, which no module hook sees. The first module output seen non-finite is
convs.1's, whose input is already inf. The expected finding: the origin is moved back to
`Vocoder/res` (ResBlock), op aten::add, fp16 overflow at step 4.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

FAULT_STEP = 4
STEPS = 6


class ResBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv1d(ch, ch, 3, padding=1), nn.Conv1d(ch, ch, 3, padding=1)])

    def forward(self, x):
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, 0.1))
        return x


class Vocoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.pre = nn.Conv1d(4, 8, 3, padding=1)
        self.res = ResBlock(8)
        self.post = nn.Conv1d(8, 1, 3, padding=1)

    def forward(self, x):
        return torch.tanh(self.post(self.res(self.pre(x))))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = Vocoder()
    with torch.no_grad():  # convs.0 an identity-like map: its output equals its input
        c0 = model.res.convs[0]
        c0.weight.zero_()
        c0.weight[:, :, 1] = torch.eye(8)
        c0.bias.zero_()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # only the planted fault changes anything
    scaler = torch.amp.GradScaler("cpu")
    for step in range(1, STEPS + 1):
        x = torch.rand(2, 4, 32) + 0.5
        if step >= FAULT_STEP:
            with torch.no_grad():
                model.pre.weight.fill_(0.0)
                model.pre.bias.fill_(40000.0)  # x ~ 4e4: leaky_relu(x) = x, convs.0(x) ~ 4e4, x + x = 8e4
        with torch.autocast("cpu", dtype=torch.float16):
            loss = model(x).float().pow(2).mean()
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        print([loss.item(), step], flush=True)


if __name__ == "__main__":
    main()
