"""Scenario: two models trained together with the script's own code between them: an Encoder
gives (mu, logvar), the training loop samples z = mu + exp(0.5 * logvar) * eps, and a Decoder
reconstructs from z (a VAE written as two modules, as many repositories do).

At step 3 the encoder's log-variance of that batch is scaled by 400 (as one diverged batch
would): exp(0.5 * logvar) overflows float32 in the loop's own code, so the batch `z` entering
`Decoder` holds Inf although every module output before it was finite. That is not bad data:
the finding is a float32 overflow at step 3 in the code that computes `z` for `Decoder`, op
`aten::exp`, read from z's autograd graph.
"""
import torch
import torch.nn as nn

FAULT_STEP = 3


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 8))

    def forward(self, x):
        return self.net(x).chunk(2, dim=-1)


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 8))

    def forward(self, z):
        return self.net(z)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    enc, dec = Encoder(), Decoder()
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=1e-3)
    for step in range(1, 6):
        x = torch.randn(32, 8)
        mu, logvar = enc(x)
        if step == FAULT_STEP:
            logvar = logvar * 400.0
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        loss = ((dec(z) - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(step, round(loss.item(), 5), flush=True)


if __name__ == "__main__":
    main()
