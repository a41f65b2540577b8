"""Scenario: a Hugging Face Llama (built from a config, random weights, nothing downloaded) with
`gradient_checkpointing_enable()`, trained under bf16 autocast on CPU. Each decoder layer's
forward runs twice per step: in the forward, and again inside backward to recompute what
checkpointing did not keep. Neither run is a new step or an evaluation.

Before step 4 the MLP's up projection of layer 1 (`model.layers.1.mlp.up_proj`) is scaled to
1e38 (as a corrupt checkpoint would): its bf16 output, a sum of 32 such products, overflows
bf16's largest finite value, about 3.4e38. The finding is a bf16 overflow at step 4 in the forward of
`LlamaForCausalLM/model.layers.1.mlp.up_proj`, op `aten::mm` (a Linear with no bias), and the
run has 5 steps.
"""
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.utils import logging as hf_logging

FAULT_STEP = 4


def main():
    hf_logging.set_verbosity_error()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      attn_implementation="eager")
    model = LlamaForCausalLM(cfg)
    model.gradient_checkpointing_enable()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(1, 6):
        ids = torch.randint(0, 128, (2, 16))
        if step == FAULT_STEP:
            with torch.no_grad():
                model.model.layers[1].mlp.up_proj.weight.fill_(1e38)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(input_ids=ids, labels=ids)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        print(step, round(out.loss.item(), 4), flush=True)


if __name__ == "__main__":
    main()
