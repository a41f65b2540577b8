"""Scenario: one corrupt file in a dataset of files on disk, loaded with DataLoader workers.

The dataset keeps one path per item (`self.files`, as GPT-SoVITS's loader keeps
`audiopaths_sid_text`) and reads each with numpy. Twelve feature files are written at start;
`clip_07.npy` holds a NaN (a corrupt clip). A DataLoader with 2 workers, batches of 4 in
dataset order, feeds a small regressor for 2 epochs (3 steps each). The first non-finite value
is the batch of step 2 (items 4-7) entering `Regressor` as `feats`: bad input, its sample 3
being item 7, clips/clip_07.npy. The same clip comes back at step 5.
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset


class Clips(Dataset):
    def __init__(self, files):
        self.files = files

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        return torch.from_numpy(np.load(self.files[i])), torch.tensor([float(i % 3)])


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, feats):
        return self.net(feats)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    root = "clips"  # in the working directory
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(0)
    files = []
    for i in range(12):
        x = rng.standard_normal(6).astype(np.float32)
        if i == 7:
            x[3] = np.nan  # the corrupt clip
        path = os.path.join(root, "clip_%02d.npy" % i)
        np.save(path, x)
        files.append(path)
    loader = DataLoader(Clips(files), batch_size=4, shuffle=False, num_workers=2)
    model = Regressor()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    step = 0
    for epoch in range(2):
        for feats, target in loader:
            step += 1
            loss = ((model(feats) - target) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            print(epoch, step, round(loss.item(), 5), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
