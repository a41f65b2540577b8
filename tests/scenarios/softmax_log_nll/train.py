"""Scenario: a classifier whose loss takes the log of softmax probabilities by hand
(`-torch.log(torch.softmax(logits, -1)).gather(...)`) instead of `log_softmax`: a loss written
with plain functions, outside any module.

The batch of step 3 holds one sample whose features are 1000x too large (a unit mix-up): its
logits differ by thousands, softmax rounds the other classes' probabilities to exactly 0, and
log(0) = -inf for the target class of that sample. The first non-finite value is the loss at
step 3, made by `aten::log` of 0: division by zero (a pole at zero) in the loss computation,
pinned from the autograd graph; the model's outputs were finite. fp32 throughout.
"""
import torch
import torch.nn as nn

FAULT_STEP = 3


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 5))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(1, 6):
        x = torch.randn(16, 12)
        target = torch.randint(0, 5, (16,))
        if step == FAULT_STEP:
            x[9] *= 1000.0
            with torch.no_grad():
                target[9] = int(model(x[9:10]).argmin())  # the class softmax sends to 0
        probs = torch.softmax(model(x), dim=-1)
        loss = -torch.log(probs).gather(1, target[:, None]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(step, round(loss.item(), 5), flush=True)


if __name__ == "__main__":
    main()
