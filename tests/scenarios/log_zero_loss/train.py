"""Scenario: log(0) in a mel-style loss module without a clamp.

LogMelL1Loss takes the log of the target's mel energies without clamp(min=1e-5).  The batch of
step 3 holds a silent (all-zero) clip: its STFT magnitudes are exactly 0, so torch.log gives
-inf (IEEE divide-by-zero) for every frame of that clip: the first non-finite value is made by
aten::log in LogMelL1Loss's forward (kind division_by_zero; the L1 against -inf then gives +inf).
fp32 throughout, so no precision issue is involved.
"""
import torch
import torch.nn as nn

FAULT_STEP = 3
STEPS = 5


class TinyVocoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose1d(8, 8, 8, 4, 2)
        self.post = nn.Conv1d(8, 1, 5, padding=2)

    def forward(self, x):
        return torch.tanh(self.post(torch.relu(self.up(x))))


class LogMelL1Loss(nn.Module):
    def __init__(self, n_fft=32, hop=8, n_mels=8):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft))
        self.register_buffer("fb", torch.rand(n_mels, n_fft // 2 + 1, generator=torch.Generator().manual_seed(1)))

    def log_mel(self, y):
        spec = torch.stft(y, self.n_fft, self.hop, window=self.window, center=False, return_complex=True).abs()
        return torch.log(torch.matmul(self.fb, spec))  # no clamp: the planted fault

    def forward(self, y_hat, y):
        return torch.mean(torch.abs(self.log_mel(y_hat) - self.log_mel(y)))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = TinyVocoder()
    criterion = LogMelL1Loss()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    t = torch.linspace(0, 30, 128)
    for step in range(1, STEPS + 1):
        x = torch.randn(2, 8, 32)
        y = torch.stack([0.5 * torch.sin(t * (1 + step)), 0.3 * torch.sin(t * 3.1)])
        if step == FAULT_STEP:
            y[1] = 0.0  # a silent clip
        loss = criterion(model(x).squeeze(1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print([loss.item(), step], flush=True)


if __name__ == "__main__":
    main()
