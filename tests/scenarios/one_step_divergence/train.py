"""Scenario: a learning rate far too high blows the model up within one step (no history of
growth: the fault is at step 2).

A regressor predicts a positive scale as exp(logs), logs from a Linear head (as VAE-style
models compute exp(logs)). Adam at lr=50 (the usual is about 1e-3): its first update moves
every weight by about the learning rate (Adam's first step is lr * sign(grad)), some 350x the
norm of the weights (init ~U(-0.25, 0.25)). At step 2 the head's weights are about +-50, logs
reach the hundreds and `exp` overflows float32 to +inf in `Net/head`'s own forward: the first
non-finite value is Net/head's output at step 2, made by an update at step 1 whose
update-to-weight ratio was far above normal: divergence, not an fp32 overflow of the model.
"""
import torch
import torch.nn as nn


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(16, 8)

    def forward(self, h):
        return torch.exp(self.proj(h))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(16, 16)
        self.head = Head()

    def forward(self, x):
        return self.head(torch.tanh(self.enc(x)))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=50.0)
    for step in range(1, 5):
        x = torch.randn(32, 16)
        y = torch.rand(32, 8) + 0.5
        loss = (model(x) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        print([step, loss.item()], flush=True)


if __name__ == "__main__":
    main()
