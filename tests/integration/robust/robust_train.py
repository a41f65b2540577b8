"""A small seeded fp16-autocast training script for the robustness tests. It knows nothing of
nantrace. One line per printed step on stdout: `step N loss <repr>`.

    --steps N           iterations (default 6)
    --print-every K     print the loss line every K steps (default 1)
    --sleep S           sleep S seconds after each step (to give a test time to signal us)
    --fault-at N        step N's batch is scaled by 1e5: Linear's fp16 output overflows once
    --end WHAT          how the script ends after training (or at --end-at):
                        normal | exit3 | raise | os_exit5 | segv | abort
    --end-at N          end (as --end says) right after step N instead of after training
    --workers N         batches come from a DataLoader with N workers (0: in the main process)
    --mp fork|spawn     the DataLoader's multiprocessing_context
    --rss-at A,B        print `rss step N kib K` (VmRSS of this process) after steps A, B, ...
    --hidden H          hidden width (default 32)
"""
import argparse
import os
import signal
import sys
import time

import torch
import torch.nn as nn


class RandomBatches(torch.utils.data.Dataset):
    """Deterministic batches: item i is seeded by i alone, so workers and the main process
    produce the same data (module level so that spawn can pickle it)."""

    def __init__(self, n, dim):
        self.n, self.dim = n, dim

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(1000 + i)
        return torch.randn(8, self.dim, generator=g), torch.randn(8, 1, generator=g)


class Net(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def vm_rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def end_now(what):
    if what == "exit3":
        sys.exit(3)
    if what == "raise":
        raise RuntimeError("planted uncaught exception")
    if what == "os_exit5":
        sys.stdout.flush()
        os._exit(5)
    if what == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(5)  # the signal is delivered before this returns
    if what == "abort":
        os.abort()


def batches(a, dim):
    n = a.steps
    if a.workers > 0:
        # Finite length (a worker per epoch); iterated again for long runs.
        data = RandomBatches(min(n, 64), dim)
        loader = torch.utils.data.DataLoader(data, batch_size=None, shuffle=False, num_workers=a.workers,
                                             multiprocessing_context=a.mp, persistent_workers=False)
        while True:
            for b in loader:
                yield b
    else:
        data = RandomBatches(min(n, 64), dim)
        cached = [data[i] for i in range(len(data))]  # long runs: no per-step data cost
        while True:
            for b in cached:
                yield b


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--print-every", type=int, default=1)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--fault-at", type=int, default=0)
    p.add_argument("--end", default="normal")
    p.add_argument("--end-at", type=int, default=0)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--mp", default=None)
    p.add_argument("--rss-at", default="")
    p.add_argument("--hidden", type=int, default=32)
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(1234)
    dim = 16
    rss_at = {int(s) for s in a.rss_at.split(",") if s}
    model = Net(dim, a.hidden)
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)
    it = batches(a, dim)
    for step in range(1, a.steps + 1):
        x, y = next(it)
        if step == a.fault_at:
            x = x * 1e5  # finite fp32, beyond fp16's range once autocast casts it
        with torch.autocast("cpu", dtype=torch.float16):
            out = model(x)
        loss = (out.float() - y).pow(2).mean()
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if step % a.print_every == 0:
            print("step %d loss %r" % (step, float(loss.detach())), flush=True)
        if step in rss_at:
            print("rss step %d kib %d" % (step, vm_rss_kib()), flush=True)
        if a.sleep:
            time.sleep(a.sleep)
        if a.end_at and step == a.end_at:
            end_now(a.end)
    end_now(a.end)


if __name__ == "__main__":
    main()
