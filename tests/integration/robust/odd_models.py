"""Unusual but legal PyTorch code for the robustness tests; knows nothing of nantrace.
Each case prints its own lines `<case> ... <repr>` on stdout; run several in one process with
--cases a,b,c (order kept). Cases:

    weird_names      modules registered as 'we"ird\\nname' and a non-ASCII name; the weird
                     module's fp16 output overflows at step 2 (a planted fault)
    nontensor        forward returns a string, None, an int, a dataclass and a dict
    inplace_dropout  nn.ReLU(inplace=True) chains, x.add_() on module outputs, dropout
    nograd           training interleaved with a torch.no_grad() evaluation loop
    compiled         a torch.compile'd module trained a few steps
"""
import argparse
import dataclasses
import sys

import torch
import torch.nn as nn

WEIRD = 'we"ird\nname'
NON_ASCII = "dékodeur_名前"


class Weird(nn.Module):
    def __init__(self):
        super().__init__()
        self.add_module(WEIRD, nn.Linear(8, 8))
        self.add_module(NON_ASCII, nn.Linear(8, 1))

    def forward(self, x):
        return getattr(self, NON_ASCII)(torch.relu(getattr(self, WEIRD)(x)))


@dataclasses.dataclass
class Out:
    pred: torch.Tensor
    label: str


class NonTensor(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 1)

    def forward(self, x):
        return ("a string", None, 3, Out(self.fc(x), "pred"), {"n": 7, "t": x.sum()})


class InplaceDropout(nn.Module):
    """Linear -> ReLU(inplace) chains, in-place ops on module outputs, two dropouts."""

    def __init__(self):
        super().__init__()
        self.chain = nn.Sequential(nn.Linear(8, 16), nn.ReLU(inplace=True), nn.Dropout(0.3),
                                   nn.Linear(16, 16), nn.ReLU(inplace=True))
        self.fc = nn.Linear(16, 16)
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(16, 1)

    def forward(self, x):
        h = self.chain(x)
        h = self.fc(h)
        h.add_(1.0)                 # in place on a module output
        h = h + self.drop(h)
        h = nn.functional.relu(h, inplace=True)
        out = self.head(h)
        return out.mul_(0.5)        # in place on the model's own output


def train(case, model, steps, fp16=False, fault_at=0, get_pred=lambda o: o, seed_data=7):
    g = torch.Generator().manual_seed(seed_data)
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    for step in range(1, steps + 1):
        x = torch.randn(4, 8, generator=g)
        y = torch.randn(4, 1, generator=g)
        if step == fault_at:
            x = x * 1e5
        with torch.autocast("cpu", dtype=torch.float16, enabled=fp16):
            out = model(x)
        loss = (get_pred(out).float() - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        print("%s step %d loss %r" % (case, step, float(loss.detach())), flush=True)


def case_weird_names():
    train("weird_names", Weird(), 4, fp16=True, fault_at=2)


def case_nontensor():
    train("nontensor", NonTensor(), 3, get_pred=lambda o: o[3].pred)


def case_inplace_dropout(steps):
    train("inplace_dropout", InplaceDropout(), steps)


def case_nograd():
    model = InplaceDropout()
    train("nograd", model, 2)
    model.eval()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for i in range(4):
            print("nograd eval %d out %r" % (i, float(model(torch.randn(4, 8, generator=g)).sum())), flush=True)
    model.train()
    train("nograd", model, 2, seed_data=8)


def case_compiled():
    model = torch.compile(InplaceDropout().eval())
    train("compiled", model, 3)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cases", default="weird_names,nontensor,inplace_dropout,nograd")
    p.add_argument("--steps", type=int, default=3, help="steps of inplace_dropout")
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(1234)
    for c in a.cases.split(","):
        if c == "inplace_dropout":
            case_inplace_dropout(a.steps)
        else:
            globals()["case_" + c]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
