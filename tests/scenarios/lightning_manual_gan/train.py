"""Scenario: Lightning 2.x manual optimization (`automatic_optimization = False`): a GAN whose
training_step steps the discriminator's and the generator's optimizers by hand
(`self.optimizers()`, `self.manual_backward`, `opt.step()`), calling its submodules directly
(the LightningModule itself is never called).

48 real samples in order, batches of 8, one epoch: 6 iterations, each with two optimizer steps
(one iteration is one step). Row 29 holds +inf (a corrupt sample): it is sample 5 of the batch
of step 4 (items 24-31). The first non-finite value is that batch entering
`GAN/discriminator`: bad input at step 4, and the run has 6 steps.
"""
import lightning as L
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class GAN(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.generator = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8))
        self.discriminator = nn.Sequential(nn.Linear(8, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))

    def training_step(self, batch, i):
        (real,) = batch
        opt_g, opt_d = self.optimizers()
        z = torch.randn(real.shape[0], 4)
        fake = self.generator(z)
        # discriminator
        d_loss = nn.functional.softplus(-self.discriminator(real)).mean() + nn.functional.softplus(self.discriminator(fake.detach())).mean()
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        # generator
        g_loss = nn.functional.softplus(-self.discriminator(fake)).mean()
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()
        print("iteration", i + 1, round(d_loss.item(), 5), round(g_loss.item(), 5), flush=True)

    def configure_optimizers(self):
        return (torch.optim.Adam(self.generator.parameters(), 1e-3),
                torch.optim.Adam(self.discriminator.parameters(), 1e-3))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    real = torch.randn(48, 8)
    real[29, 5] = float("inf")  # a corrupt real sample: row 29 = sample 5 of batch 4 (items 24-31)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(GAN(), DataLoader(TensorDataset(real), batch_size=8))


if __name__ == "__main__":
    main()
