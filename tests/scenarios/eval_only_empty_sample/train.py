"""Scenario: a NaN only in evaluation, never in training.

A sequence classifier with a masked mean pool (sum of valid frames / number of valid frames)
trains for 6 steps; after every second step it is evaluated on a validation batch, in eval
mode under torch.no_grad(), as validation loops do. Training batches always hold at least one
valid frame. The validation batch after step 4 holds a sample of length 0: its pool divides
0 by 0, so `Classifier/pool`'s output holds NaN there, in evaluation only. Training stays
finite: there is no training fault, and the evaluation finding is step 4, `Classifier/pool`.
"""
import torch
import torch.nn as nn

STEPS = 6
BAD_EVAL_AFTER = 4


class MaskedMeanPool(nn.Module):
    def forward(self, x, lengths):
        mask = (torch.arange(x.shape[1])[None, :] < lengths[:, None]).float()
        return (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)  # no guard for length 0


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(6, 16)
        self.pool = MaskedMeanPool()
        self.head = nn.Linear(16, 3)

    def forward(self, x, lengths):
        return self.head(self.pool(torch.relu(self.enc(x)), lengths))


def batch(lengths):
    lengths = torch.tensor(lengths)
    return torch.randn(len(lengths), 10, 6), lengths, torch.randint(0, 3, (len(lengths),))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = Classifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    for step in range(1, STEPS + 1):
        model.train()
        x, lengths, y = batch([10, 7, 3, 9])
        loss = loss_fn(model(x, lengths), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print("train", step, round(loss.item(), 6), flush=True)
        if step % 2 == 0:
            model.eval()
            with torch.no_grad():
                x, lengths, y = batch([8, 0, 5] if step == BAD_EVAL_AFTER else [8, 2, 5])
                val = loss_fn(model(x, lengths), y)
            print("val", step, round(val.item(), 6), flush=True)


if __name__ == "__main__":
    main()
