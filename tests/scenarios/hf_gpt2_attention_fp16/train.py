"""Scenario: a Hugging Face GPT-2 (built from a config, random weights, nothing downloaded)
trained under fp16 autocast on CPU; its attention layers are called with keyword arguments
only (`self.attn(hidden_states=..., ...)`), as every HF decoder layer calls them.

Before step 3 the query/key projection of layer 1 (`transformer.h.1.attn.c_attn`) is scaled
3000x (as a too-large update or a bad checkpoint would): its attention scores q.k^T overflow
fp16 in the matmul (`aten::bmm`), and softmax of inf - inf gives NaN. The first non-finite
module output is `c_proj`'s, whose input is already NaN: the value was born in
`GPT2LMHeadModel/transformer.h.1.attn`'s own code, an fp16 overflow in `aten::bmm` at step 3.
"""
import torch
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.utils import logging as hf_logging

FAULT_STEP = 3


def main():
    hf_logging.set_verbosity_error()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = GPT2Config(n_layer=2, n_head=2, n_embd=64, vocab_size=256, n_positions=64, bos_token_id=0,
                     eos_token_id=0, attn_implementation="eager")
    model = GPT2LMHeadModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for step in range(1, 6):
        ids = torch.randint(0, 256, (2, 32))
        if step == FAULT_STEP:
            with torch.no_grad():
                model.transformer.h[1].attn.c_attn.weight.mul_(3000.0)
        with torch.autocast("cpu", dtype=torch.float16):
            out = model(input_ids=ids, labels=ids)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        print(step, round(out.loss.item(), 5), flush=True)


if __name__ == "__main__":
    main()
