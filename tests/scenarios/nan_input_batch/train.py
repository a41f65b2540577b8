"""Scenario: NaN in one input batch.

The feature batch of step 4 holds one NaN (a corrupt frame from preprocessing).  The model is
fine: the first non-finite value is in the data entering SpeakerClassifier at step 4.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

FAULT_STEP = 4
STEPS = 6


class SpeakerClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(10, 16, 3, padding=1)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(-1))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = SpeakerClassifier()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    for step in range(1, STEPS + 1):
        x = torch.randn(4, 10, 20)
        if step == FAULT_STEP:
            x[1, 3, 7] = float("nan")
        loss = F.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        print([loss.item(), step], flush=True)


if __name__ == "__main__":
    main()
