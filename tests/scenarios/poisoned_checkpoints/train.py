"""Scenario: a corrupt clip enters at epoch 3, and the script keeps saving a checkpoint each
epoch through the fault (as GPT-SoVITS's s2_train.py saves G_*.pth).

A duration curriculum: epochs 1-2 train on the six short clips (clip_00-05), from epoch 3 the
loader also takes the four long ones (clip_06-09). clip_07 holds a NaN. Batches of 2 in list
order, so epochs 1-2 are steps 1-3 and 4-6, epoch 3 is steps 7-11 and its batch 4 (items 6-7)
at step 10 carries clip_07 as sample 1: bad input at step 10, epoch 3. SGD then writes NaN into
every weight and momentum buffer. `ckpt/G_<epoch>.pth` (model and optimizer state: 4 weights
and biases, 4 momentum buffers) is saved after steps 3, 6, 11 and 16: G_1 and G_2 are clean,
G_2 is the one to resume from, G_3 and G_4 hold NaN in all 8 tensors, and G_4 is the newest of
ckpt/G_*.pth. The same clip comes back at step 15 (epoch 4).
"""
import glob
import os

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset


class Clips(Dataset):
    def __init__(self, clips):
        self.all = clips           # (path, seconds)
        self.files = []
        self.set_max_seconds(2.0)

    def set_max_seconds(self, s):
        self.files = [p for p, d in self.all if d <= s]

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        return torch.from_numpy(np.load(self.files[i]))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, clip):
        return self.body(clip)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    os.makedirs("clips", exist_ok=True)
    os.makedirs("ckpt", exist_ok=True)
    rng = np.random.default_rng(0)
    clips = []
    for i in range(10):
        x = rng.standard_normal(6).astype(np.float32)
        if i == 7:
            x[2] = np.nan  # the corrupt long clip
        p = "clips/clip_%02d.npy" % i
        np.save(p, x)
        clips.append((p, 1.0 if i < 6 else 5.0))
    ds = Clips(clips)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    start = 1
    saved = sorted(glob.glob("ckpt/G_*.pth"), key=lambda f: int("".join(filter(str.isdigit, f))))
    if saved:  # resume from the newest, as s2_train.py does
        ck = torch.load(saved[-1])
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start = ck["epoch"] + 1
    step = 0
    for epoch in range(start, 5):
        if epoch == 3:
            ds.set_max_seconds(10.0)  # the long clips join
        for clip in DataLoader(ds, batch_size=2, shuffle=False):
            step += 1
            loss = (model(clip) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            print([epoch, step, loss.item()], flush=True)
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch},
                   "ckpt/G_%d.pth" % epoch)


if __name__ == "__main__":
    main()
