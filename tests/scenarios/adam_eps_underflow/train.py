"""Scenario: Adam eps underflow with a pure-fp16 model and optimizer state.

model.half() puts the weights, and so Adam's exp_avg / exp_avg_sq, in float16.  Adam's default
eps=1e-8 is below half of fp16's smallest subnormal (5.96e-8), so sqrt(v) + eps rounds back to
sqrt(v).  Where a gradient is small, (1 - beta2) * g^2 underflows to 0 in fp16 (|g| < ~7.7e-3),
v = 0, and the update divides exp_avg by 0: +-inf written into the weights by the very first
optimizer step.  The encoder layer (tiny gradients: its input features are scaled by 1e-2) is
hit; the head's gradients are large enough to survive.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

STEPS = 3


class HalfRegressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(8, 16)
        self.head = nn.Linear(16, 1)

    def forward(self, x):
        return self.head(torch.tanh(self.encoder(x)))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = HalfRegressor().half()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)  # eps=1e-8: 0 in fp16
    for step in range(1, STEPS + 1):
        x = (0.01 * torch.randn(16, 8)).half()
        y = torch.full((16, 1), 4.0, dtype=torch.float16)
        loss = F.mse_loss(model(x).float(), y.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        print([loss.item(), step], flush=True)


if __name__ == "__main__":
    main()
