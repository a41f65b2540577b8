"""Scenario: activation checkpointing with `torch.utils.checkpoint.checkpoint(use_reentrant=True)`,
which runs each block's forward under no_grad in the forward pass and again with grad inside
backward. Those no_grad forwards are training, not evaluation.

A 3-block MLP under fp16 autocast; each block gates its output with `exp(0.5 * gate(h))`,
written as a function in its forward. Before step 3 the gate bias of the second block
(`Deep/blocks.1.gate`) is set to 30 (as one bad update would): exp(15 + small) is about 3e6,
beyond fp16's 65504, so exp overflows inside `Deep/blocks.1`. The finding is fp16 overflow at
step 3 in the forward of `Deep/blocks.1`, op `aten::exp`; the run has 4 steps.
"""
import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

FAULT_STEP = 3


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.gate = nn.Linear(d, d)

    def forward(self, h):
        return torch.tanh(self.fc(h)) * torch.exp(0.5 * self.gate(h)) * 0.1


class Deep(nn.Module):
    def __init__(self, d=16):
        super().__init__()
        self.blocks = nn.ModuleList(Block(d) for _ in range(3))
        self.head = nn.Linear(d, 1)

    def forward(self, x):
        for b in self.blocks:
            x = checkpoint(b, x, use_reentrant=True)
        return self.head(x)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = Deep()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    for step in range(1, 5):
        x = torch.randn(8, 16, requires_grad=True)  # reentrant checkpointing needs an input that requires grad
        if step == FAULT_STEP:
            with torch.no_grad():
                model.blocks[1].gate.bias.fill_(30.0)
        with torch.autocast("cpu", dtype=torch.float16):
            loss = model(x).float().pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(step, round(loss.item(), 5), flush=True)


if __name__ == "__main__":
    main()
