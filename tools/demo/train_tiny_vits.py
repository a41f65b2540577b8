#!/usr/bin/env python3
"""Train TinyVits the way GPT-SoVITS's s2_train.py trains SynthesizerTrn.

fp16 autocast + one GradScaler, two AdamW optimizers (generator and discriminator),
D step then G step, one scaler.update() per iteration, one log line per step:

    [loss_disc, loss_gen, loss_fm, loss_mel, kl, loss_kl, global_step, lr]

Plain PyTorch: nothing here knows about any NaN checker.  See docs/demo.md for the
planted fault (an fp16 overflow of exp(logs) in enc_q) and the step at which it happens.
"""
import argparse
import json
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_vits as tv  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG = os.path.join(HERE, "configs", "s2.json")
# The planted fault is the learning rate in configs/s2.json: 0.02, 200x GPT-SoVITS's 1e-4.
# It lets the KL term drive enc_q's log-sigma past 11.09 so that exp(logs) overflows in
# float16 at step 16 (docs/demo.md).  --healthy trains the same model and data at 1e-4.
HEALTHY_LR = 1e-4
DEFAULT_STEPS = 20        # the fault (step 16) plus a few steps of nan losses


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=None, help="training steps (default: reach the fault plus a few)")
    p.add_argument("--healthy", action="store_true", help="same model and seed without the planted fault")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--seed", type=int, default=None, help="default: train.seed of the config")
    p.add_argument("--save-every", type=int, default=0, help="torch.save G_<step>.pth/D_<step>.pth every K steps")
    p.add_argument("--out", default=None, help="checkpoint directory (default: a new temporary directory)")
    p.add_argument("--config", default=DEFAULT_CONFIG, help="GPT-SoVITS s2.json-shaped config")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: reproducible and fast on small shared CPUs)")
    return p.parse_args(argv)


def load_hparams(path):
    with open(path) as f:
        return json.load(f)


class Trainer:
    """Everything one training run holds; step() is one s2_train.py iteration."""

    def __init__(self, hps, device="cpu", seed=1234, healthy=False, n_batches=4, init_scale=2.0 ** 16):
        train = hps["train"]
        self.device = device
        self.fp16_run = bool(train.get("fp16_run", True))
        self.lr = HEALTHY_LR if healthy else float(train.get("learning_rate", HEALTHY_LR))
        self.c_mel = float(train.get("c_mel", 45))
        self.c_kl = float(train.get("c_kl", 1.0))
        betas = tuple(train.get("betas", [0.8, 0.99]))
        eps = float(train.get("eps", 1e-9))
        model = hps.get("model", {})

        torch.manual_seed(seed)
        self.net_g = tv.TinyVits(model.get("inter_channels", 16), model.get("hidden_channels", 32)).to(device)
        self.net_d = tv.TinyMultiDiscriminator().to(device)
        self.optim_g = torch.optim.AdamW(self.net_g.parameters(), self.lr, betas=betas, eps=eps)
        self.optim_d = torch.optim.AdamW(self.net_d.parameters(), self.lr, betas=betas, eps=eps)
        self.scaler = torch.amp.GradScaler(device, init_scale=init_scale, enabled=self.fp16_run)
        self.mel_basis = tv.mel_filterbank().to(device)
        data_gen = torch.Generator().manual_seed(seed)
        self.batches = [tv.make_batch(data_gen, device=device) for _ in range(n_batches)]

    def autocast(self, enabled=None):
        return torch.autocast(self.device, dtype=torch.float16,
                              enabled=self.fp16_run if enabled is None else enabled)

    def step(self, global_step):
        net_g, net_d, scaler = self.net_g, self.net_d, self.scaler
        y, spec, ssl, mask = self.batches[(global_step - 1) % len(self.batches)]
        with self.autocast():
            y_hat, kl_ssl, (z, z_p, m_p, logs_p, m_q, logs_q) = net_g(ssl, spec, mask)
            y_mel = tv.mel_spectrogram_torch(y.squeeze(1), self.mel_basis)
            y_hat_mel = tv.mel_spectrogram_torch(y_hat.squeeze(1).float(), self.mel_basis)
            y_d_hat_r, y_d_hat_g, _, _ = net_d(y, y_hat.detach())
            with self.autocast(enabled=False):
                loss_disc = tv.discriminator_loss(y_d_hat_r, y_d_hat_g)
                loss_disc_all = loss_disc
        self.optim_d.zero_grad()
        scaler.scale(loss_disc_all).backward()
        scaler.unscale_(self.optim_d)
        scaler.step(self.optim_d)

        with self.autocast():
            y_d_hat_r, y_d_hat_g, fmap_r, fmap_g = net_d(y, y_hat)
            with self.autocast(enabled=False):
                loss_mel = torch.nn.functional.l1_loss(y_mel, y_hat_mel) * self.c_mel
                loss_kl = tv.kl_loss(z_p, logs_q, m_p, logs_p, mask) * self.c_kl
                loss_fm = tv.feature_loss(fmap_r, fmap_g)
                loss_gen = tv.generator_loss(y_d_hat_g)
                loss_gen_all = loss_gen + loss_fm + loss_mel + kl_ssl * 1 + loss_kl
        self.optim_g.zero_grad()
        scaler.scale(loss_gen_all).backward()
        scaler.unscale_(self.optim_g)
        scaler.step(self.optim_g)
        scaler.update()
        losses = [loss_disc, loss_gen, loss_fm, loss_mel, kl_ssl, loss_kl]
        return [x.item() for x in losses] + [global_step, self.optim_g.param_groups[0]["lr"]]


def main(argv=None):
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    hps = load_hparams(args.config)
    seed = args.seed if args.seed is not None else int(hps["train"].get("seed", 1234))
    trainer = Trainer(hps, device=args.device, seed=seed, healthy=args.healthy)
    out = args.out
    if args.save_every and out is None:
        out = tempfile.mkdtemp(prefix="tiny_vits_ckpt_")
    if out:
        os.makedirs(out, exist_ok=True)
    steps = args.steps if args.steps is not None else DEFAULT_STEPS
    for global_step in range(1, steps + 1):
        print(trainer.step(global_step), flush=True)
        if args.save_every and global_step % args.save_every == 0:
            torch.save({"model": trainer.net_g.state_dict(), "iteration": global_step},
                       os.path.join(out, "G_%d.pth" % global_step))
            torch.save({"model": trainer.net_d.state_dict(), "iteration": global_step},
                       os.path.join(out, "D_%d.pth" % global_step))
    if out:
        print("checkpoints in %s" % out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
