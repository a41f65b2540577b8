"""Scenario: division by a zero length in a masked mean pooling layer.

StyleEncoder pools frames with a masked mean, sum(x * mask) / length, as GPT-SoVITS's
MelStyleEncoder.temporal_avg_pool does.  The batch of step 4 holds an empty sample (length 0):
its masked sum is exactly 0, and 0 / 0 gives NaN (IEEE invalid operation) in aten::div inside
SpeakerNet/pool's forward.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

FAULT_STEP = 4
STEPS = 6


class MaskedMeanPool(nn.Module):
    def forward(self, x, lengths):
        mask = (torch.arange(x.shape[-1]).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(1).to(x.dtype)
        return (x * mask).sum(-1) / lengths.unsqueeze(1)  # no guard for length 0: the planted fault


class SpeakerNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(10, 16, 3, padding=1)
        self.pool = MaskedMeanPool()
        self.head = nn.Linear(16, 4)

    def forward(self, x, lengths):
        return self.head(self.pool(torch.relu(self.conv(x)), lengths))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = SpeakerNet()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    for step in range(1, STEPS + 1):
        x = torch.randn(3, 10, 20)
        lengths = torch.tensor([20, 15, 9])
        if step == FAULT_STEP:
            lengths[2] = 0  # an empty sample
        labels = torch.tensor([0, 1, 2])
        loss = F.cross_entropy(model(x, lengths), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print([loss.item(), step], flush=True)


if __name__ == "__main__":
    main()
