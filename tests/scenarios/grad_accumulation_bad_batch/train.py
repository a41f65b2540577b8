"""Scenario: gradient accumulation, four micro-batches per optimizer step, the loss divided by
the number of micro-batches as the usual recipe does, fp16 autocast and GradScaler.

A DataLoader of 96 rows in order, micro-batches of 4: step k trains on micro-batches 4k-3 ...
4k. Row 41 holds +inf (an overflowed feature): it is sample 1 of micro-batch 11 (rows 40-43),
the third micro-batch of step 3. The first non-finite value is that micro-batch entering
`Tabular`: bad input at step 3, and the run has 6 steps (one per optimizer step, not one per
micro-batch). GradScaler skips step 3; training goes on.
"""
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

ACCUMULATE = 4


class Tabular(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(10, 32), nn.GELU(), nn.Linear(32, 1))

    def forward(self, features):
        return self.body(features)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x = torch.randn(96, 10)
    x[41, 7] = float("inf")
    y = x[:, :1].clone().nan_to_num(posinf=0.0)
    model = Tabular()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 8)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    opt.zero_grad()
    for i, (f, t) in enumerate(loader, 1):
        with torch.autocast("cpu", dtype=torch.float16):
            loss = nn.functional.mse_loss(model(f).float(), t) / ACCUMULATE
        scaler.scale(loss).backward()
        if i % ACCUMULATE == 0:
            scaler.step(opt)
            scaler.update()
            opt.zero_grad()
            print("step", i // ACCUMULATE, round(loss.item(), 5), flush=True)


if __name__ == "__main__":
    main()
