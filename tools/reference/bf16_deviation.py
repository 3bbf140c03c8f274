#!/usr/bin/env python3
"""How far transformers' own bf16 forward lands from its fp32 reference, in GoldenModelGpuTest's metric.

GoldenModelGpuTest holds our logits to max |ours - fp32 reference| <= tolerance * (max - min of the reference row).
This script measures the same quantity for transformers itself run in bf16 (weights and activations, the way a
bf16 server runs), on the committed golden checkpoints, so the test's bound can be compared with what the
reference implementation reaches at the same precision. Run on the GPU host (torch 2.11, transformers 5.17):

    python3 tools/reference/bf16_deviation.py src/test/resources/golden [OUT_DIR]

With OUT_DIR it also writes OUT_DIR/NAME/reference-bf16.safetensors: transformers' bf16 logits (sdpa, the default
attention) in reference.safetensors' layout, which GoldenModelGpuTest reads to size its bound.
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import Gemma4ForCausalLM, Gemma4ForConditionalGeneration


def relative(expected, actual):
    """Per row: max |diff| / (max - min of expected), as GoldenCheckpoint.LogitDeviation.relative()."""
    expected, actual = expected.double(), actual.double()
    worst = (expected - actual).abs().amax(dim=-1)
    span = expected.amax(dim=-1) - expected.amin(dim=-1)
    return worst / span


@torch.no_grad()
def deviations(model_dir, dtype, attn, device, save_to=None):
    with open(os.path.join(model_dir, "config.json")) as f:
        cls = Gemma4ForConditionalGeneration if json.load(f)["model_type"] == "gemma4" else Gemma4ForCausalLM
    model = cls.from_pretrained(model_dir, dtype=dtype, attn_implementation=attn).to(device).eval()
    ref = load_file(os.path.join(model_dir, "reference.safetensors"))
    with open(os.path.join(model_dir, "reference.json")) as f:
        meta = json.load(f)
    rows, tensors = [], {}
    for i, p in enumerate(meta["prompts"]):
        ids = p["ids"]
        out = model(input_ids=torch.tensor([ids], device=device), use_cache=False).logits[0].float().cpu()
        rows.append(relative(ref[f"prompt{i}.prefill"], out))
        tensors[f"prompt{i}.prefill"] = out.contiguous()
        decode = []
        for j in range(meta["decode_logit_steps"]):
            seq = ids + p["greedy"][:j + 1]      # the fp32 reference's tokens, as reference.safetensors
            last = model(input_ids=torch.tensor([seq], device=device), use_cache=False).logits[0, -1].float().cpu()
            rows.append(relative(ref[f"prompt{i}.decode"][j:j + 1], last[None]))
            decode.append(last)
        tensors[f"prompt{i}.decode"] = torch.stack(decode).contiguous()
    if save_to:
        os.makedirs(save_to, exist_ok=True)
        save_file(tensors, os.path.join(save_to, "reference-bf16.safetensors"))
    r = torch.cat(rows)
    return r.max().item(), torch.quantile(r, 0.99).item(), torch.median(r).item(), r.numel()


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "src/test/resources/golden"
    out = sys.argv[2] if len(sys.argv) > 2 else None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"{'checkpoint':12} {'dtype':9} {'attn':6} {'rows':>5} {'max':>9} {'p99':>9} {'median':>9}")
    for name in ("tiny-31b", "tiny-e4b", "tiny-moe"):
        for dtype in (torch.bfloat16, torch.float32):
            for attn in ("eager", "sdpa"):
                save = os.path.join(out, name) if out and dtype == torch.bfloat16 and attn == "sdpa" else None
                mx, p99, med, n = deviations(os.path.join(root, name), dtype, attn, device, save)
                print(f"{name:12} {str(dtype)[6:]:9} {attn:6} {n:5d} {mx:9.3e} {p99:9.3e} {med:9.3e}")


if __name__ == "__main__":
    main()
