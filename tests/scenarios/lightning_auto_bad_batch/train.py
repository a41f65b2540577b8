"""Scenario: Lightning 2.x automatic optimization, where Lightning runs the training step and
backward inside `optimizer.step(closure)`.

A regressor on a TensorDataset of 40 rows, batches of 4 in order, 8 steps. Row 17 holds a
missing value read as NaN: it is sample 1 of the batch of step 5 (items 16-19). The finding is
bad input at step 5, in the batch tensor the forward calls `feats`, and the run has 8 steps.
"""
import lightning as L
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class Reg(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, feats):
        return self.net(feats)

    def training_step(self, batch, i):
        f, y = batch
        loss = ((self(f) - y) ** 2).mean()
        print("step", self.global_step + 1, round(loss.item(), 5), flush=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x = torch.randn(40, 6)
    x[17, 2] = float("nan")
    ds = TensorDataset(x, torch.randn(40, 1))
    trainer = L.Trainer(max_steps=8, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Reg(), DataLoader(ds, batch_size=4))


if __name__ == "__main__":
    main()
