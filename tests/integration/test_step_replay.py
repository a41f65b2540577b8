"""NANTRACE_EVERY=4: a fault on a step whose module checks were sampled out is located at that
very step by re-running its forward (the step replay), and the host sees nothing of it.

Each script plants one fault at step 6 (steps 1, 5, 9 are the checked ones) and prints, after
training, what a re-run of the user's modules would change: the model's forward counter, the
calls of the script's own global and per-module hooks, a BatchNorm's running mean and the RNG
state. Its stdout must be identical with and without nantrace, and the finding must name the
planted module and op (or, for a loss made outside the modules, the loss and its op) at step 6.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import nt_harness as H  # noqa: E402

COMMON = r'''
import torch, torch.nn as nn, torch.nn.functional as F
from torch.nn.modules import module as M
FAULT_STEP = 6
seen = {"global": 0, "own": 0, "ours": None}


def global_hook(m, a, o):
    seen["global"] += 1


def own_hook(m, a, o):
    seen["own"] += 1


M.register_module_forward_hook(global_hook)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.pre = nn.Linear(8, 16)
        self.proj = nn.Linear(16, 16)

    def forward(self, x):
        return torch.exp(self.proj(torch.tanh(self.pre(x))))


MAIN = [None]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0
        self.norm = nn.BatchNorm1d(8)
        self.enc = Encoder()
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(16, 1)

    def forward(self, x):
        self.calls += 1
        # Whether nantrace's global module hook is registered while the script's own forward
        # runs (a step replay runs a copy of the model: not counted).
        if self is MAIN[0]:
            seen["ours"] = any(getattr(h, "__module__", "") == "nantrace_torch._modules"
                               for h in M._global_forward_pre_hooks.values())
        return self.head(self.drop(self.enc(self.norm(x))))


torch.manual_seed(0)
torch.set_num_threads(1)
model = Net()
MAIN = [model]
model.head.register_forward_hook(own_hook)
opt = torch.optim.SGD(model.parameters(), 1e-3)
'''

MODULE_FAULT = COMMON + r'''
import copy, pickle, sys
scaler = torch.amp.GradScaler("cpu")
for step in range(1, 9):
    if step == 3:  # a sampled-out step: the root holds nantrace's own hooks now
        blob = pickle.dumps(model)
        twin = copy.deepcopy(model)
    x, y = torch.randn(16, 8), torch.randn(16, 1)
    if step == FAULT_STEP:
        with torch.no_grad():
            model.enc.proj.bias += 12.0   # exp of > 11.09 overflows float16
    with torch.autocast("cpu", dtype=torch.float16):
        loss = F.mse_loss(model(x).float(), y)
    opt.zero_grad()
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    sys.stderr.write("GLOBAL_HOOKS %d %d\n" % (step, seen.pop("ours")))
    print(step, loss.item(), flush=True)
print("calls", model.calls, "hooks", seen["global"], seen["own"], "bn", float(model.norm.running_mean.sum()),
      "rng", float(torch.get_rng_state().float().sum()), "next", float(torch.rand(1)))
twin.eval()
print("twin", twin.calls, float(twin(torch.ones(2, 8)).sum()))
with open("model.pkl", "wb") as f:
    f.write(blob)
'''

LOSS_FAULT = COMMON + r'''
aux = nn.Linear(8, 1)  # a second root model
for step in range(1, 9):
    x, y = torch.randn(16, 8), torch.randn(16, 1)
    if step == 3:  # a sampled-out step: TorchScript compiles the root with its hooks
        print("scripted", float(torch.jit.script(aux)(torch.ones(1, 8)).sum()))
    out = model(x) + 0.0 * aux(x)
    frac = torch.sigmoid(out).mean() * (0.0 if step == FAULT_STEP else 1.0)
    loss = F.mse_loss(out, y) - 0.01 * torch.log(frac)   # log(0) at the fault step
    opt.zero_grad()
    if torch.isfinite(loss):
        loss.backward()
        opt.step()
    else:
        loss.backward()  # the NaN loss reaches backward; the step is skipped by hand
    print(step, loss.item(), flush=True)
print("calls", model.calls, "hooks", seen["global"], seen["own"], "bn", float(model.norm.running_mean.sum()),
      "rng", float(torch.get_rng_state().float().sum()), "next", float(torch.rand(1)))
'''

# Every step checked (the default), with a TorchScript module called as a root of its own: its
# forward has no Python signature, which once disabled the module hooks for the whole run.
SCRIPTED_ROOT = COMMON + r'''
scripted = torch.jit.script(nn.Linear(8, 8))
for step in range(1, 9):
    x, y = torch.randn(16, 8), torch.randn(16, 1)
    if step == FAULT_STEP:
        with torch.no_grad():
            model.enc.proj.bias += 12.0
    with torch.autocast("cpu", dtype=torch.float16):
        loss = F.mse_loss(model(scripted(x)).float(), y)
    opt.zero_grad()
    loss.backward()
    if torch.isfinite(loss):
        opt.step()
    print(step, loss.item(), flush=True)
'''

# NANTRACE_EVERY=auto (the default), 20 steps, the fault at step 13: fast steps (a few ms) are
# checked every step up to 9, then every 16th (17); slow ones (30 ms, a sleep in each step)
# stay checked at every step.
AUTO = COMMON.replace("FAULT_STEP = 6", "FAULT_STEP = 13") + r'''
import time
for step in range(1, 21):
    x, y = torch.randn(16, 8), torch.randn(16, 1)
    if step == FAULT_STEP:
        with torch.no_grad():
            model.enc.proj.bias += 12.0
    with torch.autocast("cpu", dtype=torch.float16):
        loss = F.mse_loss(model(x).float(), y)
    time.sleep(SLEEP)
    opt.zero_grad()
    loss.backward()
    if torch.isfinite(loss):
        opt.step()
    print(step, loss.item(), flush=True)
'''

CASES = [
    ("auto_fast", AUTO.replace("SLEEP", "0.0"),
     {"found": True, "kind": "fp16_overflow", "step": 13, "origin_step": 13, "located_at_step": 13,
      "phase": "forward", "module_path": "Net/enc", "op": "aten::exp"}),
    ("auto_slow", AUTO.replace("SLEEP", "0.03"),
     {"found": True, "kind": "fp16_overflow", "step": 13, "origin_step": 13, "first_seen": None,
      "phase": "forward", "module_path": "Net/enc", "op": "aten::exp"}),
    ("scripted_root", SCRIPTED_ROOT,
     {"found": True, "kind": "fp16_overflow", "step": 6, "origin_step": 6, "phase": "forward",
      "module_path": "Net/enc", "op": "aten::exp", "first_seen": None}),
    ("module_fault", MODULE_FAULT,
     {"found": True, "kind": "fp16_overflow", "step": 6, "origin_step": 6, "located_at_step": 6,
      "phase": "forward", "module_path": "Net/enc", "op": "aten::exp"}),
    ("loss_fault", LOSS_FAULT,
     {"found": True, "step": 6, "origin_step": 6, "phase": "loss", "op": "aten::log", "first_seen": None}),
]


def main():
    a = H.parse_args()
    failures = []
    for tag, source, expected in CASES:
        every = {"scripted_root": {"NANTRACE_EVERY": "1"}, "auto_fast": {}, "auto_slow": {}}.get(
            tag, {"NANTRACE_EVERY": "4"})
        tmp, out, script, proc = H.run_inline(a, "step-replay-" + tag, source, **every)
        plain = H.run([a.python, script], H.base_env(), cwd=tmp)
        if proc.returncode != 0 or plain.returncode != 0:
            H.fail("%s: exit status under nantrace %d, plain %d" % (tag, proc.returncode, plain.returncode), proc)
            return 1
        if proc.stdout != plain.stdout:
            failures.append("%s: stdout differs with nantrace:\n%s\n--- plain ---\n%s" % (
                tag, proc.stdout.decode(), plain.stdout.decode()))
        report = H.load_report(H.run_dir_of(proc, out))
        for m in H.subset_mismatches(expected, report.get("finding", {}), tag + ".finding"):
            failures.append(m)
        err = proc.stderr.decode("utf-8", "replace")
        if "internal error" in err:
            failures.append("%s: a hook of nantrace failed:\n%s" % (tag, err))
        sampling = [n for n in report.get("notes", []) if n.startswith("Check sampling: steps 2-9 took")]
        if tag.startswith("auto_") and bool(sampling) != (tag == "auto_fast"):
            failures.append("%s: the notes %s the auto sampling note: %r" % (
                tag, "lack" if tag == "auto_fast" else "hold", report.get("notes")))
        if tag == "auto_fast" and sampling and "from step 10 on" not in sampling[0]:
            failures.append("%s: sampling should begin at step 10: %r" % (tag, sampling[0]))
        if tag == "module_fault":
            if "origin located by re-running the step's forward" not in err:
                failures.append("%s: stderr does not announce the step replay:\n%s" % (tag, err))
            # Steps 1 and 5 are checked (global hooks); 2-4 sampled out (the roots' own hooks);
            # from the fault at 6 on, module checks stay on.
            hooks = [ln.split()[1:] for ln in err.splitlines() if ln.startswith("GLOBAL_HOOKS ")]
            want = [[str(n), "1" if n in (1, 5, 7, 8) else "0"] for n in range(1, 9)]
            if hooks != want:
                failures.append("%s: nantrace's global hooks per step %r, expected %r" % (tag, hooks, want))
            # The model pickled under nantrace on a sampled-out step loads and runs where nantrace
            # is not (its classes defined as the script defines them, in __main__).
            load = H.run([a.python, "-c", "exec(open('train.py').read().split('torch.manual_seed(0)')[0]); "
                          "import pickle; m = pickle.load(open('model.pkl', 'rb')); m.eval(); "
                          "print(float(m(torch.ones(2, 8)).sum()))"], H.base_env(), cwd=tmp)
            if load.returncode != 0:
                failures.append("%s: the model pickled under nantrace does not load without it:\n%s" % (
                    tag, load.stderr.decode("utf-8", "replace")[-2000:]))
    for f in failures:
        sys.stderr.write("FAIL: %s\n" % f)
    if not failures:
        print("ok: both faults located at their own step; host stdout, counters, hooks, buffers and RNG unchanged")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
