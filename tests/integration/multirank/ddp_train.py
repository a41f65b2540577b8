"""Two-rank DistributedDataParallel training on CPU (gloo) with a NaN planted in ONE rank's batch.

Knows nothing of nantrace. After the bad batch the NaN reaches every rank through the gradient
all-reduce, so every rank's own report shows a fault; only the merged view can name the rank
where it began (BAD_RANK) and its step and phase (BAD_STEP, input).

    python ddp_train.py spawn [--gan]     # torch.multiprocessing.spawn, 2 ranks
    torchrun --nproc_per_node 2 ddp_train.py torchrun [--gan]

--gan: GPT-SoVITS's shape - a generator and a discriminator, each in DDP, two AdamW optimizers,
one GradScaler (enabled, bf16 autocast: CPU autocast has no fp16 worth the name).
"""
import argparse
import os
import socket
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

STEPS = 6
BAD_RANK = 1
BAD_STEP = 3  # training steps are numbered from 1: the third iteration


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.act = nn.Tanh()
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.pre = nn.Linear(16, 32)
        self.post = nn.Linear(32, 8)

    def forward(self, x):
        return self.post(torch.relu(self.pre(x)))


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(8, 16)
        self.head = nn.Linear(16, 1)

    def score(self, x):
        return self.head(F.leaky_relu(self.body(x), 0.1))

    def forward(self, real, fake):
        # One call for both, as GPT-SoVITS's MultiPeriodDiscriminator(y, y_hat) does.
        return self.score(real), self.score(fake)


def batch(rank, step):
    g = torch.Generator().manual_seed(1000 * rank + step)
    x = torch.randn(8, 16, generator=g)
    y = torch.randn(8, 8, generator=g)
    if rank == BAD_RANK and step == BAD_STEP:
        x[2, 5] = float("nan")  # a corrupted sample in this rank's batch only
    return x, y


def train_plain(rank):
    torch.manual_seed(0)
    model = DDP(Net())
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(1, STEPS + 1):
        x, y = batch(rank, step)
        opt.zero_grad()
        loss = F.mse_loss(model(x), y[:, :4])
        loss.backward()
        opt.step()
        print("rank %d step %d loss %s" % (rank, step, loss.item()), flush=True)


def train_gan(rank):
    torch.manual_seed(0)
    net_g, net_d = DDP(Generator()), DDP(Discriminator())
    optim_g = torch.optim.AdamW(net_g.parameters(), lr=1e-3, betas=(0.8, 0.99), eps=1e-9)
    optim_d = torch.optim.AdamW(net_d.parameters(), lr=1e-3, betas=(0.8, 0.99), eps=1e-9)
    scaler = torch.amp.GradScaler("cpu", enabled=True)
    for step in range(1, STEPS + 1):
        x, y = batch(rank, step)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y_hat = net_g(x)
            d_real, d_fake = net_d(y, y_hat.detach())
            loss_d = torch.mean((1 - d_real.float()) ** 2) + torch.mean(d_fake.float() ** 2)
        optim_d.zero_grad()
        scaler.scale(loss_d).backward()
        scaler.unscale_(optim_d)
        scaler.step(optim_d)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            _, d_fake = net_d(y, y_hat)
            loss_g = torch.mean((1 - d_fake.float()) ** 2) + F.l1_loss(y_hat.float(), y)
        optim_g.zero_grad()
        scaler.scale(loss_g).backward()
        scaler.unscale_(optim_g)
        scaler.step(optim_g)
        scaler.update()
        print("rank %d step %d loss_d %s loss_g %s" % (rank, step, loss_d.item(), loss_g.item()), flush=True)


def run(rank, world, init_method, gan):
    dist.init_process_group("gloo", rank=rank, world_size=world, init_method=init_method)
    try:
        (train_gan if gan else train_plain)(rank)
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("launch", choices=["spawn", "torchrun"])
    p.add_argument("--gan", action="store_true")
    a = p.parse_args()
    if a.launch == "spawn":
        init = "tcp://127.0.0.1:%d" % free_port()
        mp.spawn(run, args=(2, init, a.gan), nprocs=2, join=True)
    else:
        run(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), "env://", a.gan)
    return 0


if __name__ == "__main__":
    sys.exit(main())
