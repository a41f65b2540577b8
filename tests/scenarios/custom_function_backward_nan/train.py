"""Scenario: a custom autograd.Function whose hand-written backward divides by zero.

`Normalize` scales each row to unit length. Its forward guards the norm (`n + 1e-6`), so it is
finite for any input; its hand-written backward divides by the bare norm `n`. At step 3 one
sample of the batch is all zeros (a padding row), so its row norm is 0: the backward of
`Net/norm` (node `NormalizeBackward`) makes Inf (g / 0) and NaN (0 / 0) in the gradient
w.r.t. its input, although the gradient arriving at its output is finite. The first
non-finite gradient is seen at `Net/proj`'s output (what `norm` consumed); the value was born
in `norm`'s backward. fp32 throughout, no loss scaler: the fault reaches the optimizer.
"""
import torch
import torch.nn as nn

FAULT_STEP = 3
STEPS = 5


class Normalize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        n = x.norm(dim=-1, keepdim=True)
        y = x / (n + 1e-6)
        ctx.save_for_backward(y, n)
        return y

    @staticmethod
    def backward(ctx, g):
        y, n = ctx.saved_tensors
        return (g - y * (g * y).sum(-1, keepdim=True)) / n  # the planted fault: no epsilon here


class RowNorm(nn.Module):
    def forward(self, x):
        return Normalize.apply(x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 16, bias=False)  # a zero input row stays a zero row
        self.norm = RowNorm()
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        return self.head(self.norm(self.proj(x)))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(1, STEPS + 1):
        x = torch.randn(4, 8)
        if step == FAULT_STEP:
            x[2] = 0.0  # a padding row
        target = torch.randn(4, 4)
        loss = ((model(x) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        print([round(loss.item(), 6), step], flush=True)


if __name__ == "__main__":
    main()
