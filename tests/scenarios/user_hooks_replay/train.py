"""Scenario: a script that watches its own model: per-module forward hooks and a global forward
hook count calls and record the largest activation (and hook the gradient at each output), a
full backward hook counts gradients, and
one module prints a debug line from its forward. The script prints
its counts and records at the end: they must be the same with and without nantrace, whose
replay of the culprit re-runs that module's forward (on a copy, without the user's hooks, with
nothing printed).

fp32. Before step 3 the scale of `Net/energy` is set to 200 (as one bad update would): its
forward computes `exp(scale * h)` and overflows float32 (exp(200 * h) for |h| > 0.45). The
finding is an overflow at step 3 in the forward of `Net/energy`, op `aten::exp`.
"""
import torch
import torch.nn as nn

FAULT_STEP = 3


class Energy(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, h):
        print("debug: energy forward", tuple(h.shape), round(self.scale.item(), 1), flush=True)
        return torch.exp(self.scale * h)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(8, 16)
        self.energy = Energy()
        self.out = nn.Linear(16, 1)

    def forward(self, x):
        return self.out(self.energy(torch.tanh(self.inp(x))))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = Net()
    calls, largest, grads = {}, {}, [0]

    grad_seen = {}

    def count(name):
        def hook(mod, args, out):
            calls[name] = calls.get(name, 0) + 1
            largest[name] = max(largest.get(name, 0.0), float(out.detach().abs().nan_to_num(0.0).max()))
            if out.requires_grad:  # the script watches the gradient at this output too
                out.register_hook(lambda g: grad_seen.__setitem__(name, grad_seen.get(name, 0) + 1))
        return hook

    for name, m in model.named_modules():
        if name:
            m.register_forward_hook(count(name))
    model.energy.register_full_backward_hook(lambda m, gi, go: grads.__setitem__(0, grads[0] + 1))
    seen = [0]
    handle = nn.modules.module.register_module_forward_hook(lambda m, a, o: seen.__setitem__(0, seen[0] + 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for step in range(1, 5):
        x = torch.randn(16, 8)
        if step == FAULT_STEP:
            with torch.no_grad():
                model.energy.scale.fill_(200.0)
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(step, round(loss.item(), 5), flush=True)
    handle.remove()
    print("calls", sorted(calls.items()), "global", seen[0], "backward", grads[0], "grad hooks", sorted(grad_seen.items()))
    print("largest", sorted((k, round(v, 4)) for k, v in largest.items()))
    print("rng", round(float(torch.rand(())), 6))


if __name__ == "__main__":
    main()
