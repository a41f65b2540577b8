"""Scenario: exp overflow in fp16, posterior-encoder style z = m + randn * exp(logs).

The posterior encoder's log-sigma bias drifts up (planted: +12 before step 4, the size of the
drift a too-high learning rate gives in the bundled demo).  Under fp16 autocast logs comes out
of a Conv1d in float16, so exp(logs) overflows once logs > 11.09 (log 65504): the first +inf is
made by aten::exp inside VaeModel/enc_q's own forward at step 4.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

FAULT_STEP = 4
STEPS = 6


class PosteriorEncoder(nn.Module):
    def __init__(self, in_ch=12, hidden=16, out_ch=4):
        super().__init__()
        self.out_ch = out_ch
        self.pre = nn.Conv1d(in_ch, hidden, 1)
        self.proj = nn.Conv1d(hidden, 2 * out_ch, 1)

    def forward(self, x):
        h = torch.tanh(self.pre(x))
        m, logs = torch.split(self.proj(h), self.out_ch, dim=1)
        z = m + torch.randn_like(m) * torch.exp(logs)
        return z, m, logs


class VaeModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc_q = PosteriorEncoder()
        self.dec = nn.Conv1d(4, 12, 3, padding=1)

    def forward(self, x):
        z, m, logs = self.enc_q(x)
        return self.dec(z), m, logs


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = VaeModel()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    scaler = torch.amp.GradScaler("cpu")
    for step in range(1, STEPS + 1):
        x = torch.randn(2, 12, 24)
        if step == FAULT_STEP:
            with torch.no_grad():
                model.enc_q.proj.bias[4:] += 12.0
        with torch.autocast("cpu", dtype=torch.float16):
            x_hat, m, logs = model(x)
            rec = F.l1_loss(x_hat.float(), x)
            kl = (0.5 * (m.float() ** 2 + torch.exp(2 * logs.float())) - logs.float() - 0.5).mean()
            loss = rec + 0.1 * kl
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        print([rec.item(), kl.item(), step], flush=True)


if __name__ == "__main__":
    main()
