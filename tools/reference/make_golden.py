#!/usr/bin/env python3
"""Builds tiny Gemma 4 checkpoints with random weights and records what transformers computes for them.

Run where PyTorch and transformers (5.17, with Gemma 4) are installed, e.g. the GPU host:

    python3 tools/reference/make_golden.py --out src/test/resources/golden

It writes, for each tiny configuration, a Hugging Face model directory (config.json, safetensors,
tokenizer.json, tokenizer_config.json / chat_template.jinja, generation_config.json) plus
reference.safetensors (fp32 logits) and reference.json (prompts, ids, greedy continuations), and one
tokenizer-reference.json (token ids for a text corpus, decodes, rendered chat templates).

Everything is seeded: the same transformers version gives the same files.
"""
import argparse
import json
import math
import os
import shutil

import torch
from safetensors.torch import save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

import transformers
from transformers import Gemma4Config, Gemma4ForCausalLM, Gemma4ForConditionalGeneration, Gemma4TextConfig

try:
    from transformers import PreTrainedTokenizerFast
except ImportError:  # transformers 5 renamed the fast tokenizer class
    from transformers import TokenizersBackend as PreTrainedTokenizerFast

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<|turn>", "<turn|>"]
PAD, EOS, BOS, UNK, MASK, TURN_OPEN, TURN_CLOSE = range(len(SPECIALS))
VOCAB = 512
GREEDY_STEPS = 32
DECODE_LOGIT_STEPS = 4

# A Gemma 4 style chat template, written for these test checkpoints. It uses the Jinja features real
# Hugging Face templates rely on (slicing, loop variables, tests, filters, raise_exception).
CHAT_TEMPLATE = (
    "{{- bos_token -}}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "  {{- '<|turn>system\\n' + messages[0]['content'] | trim + '<turn|>\\n' -}}\n"
    "  {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    "  {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "  {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "    {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') -}}\n"
    "  {%- endif -%}\n"
    "  {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}\n"
    "  {{- '<|turn>' + role + '\\n' -}}\n"
    "  {%- if message['content'] is string -%}\n"
    "    {{- message['content'] | trim -}}\n"
    "  {%- else -%}\n"
    "    {%- for item in message['content'] -%}\n"
    "      {%- if item['type'] == 'text' -%}{{- item['text'] | trim -}}{%- endif -%}\n"
    "    {%- endfor -%}\n"
    "  {%- endif -%}\n"
    "  {{- '<turn|>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<|turn>model\\n' -}}\n"
    "{%- endif -%}\n"
)

TRAINING_TEXT = """
The quick brown fox jumps over the lazy dog. A small model can still learn the shape of a language.
Jemma serves Gemma models from the Java virtual machine, streaming tokens to every client that asks.
Each request waits in a queue, then the scheduler admits it, runs its prompt, and decodes one token
at a time until the model says it is done or the limit is reached. Numbers like 12, 345 and 6789 appear
in text, and so do dates such as 2026-11-25, prices such as $19.99, and times such as 10:30.
What is the capital of France? Paris is the capital of France. How many letters are in the word
banana? There are six letters in the word banana. Please sort these words: pear, apple, fig.
The sorted words are apple, fig, pear. Convert 3 kilometres to metres: 3000 metres.
def add(a, b):
    return a + b
Attention reads the keys and values of every earlier position; a sliding window keeps only the
most recent ones. Speculative decoding drafts several tokens and verifies them in one pass.
"""

CORPUS = [
    "Hello world",
    "Hello, world! How are you today?",
    " leading space and trailing space ",
    "two  spaces   three",
    "Tabs\tand\nnewlines\n\nare kept.",
    "Numbers 12345 and 3.14159 and -42.",
    "The quick brown fox jumps over the lazy dog.",
    "Ünïcödé with accents: café, naïve, über.",
    "Emoji 😀🎉 and symbols €£¥ ©®.",
    "中文字符和日本語のテキスト",
    "Combining e\u0301 and ring a\u030a.",
    "<|turn>user\nWhat is 2+2?<turn|>\n<|turn>model\n",
    "Special <bos> in the <eos> middle",
    "unknown ← arrows → and math ∑∫√",
    "Zero-width\u200bspace and nbsp\u00a0here",
    "",
    " ",
    "a",
    "▁already▁has▁metaspace",
    "<0x41> is not a byte token in text",
]

CONVERSATIONS = [
    ([{"role": "user", "content": "Hi there!"}], True),
    ([{"role": "system", "content": "You are terse.  "}, {"role": "user", "content": "What is 2+2?"}], True),
    ([{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi! How can I help?"},
      {"role": "user", "content": "Tell me a joke."}], True),
    ([{"role": "user", "content": [{"type": "text", "text": "Parts as a list"}]}], False),
    ([{"role": "user", "content": "  spaces around  "}], False),
]

PROMPTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "Each request waits in a queue, then the scheduler admits it, runs its prompt, and decodes",
]


def build_tokenizer(out_dir):
    """A small SentencePiece-style BPE (U+2581 for spaces, byte fallback), trained on TRAINING_TEXT."""
    trainer_tok = Tokenizer(models.BPE(unk_token="<unk>"))
    trainer_tok.normalizer = normalizers.Replace(" ", "\u2581")
    trainer_tok.pre_tokenizer = pre_tokenizers.Split("\u2581", behavior="merged_with_next")
    n_fixed = len(SPECIALS) + 256
    trainer = trainers.BpeTrainer(vocab_size=VOCAB - n_fixed, show_progress=False, special_tokens=[])
    trainer_tok.train_from_iterator([TRAINING_TEXT] * 4, trainer=trainer)
    trained = json.loads(trainer_tok.to_str())["model"]

    # Renumber: specials first (Gemma's ids: pad 0, eos 1, bos 2, unk 3), then the 256 byte pieces,
    # then the learned pieces in their own order.
    vocab = {s: i for i, s in enumerate(SPECIALS)}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for piece, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        if piece not in vocab:
            vocab[piece] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in trained["merges"]]

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.pre_tokenizer = pre_tokenizers.Split("\u2581", behavior="merged_with_next")
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])

    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                 unk_token="<unk>", mask_token="<mask>", additional_special_tokens=["<|turn>", "<turn|>"])
    hf.chat_template = CHAT_TEMPLATE
    hf.save_pretrained(out_dir)
    return hf, len(vocab)


def randomize(model, seed):
    """Random weights with O(1) activations, so every path changes the logits visibly."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:  # norm weights, router scales
                p.copy_(torch.empty(p.shape).uniform_(0.5, 1.5, generator=g))
            elif "embed_tokens" in name:
                # Small enough that the scaled embedding does not drown the layers' contributions in the
                # residual stream (else the tied head just repeats the input token), large enough that
                # logits spread over several units and the softcap bites.
                p.copy_(torch.randn(p.shape, generator=g) * 0.25)
            else:  # [out, in] linears and [experts, out, in] expert stacks
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]))
        for name, b in model.named_buffers():
            if name.endswith("layer_scalar"):
                b.copy_(torch.empty(b.shape).uniform_(0.5, 1.5, generator=g))


TINY = {
    # (a) 31B-like: k_eq_v full layers, 5:1 pattern, global head dim / kv heads differ, softcap.
    "tiny-31b": dict(
        wrapper="gemma4", dtype=torch.bfloat16, shard=None,
        text=dict(hidden_size=64, intermediate_size=96, num_hidden_layers=6, num_attention_heads=4,
                  num_key_value_heads=2, num_global_key_value_heads=1, head_dim=32, global_head_dim=64,
                  sliding_window=6, attention_k_eq_v=True, final_logit_softcapping=10.0,
                  hidden_size_per_layer_input=0, max_position_embeddings=4096)),
    # (b) E4B/E2B-like: PLE, KV-shared layers, double-wide MLP, 4:1 pattern; fp16, sharded.
    "tiny-e4b": dict(
        wrapper="gemma4_text", dtype=torch.float16, shard="200KB",
        text=dict(hidden_size=64, intermediate_size=96, num_hidden_layers=8, num_attention_heads=4,
                  num_key_value_heads=1, head_dim=32, global_head_dim=64, sliding_window=5,
                  layer_types=["sliding_attention"] * 4 + ["full_attention"] + ["sliding_attention"] * 2
                  + ["full_attention"],
                  num_kv_shared_layers=3, use_double_wide_mlp=True, hidden_size_per_layer_input=16,
                  final_logit_softcapping=10.0, max_position_embeddings=4096)),
    # (c) 26B-A4B-like MoE: dense MLP and routed experts in parallel, k_eq_v; fp32.
    "tiny-moe": dict(
        wrapper="gemma4_text", dtype=torch.float32, shard=None,
        text=dict(hidden_size=48, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                  num_key_value_heads=2, num_global_key_value_heads=1, head_dim=16, global_head_dim=32,
                  sliding_window=4, attention_k_eq_v=True, enable_moe_block=True, num_experts=4,
                  top_k_experts=2, moe_intermediate_size=24, hidden_size_per_layer_input=0,
                  final_logit_softcapping=30.0, max_position_embeddings=4096)),
}


def build_model(spec, vocab_size, seed):
    text = dict(spec["text"], vocab_size=vocab_size, vocab_size_per_layer_input=vocab_size,
                pad_token_id=PAD, eos_token_id=EOS, bos_token_id=BOS, rms_norm_eps=1e-6)
    if spec["wrapper"] == "gemma4":
        config = Gemma4Config(text_config=text, vision_config=None, audio_config=None,
                              pad_token_id=PAD, eos_token_id=EOS, bos_token_id=BOS)
        model = Gemma4ForConditionalGeneration(config)
    else:
        model = Gemma4ForCausalLM(Gemma4TextConfig(**text))
    randomize(model, seed)
    return model


@torch.no_grad()
def logits_of(model, ids):
    """fp32 logits at every position of one sequence, full recompute (no cache): [T, V]."""
    out = model(input_ids=torch.tensor([ids]), use_cache=False)
    return out.logits[0].float()


@torch.no_grad()
def record(model_dir, hf_tok):
    with open(os.path.join(model_dir, "config.json")) as f:
        cls = Gemma4ForConditionalGeneration if json.load(f)["model_type"] == "gemma4" else Gemma4ForCausalLM
    model = cls.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    tensors, prompts = {}, []
    for i, text in enumerate(PROMPTS):
        ids = [BOS] + hf_tok.encode(text, add_special_tokens=False)
        tensors[f"prompt{i}.prefill"] = logits_of(model, ids).contiguous()
        seq, greedy, decode = list(ids), [], []
        for step in range(GREEDY_STEPS):
            last = logits_of(model, seq)[-1]
            if step > 0 and step <= DECODE_LOGIT_STEPS:
                decode.append(last)
            nxt = int(torch.argmax(last))
            greedy.append(nxt)
            seq.append(nxt)
        tensors[f"prompt{i}.decode"] = torch.stack(decode).contiguous()  # logits after 1..4 decoded tokens
        prompts.append({"text": text, "ids": ids, "greedy": greedy,
                        "greedy_text": hf_tok.decode(greedy, skip_special_tokens=False)})
    save_file(tensors, os.path.join(model_dir, "reference.safetensors"))
    with open(os.path.join(model_dir, "reference.json"), "w") as f:
        json.dump({"transformers": transformers.__version__, "torch": torch.__version__,
                   "model_class": type(model).__name__, "prompts": prompts,
                   "decode_logit_steps": DECODE_LOGIT_STEPS}, f, indent=1)


def tokenizer_reference(hf_tok, out):
    corpus = []
    for text in CORPUS:
        ids = hf_tok.encode(text, add_special_tokens=False)
        corpus.append({"text": text, "ids": ids, "decoded": hf_tok.decode(ids, skip_special_tokens=False)})
    chats = []
    for messages, gen in CONVERSATIONS:
        chats.append({"messages": messages, "add_generation_prompt": gen,
                      "rendered": hf_tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)})
    with open(os.path.join(out, "tokenizer-reference.json"), "w") as f:
        json.dump({"transformers": transformers.__version__, "corpus": corpus, "chats": chats}, f,
                  indent=1, ensure_ascii=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    os.makedirs(args.out, exist_ok=True)
    tok_dir = os.path.join(args.out, "_tokenizer")
    hf_tok, vocab_size = build_tokenizer(tok_dir)
    tokenizer_reference(hf_tok, args.out)
    for seed, (name, spec) in enumerate(TINY.items()):
        d = os.path.join(args.out, name)
        shutil.rmtree(d, ignore_errors=True)
        model = build_model(spec, vocab_size, seed + 1).to(spec["dtype"])
        kwargs = {"max_shard_size": spec["shard"]} if spec["shard"] else {}
        model.save_pretrained(d, **kwargs)
        for f in os.listdir(tok_dir):
            shutil.copy(os.path.join(tok_dir, f), d)
        with open(os.path.join(d, "generation_config.json"), "w") as f:
            json.dump({"bos_token_id": BOS, "eos_token_id": [EOS, TURN_CLOSE], "pad_token_id": PAD}, f, indent=1)
        record(d, hf_tok)
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        print(f"{name}: {size / 1e6:.2f} MB, files {sorted(os.listdir(d))}")
    shutil.rmtree(tok_dir)


if __name__ == "__main__":
    main()
