"""Scenario: transformers.Trainer (with accelerate) training a small regressor for 6 steps,
batches of 4 in dataset order. Item 9 holds a missing value read as NaN: it is sample 1 of the
batch of step 3 (items 8-11). The finding is bad input at step 3 in `feats`, 6 steps in all.
"""
import torch
import torch.nn as nn
from transformers import PrinterCallback, Trainer, TrainingArguments
from transformers.utils import logging as hf_logging


class Reg(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, feats, labels=None):
        pred = self.net(feats)
        return {"loss": ((pred - labels) ** 2).mean(), "logits": pred}


class InOrder(Trainer):
    def _get_train_sampler(self, *a, **k):
        return torch.utils.data.SequentialSampler(self.train_dataset)


def main():
    hf_logging.set_verbosity_error()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    data = [{"feats": torch.randn(6), "labels": torch.randn(1)} for _ in range(24)]
    data[9]["feats"][4] = float("nan")
    args = TrainingArguments(output_dir="out", max_steps=6, per_device_train_batch_size=4, report_to=[],
                             save_strategy="no", use_cpu=True, logging_strategy="no", disable_tqdm=True,
                             dataloader_num_workers=0, seed=0)
    trainer = InOrder(model=Reg(), args=args, train_dataset=data)
    trainer.remove_callback(PrinterCallback)  # its summary holds run times: stdout would differ per run
    trainer.train()
    print("trained", flush=True)


if __name__ == "__main__":
    main()
