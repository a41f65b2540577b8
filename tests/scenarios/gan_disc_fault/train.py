"""Scenario: GAN-shaped fp16 training (generator, discriminator, two AdamW, one GradScaler) with
the fault in the discriminator, trained as GPT-SoVITS's s2_train.py trains (D step, then G step,
one scaler.update() per iteration; an iteration is one step).

Before step 4 the discriminator's third conv surges 6e5 times (as a diverging update or a bad
resume would do).  Its weights stay finite in fp16 (max |w| ~ 4.7e4) and its input (the real
audio's feature map) is unchanged, but its fp16 output (max |y| ~ 0.17 before) passes 65504: the first +-inf is in Discriminator/convs.2 in the forward pass of
step 4 (the discriminator's first call of that step, on the real audio).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

FAULT_STEP = 4
STEPS = 6


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.pre = nn.Conv1d(8, 32, 3, padding=1)
        self.up = nn.ConvTranspose1d(32, 16, 8, 4, 2)
        self.post = nn.Conv1d(16, 1, 5, padding=2)

    def forward(self, x):
        return torch.tanh(self.post(F.leaky_relu(self.up(F.leaky_relu(self.pre(x), 0.1)), 0.1)))


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([
            nn.Conv1d(1, 16, 15, 1, padding=7),
            nn.Conv1d(16, 32, 41, 4, groups=4, padding=20),
            nn.Conv1d(32, 32, 41, 4, groups=8, padding=20),
            nn.Conv1d(32, 32, 5, 1, padding=2),
        ])
        self.conv_post = nn.Conv1d(32, 1, 3, 1, padding=1)

    def forward(self, y):
        fmap = []
        for conv in self.convs:
            y = F.leaky_relu(conv(y), 0.1)
            fmap.append(y)
        return self.conv_post(y).flatten(1), fmap


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    net_g, net_d = Generator(), Discriminator()
    optim_g = torch.optim.AdamW(net_g.parameters(), 2e-4, betas=(0.8, 0.99), eps=1e-9)
    optim_d = torch.optim.AdamW(net_d.parameters(), 2e-4, betas=(0.8, 0.99), eps=1e-9)
    scaler = torch.amp.GradScaler("cpu")
    t = torch.linspace(0, 40, 128)
    for step in range(1, STEPS + 1):
        x = torch.randn(2, 8, 32)
        y = torch.stack([0.6 * torch.sin(t * 1.3), 0.4 * torch.sin(t * 2.1)]).unsqueeze(1)
        if step == FAULT_STEP:
            with torch.no_grad():
                net_d.convs[2].weight.mul_(6.0e5)
        with torch.autocast("cpu", dtype=torch.float16):
            y_hat = net_g(x)
            d_r, _ = net_d(y)
            d_g, _ = net_d(y_hat.detach())
            loss_disc = torch.mean((1 - d_r.float()) ** 2) + torch.mean(d_g.float() ** 2)
        optim_d.zero_grad()
        scaler.scale(loss_disc).backward()
        scaler.unscale_(optim_d)
        scaler.step(optim_d)
        with torch.autocast("cpu", dtype=torch.float16):
            d_r, fmap_r = net_d(y)
            d_g, fmap_g = net_d(y_hat)
            loss_fm = sum(torch.mean(torch.abs(r.float().detach() - g.float())) for r, g in zip(fmap_r, fmap_g))
            loss_gen = torch.mean((1 - d_g.float()) ** 2)
            loss_mel = F.l1_loss(y_hat.float(), y)
            loss_gen_all = loss_gen + loss_fm + 45 * loss_mel
        optim_g.zero_grad()
        scaler.scale(loss_gen_all).backward()
        scaler.unscale_(optim_g)
        scaler.step(optim_g)
        scaler.update()
        print([loss_disc.item(), loss_gen.item(), loss_fm.item(), loss_mel.item(), step], flush=True)


if __name__ == "__main__":
    main()
