"""A small seeded training script that knows nothing of nantrace (used by the integration
tests). Prints one line per step: `step N loss <repr>`.

    --steps N          iterations (default 6)
    --nan-input-at N   put a NaN into the batch of step N
    --overflow-at N    make the encoder's exp() overflow fp16 from step N
    --exit N           sys.exit(N) after training
"""
import argparse
import sys

import torch
import torch.nn as nn


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(16, 32)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        m, logs = self.proj(self.drop(x)).chunk(2, dim=-1)
        return m + torch.randn_like(m) * torch.exp(logs)


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.ups = nn.ModuleList([nn.Linear(16, 16), nn.Linear(16, 16)])
        self.act = nn.ReLU(inplace=True)

    def forward(self, z):
        for u in self.ups:
            z = self.act(u(z))
        return z


class TinyTrain(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = Encoder()
        self.dec = Decoder()

    def forward(self, x):
        return self.dec(self.enc(x))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--nan-input-at", type=int, default=0)
    p.add_argument("--overflow-at", type=int, default=0)
    p.add_argument("--exit", type=int, default=0)
    a = p.parse_args()
    torch.manual_seed(1234)
    model = TinyTrain()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)
    for step in range(1, a.steps + 1):
        x = torch.randn(8, 16)
        if step == a.nan_input_at:
            x[3, 5] = float("nan")
        if step == a.overflow_at:
            with torch.no_grad():
                model.enc.proj.bias[16:].fill_(40.0)  # exp(40) > 65504
        with torch.autocast("cpu", dtype=torch.float16):
            y = model(x)
        loss = (y.float() - 0.5).abs().mean()
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        print("step %d loss %r" % (step, float(loss.detach())), flush=True)
    if a.exit:
        sys.exit(a.exit)


if __name__ == "__main__":
    main()
