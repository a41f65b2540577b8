"""A training script that watches itself: its own per-module forward pre-hooks, forward hooks
and full backward hooks, a global forward hook, BatchNorm running statistics, dropout (RNG),
a warning torch raises in autograd.grad with stacklevel=2, and a fault planted at step 3 (an
exp that overflows float32), after which the replay and evidence of nantrace run. It prints
what its hooks counted and recorded; test_host_untouched.py compares its bytes with and without
nantrace."""
import warnings

import torch
import torch.nn as nn

warnings.simplefilter("always")
torch.manual_seed(0)
torch.set_num_threads(1)
counts = {"pre": 0, "fwd": 0, "bwd": 0, "global": 0}
stats = []


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.bn = nn.BatchNorm1d(8)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(8, 1)

    def forward(self, x, boost=1.0):
        h = self.drop(self.bn(self.fc1(x)))
        return self.fc2(torch.exp(h * boost))


model = Net()
model.fc1.register_forward_pre_hook(lambda m, a: counts.__setitem__("pre", counts["pre"] + 1))
model.bn.register_forward_hook(lambda m, a, o: (counts.__setitem__("fwd", counts["fwd"] + 1),
                                                stats.append(round(float(o.detach().abs().max()), 4)))[0])
model.fc2.register_full_backward_hook(lambda m, gi, go: counts.__setitem__("bwd", counts["bwd"] + 1))
h = nn.modules.module.register_module_forward_hook(lambda m, a, o: counts.__setitem__("global", counts["global"] + 1))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for step in range(1, 6):
    x = torch.randn(16, 6)
    loss = model(x, 300.0 if step == 3 else 1.0).pow(2).mean()  # exp overflows at step 3
    opt.zero_grad()
    loss.backward()
    (g,) = torch.autograd.grad(model(x).sum(), [model.fc2.bias], only_inputs=False)
    opt.step()
    print(step, loss.item(), g.tolist(), dict(counts), stats[-1], flush=True)
h.remove()
print("running_mean", [round(v, 5) for v in model.bn.running_mean.tolist()])
print("rng", torch.rand(3).tolist())
