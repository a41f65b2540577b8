"""TinyVits: a small VITS-like model shaped like GPT-SoVITS's SynthesizerTrn.

Plain PyTorch; it knows nothing of any checker.  Sizes are tiny so that a CPU trains it
in seconds, but the structure follows GPT-SoVITS (module/models.py):

  enc_p   prior encoder: conditioning features -> (m_p, logs_p)
  enc_q   posterior encoder: linear spectrogram -> (m_q, logs_q),
          z = m_q + randn_like(m_q) * exp(logs_q)          <- the fp16 exp site
  dec     HiFi-GAN style generator: conv_pre, ConvTranspose1d upsampling (dec.ups.0,
          dec.ups.1) each followed by a residual conv block, conv_post, tanh
  TinyDiscriminator: a DiscriminatorS-like stack of Conv1d (convs.0 .. convs.3, conv_post)

Losses follow GPT-SoVITS's module/losses.py (LSGAN discriminator/generator losses, feature
matching, KL) and mel_processing.py (log-mel L1 on an STFT filterbank).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

LRELU_SLOPE = 0.1

# Feature sizes shared by the model and the data.
SPEC_CHANNELS = 33      # n_fft // 2 + 1
N_FFT = 64
HOP = 16                # samples per spectrogram frame == total decoder upsampling (4 * 4)
N_MELS = 20
SSL_CHANNELS = 24       # conditioning features (stands in for GPT-SoVITS's SSL/text input)


class WNLayer(nn.Module):
    """One gated residual layer (tanh * sigmoid) as in VITS's WN."""

    def __init__(self, hidden, kernel_size):
        super().__init__()
        self.in_layer = nn.Conv1d(hidden, 2 * hidden, kernel_size, padding=kernel_size // 2)
        self.res_skip = nn.Conv1d(hidden, hidden, 1)

    def forward(self, x, mask):
        a, b = self.in_layer(x).chunk(2, dim=1)
        acts = torch.tanh(a) * torch.sigmoid(b)
        return (x + self.res_skip(acts)) * mask


class PosteriorEncoder(nn.Module):
    """enc_q: spectrogram -> z, m, logs.  The exp(logs) below runs in the dtype of logs,
    which is float16 under autocast because logs comes out of a Conv1d."""

    def __init__(self, in_channels, out_channels, hidden, n_layers=2, kernel_size=5):
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(in_channels, hidden, 1)
        self.enc = nn.ModuleList(WNLayer(hidden, kernel_size) for _ in range(n_layers))
        self.proj = nn.Conv1d(hidden, out_channels * 2, 1)

    def forward(self, x, x_mask):
        x = self.pre(x)
        x_mask = x_mask.to(x.dtype)   # as GPT-SoVITS casts its masks to the activation dtype
        x = x * x_mask
        for layer in self.enc:
            x = layer(x, x_mask)
        stats = self.proj(x) * x_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        z = (m + torch.randn_like(m) * torch.exp(logs)) * x_mask
        return z, m, logs


class PriorEncoder(nn.Module):
    """enc_p: conditioning features -> m_p, logs_p (stands in for TextEncoder)."""

    def __init__(self, in_channels, out_channels, hidden):
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(in_channels, hidden, 3, padding=1)
        self.enc = WNLayer(hidden, 3)
        self.proj = nn.Conv1d(hidden, out_channels * 2, 1)

    def forward(self, x, x_mask):
        x = self.enc(self.pre(x) * x_mask, x_mask)
        m, logs = torch.split(self.proj(x) * x_mask, self.out_channels, dim=1)
        return m, logs


class ResBlock(nn.Module):
    """HiFi-GAN ResBlock2-like: two dilated convs with residual connections."""

    def __init__(self, channels, kernel_size=3, dilations=(1, 3)):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=d * (kernel_size - 1) // 2)
            for d in dilations)

    def forward(self, x):
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, LRELU_SLOPE))
        return x


class Generator(nn.Module):
    """dec: z -> waveform, upsampled 4 x 4 = HOP by ConvTranspose1d (ups.0, ups.1)."""

    def __init__(self, in_channels, channels=64, rates=(4, 4)):
        super().__init__()
        self.conv_pre = nn.Conv1d(in_channels, channels, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = channels
        for r in rates:
            self.ups.append(nn.ConvTranspose1d(ch, ch // 2, 2 * r, stride=r, padding=r // 2))
            ch //= 2
            self.resblocks.append(ResBlock(ch))
        self.conv_post = nn.Conv1d(ch, 1, 7, padding=3, bias=False)

    def forward(self, x):
        x = self.conv_pre(x)
        for up, res in zip(self.ups, self.resblocks):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            x = res(x)
        x = self.conv_post(F.leaky_relu(x))
        return torch.tanh(x)


class TinyVits(nn.Module):
    """SynthesizerTrn-shaped generator: enc_p, enc_q, dec.

    The flow is frozen (as when fine-tuning with parts of the model fixed) and reduced to the
    identity on a detached sample: z_p = z.detach().  So the KL term's -logs_q (the posterior's
    entropy) pushes enc_q's log-sigma up, and only the mel loss, through the decoder's noise,
    pulls it back.  At a sane learning rate the drift is negligible; at a too-high one it
    carries logs past log(65504) = 11.09 and exp(logs) overflows in float16 (docs/demo.md)."""

    def __init__(self, inter_channels=16, hidden=32):
        super().__init__()
        self.enc_p = PriorEncoder(SSL_CHANNELS, inter_channels, hidden)
        self.enc_q = PosteriorEncoder(SPEC_CHANNELS, inter_channels, hidden)
        self.dec = Generator(inter_channels)

    def forward(self, ssl, spec, mask):
        m_p, logs_p = self.enc_p(ssl, mask)
        z, m_q, logs_q = self.enc_q(spec, mask)
        z_p = z.detach()
        y_hat = self.dec(z)
        kl_ssl = torch.zeros((), device=spec.device)
        return y_hat, kl_ssl, (z, z_p, m_p, logs_p, m_q, logs_q)


class TinyDiscriminator(nn.Module):
    """DiscriminatorS-like scale discriminator; returns (score, feature maps)."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([
            nn.Conv1d(1, 16, 15, 1, padding=7),
            nn.Conv1d(16, 32, 41, 4, groups=4, padding=20),
            nn.Conv1d(32, 64, 41, 4, groups=8, padding=20),
            nn.Conv1d(64, 64, 5, 1, padding=2),
        ])
        self.conv_post = nn.Conv1d(64, 1, 3, 1, padding=1)

    def forward(self, y):
        fmap = []
        x = y
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return torch.flatten(x, 1, -1), fmap


class TinyMultiDiscriminator(nn.Module):
    """Wraps the discriminator to score real and generated audio, as MultiPeriodDiscriminator."""

    def __init__(self):
        super().__init__()
        self.disc = TinyDiscriminator()

    def forward(self, y, y_hat):
        y_d_r, fmap_r = self.disc(y)
        y_d_g, fmap_g = self.disc(y_hat)
        return [y_d_r], [y_d_g], [fmap_r], [fmap_g]


# ---- mel processing (mel_processing.py shaped) -------------------------------------------

def mel_filterbank(n_mels=N_MELS, n_freqs=SPEC_CHANNELS):
    """Triangular filters evenly spaced on a mel-like (log) axis; deterministic."""
    edges = torch.logspace(math.log10(1.0), math.log10(n_freqs - 1.0), n_mels + 2)
    bins = torch.arange(n_freqs, dtype=torch.float32)
    fb = torch.zeros(n_mels, n_freqs)
    for i in range(n_mels):
        lo, mid, hi = edges[i].item(), edges[i + 1].item(), edges[i + 2].item()
        up = (bins - lo) / max(mid - lo, 1e-3)
        down = (hi - bins) / max(hi - mid, 1e-3)
        fb[i] = torch.clamp(torch.minimum(up, down), min=0.0)
    return fb


def spectrogram_torch(y):
    """|STFT| of a [B, samples] waveform in float32, [B, SPEC_CHANNELS, frames]."""
    window = torch.hann_window(N_FFT, device=y.device)
    spec = torch.stft(y.float(), N_FFT, hop_length=HOP, win_length=N_FFT, window=window,
                      center=False, return_complex=True)
    return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-6)


def pad_for_stft(y):
    p = (N_FFT - HOP) // 2
    return F.pad(y.unsqueeze(1), (p, p), mode="reflect").squeeze(1)


def mel_spectrogram_torch(y, mel_basis):
    spec = spectrogram_torch(pad_for_stft(y))
    mel = torch.matmul(mel_basis, spec)
    return torch.log(torch.clamp(mel, min=1e-5))


# ---- losses (losses.py shaped) -----------------------------------------------------------

def feature_loss(fmap_r, fmap_g):
    loss = 0
    for dr, dg in zip(fmap_r, fmap_g):
        for rl, gl in zip(dr, dg):
            loss = loss + torch.mean(torch.abs(rl.float().detach() - gl.float()))
    return loss * 2


def discriminator_loss(disc_real_outputs, disc_generated_outputs):
    loss = 0
    for dr, dg in zip(disc_real_outputs, disc_generated_outputs):
        loss = loss + torch.mean((1 - dr.float()) ** 2) + torch.mean(dg.float() ** 2)
    return loss


def generator_loss(disc_outputs):
    loss = 0
    for dg in disc_outputs:
        loss = loss + torch.mean((1 - dg.float()) ** 2)
    return loss


def kl_loss(z_p, logs_q, m_p, logs_p, z_mask):
    z_p, logs_q, m_p, logs_p = z_p.float(), logs_q.float(), m_p.float(), logs_p.float()
    kl = logs_p - logs_q - 0.5
    kl = kl + 0.5 * ((z_p - m_p) ** 2) * torch.exp(-2.0 * logs_p)
    return torch.sum(kl * z_mask) / torch.sum(z_mask)


# ---- synthetic data ----------------------------------------------------------------------

def make_batch(generator, batch=2, frames=32, device="cpu"):
    """Seeded random-but-structured 'speech': a few decaying sinusoids plus noise, its linear
    spectrogram, and conditioning features derived from it (so enc_p can learn the prior)."""
    samples = frames * HOP
    t = torch.arange(samples, dtype=torch.float32) / samples
    ys = []
    for _ in range(batch):
        f = 2.0 + 30.0 * torch.rand(3, generator=generator)
        a = 0.2 + 0.3 * torch.rand(3, generator=generator)
        y = sum(a[i] * torch.sin(2 * math.pi * f[i] * t * (1 + i)) for i in range(3))
        y = y * torch.exp(-2.0 * t) + 0.02 * torch.randn(samples, generator=generator)
        ys.append(y)
    y = torch.stack(ys).clamp(-0.95, 0.95)
    spec = spectrogram_torch(pad_for_stft(y))
    proj = torch.randn(SSL_CHANNELS, SPEC_CHANNELS, generator=torch.Generator().manual_seed(7)) / SPEC_CHANNELS ** 0.5
    ssl = torch.tanh(proj @ torch.log(spec + 1e-3) / 4)
    mask = torch.ones(batch, 1, spec.shape[-1])
    return y.unsqueeze(1).to(device), spec.to(device), ssl.to(device), mask.to(device)
