"""Training loops the overhead benchmark times (tools/bench_overhead.py --workload NAME).

Each is a healthy training loop written as users write it: `Workload(args).step(n)` runs one
training iteration and returns its losses as floats (`.item()` ends the step on every device).
Same seed, same data, so every variant trains the same numbers.

  demo         the bundled TinyVits demo: fp16 autocast, GradScaler, two AdamW (about 40 ms/step
               on the development machine's CPU)
  transformer  a Hugging Face GPT-2 built from a config (2 layers, width 128, random weights,
               nothing downloaded) on batches of 2 x 40 tokens, fp16 autocast, GradScaler, AdamW:
               about 10 ms/step on these CPUs, issue 17's fast step
  mlp          a 3-layer MLP (64 -> 256 -> 256 -> 1), batches of 128, Adam: about 1 ms/step
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# GradScaler's default 2**16 makes the demo's first scaled gradients overflow (benign skips),
# and detect_anomaly(check_nan=True) raises on those: start low enough that no step skips.
BENCH_INIT_SCALE = 2.0 ** 9


class Demo:
    def __init__(self, args):
        sys.path.insert(0, os.path.join(HERE, "demo"))
        import train_tiny_vits as demo
        self.t = demo.Trainer(demo.load_hparams(demo.DEFAULT_CONFIG), device=args.device, seed=1234, healthy=True,
                              init_scale=BENCH_INIT_SCALE)

    def step(self, n):
        return self.t.step(n)[:6]


class Transformer:
    def __init__(self, args):
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel
        from transformers.utils import logging as hf_logging
        hf_logging.set_verbosity_error()
        torch.manual_seed(0)
        cfg = GPT2Config(n_layer=2, n_head=4, n_embd=128, vocab_size=512, n_positions=64, bos_token_id=0,
                         eos_token_id=0)
        self.device = args.device
        self.model = GPT2LMHeadModel(cfg).to(args.device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.scaler = torch.amp.GradScaler(args.device, init_scale=BENCH_INIT_SCALE)
        g = torch.Generator().manual_seed(0)
        self.batches = [torch.randint(0, 512, (2, 40), generator=g).to(args.device) for _ in range(8)]

    def step(self, n):
        import torch
        ids = self.batches[n % len(self.batches)]
        with torch.autocast(self.device, dtype=torch.float16):
            out = self.model(input_ids=ids, labels=ids)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(out.loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        return [out.loss.item()]


class Mlp:
    def __init__(self, args):
        import torch
        import torch.nn as nn
        torch.manual_seed(0)
        self.model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                   nn.Linear(256, 1)).to(args.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(0)
        self.data = [(torch.randn(128, 64, generator=g).to(args.device), torch.randn(128, 1, generator=g).to(args.device))
                     for _ in range(8)]

    def step(self, n):
        import torch.nn.functional as F
        x, y = self.data[n % len(self.data)]
        loss = F.mse_loss(self.model(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return [loss.item()]


WORKLOADS = {"demo": Demo, "transformer": Transformer, "mlp": Mlp}


def make(name, args):
    return WORKLOADS[name](args)
