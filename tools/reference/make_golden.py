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
from transformers import (Gemma4AssistantConfig, Gemma4AssistantForCausalLM, Gemma4Config, Gemma4ForCausalLM,
                          Gemma4ForConditionalGeneration, Gemma4TextConfig)

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


# Speculative-decoding assistants (gemma4_assistant, the MTP drafter) for two of the targets: a 4-layer decoder
# whose layers all read the target's KV (its last sliding and last full layer), fed concat(target embedding of the
# last token, target hidden state). Hidden sizes differ from the targets' so backbone and assistant widths cannot be
# confused; the e4b one has the centroid-masked head (use_ordered_embeddings) of the E2B/E4B assistants.
ASSISTANT_LAYERS = ["sliding_attention"] * 3 + ["full_attention"]
ASSISTANTS = {
    "tiny-31b-assistant": dict(
        target="tiny-31b", dtype=torch.bfloat16, ordered=False,
        text=dict(hidden_size=32, intermediate_size=80, num_hidden_layers=4, num_attention_heads=4,
                  num_key_value_heads=2, num_global_key_value_heads=1, head_dim=32, global_head_dim=64,
                  sliding_window=6, attention_k_eq_v=True, layer_types=ASSISTANT_LAYERS,
                  max_position_embeddings=4096)),
    "tiny-e4b-assistant": dict(
        target="tiny-e4b", dtype=torch.float16, ordered=True, num_centroids=16, centroid_top_k=4,
        text=dict(hidden_size=48, intermediate_size=64, num_hidden_layers=4, num_attention_heads=2,
                  num_key_value_heads=1, head_dim=32, global_head_dim=64, sliding_window=5,
                  attention_k_eq_v=False, layer_types=ASSISTANT_LAYERS, max_position_embeddings=4096)),
}
ASSISTANT_STEPS = 3       # chained draft steps recorded per case
ASSISTANT_OFFSETS = (0, 7)  # cases per prompt: the draft after prefill, and one 7 generated tokens later


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


def build_assistant(spec, vocab_size, backbone_hidden, seed):
    text = dict(spec["text"], vocab_size=vocab_size, vocab_size_per_layer_input=0, hidden_size_per_layer_input=0,
                num_kv_shared_layers=spec["text"]["num_hidden_layers"], final_logit_softcapping=None,
                pad_token_id=PAD, eos_token_id=EOS, bos_token_id=BOS, rms_norm_eps=1e-6)
    extra = {}
    if spec["ordered"]:
        extra = dict(num_centroids=spec["num_centroids"], centroid_intermediate_top_k=spec["centroid_top_k"])
    config = Gemma4AssistantConfig(text_config=text, backbone_hidden_size=backbone_hidden,
                                   use_ordered_embeddings=spec["ordered"], tie_word_embeddings=True, **extra)
    model = Gemma4AssistantForCausalLM(config)
    randomize(model, seed)
    if spec["ordered"]:
        g = torch.Generator().manual_seed(seed + 1000)
        with torch.no_grad():
            model.masked_embedding.token_ordering.copy_(torch.randperm(vocab_size, generator=g))
    return model


def load_target(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        wrapped = json.load(f)["model_type"] == "gemma4"
    cls = Gemma4ForConditionalGeneration if wrapped else Gemma4ForCausalLM
    model = cls.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
    text_model = model.model.language_model if wrapped else model.model
    return model, text_model


@torch.no_grad()
def record_assistant(assistant_dir, target_dir):
    """For each target prompt and offset: run the target over the sequence up to the bonus token t (full recompute),
    then draft ASSISTANT_STEPS tokens the way transformers' SinglePositionMultiTokenCandidateGenerator does: input
    concat(target_embed(token), h) with h the target's final-normed hidden state at t - 1 (then the assistant's
    projected state), position_ids t for every step, the target's KV of positions 0..t-1 as shared_kv_states."""
    target, text_model = load_target(target_dir)
    assistant = Gemma4AssistantForCausalLM.from_pretrained(assistant_dir, dtype=torch.float32,
                                                           attn_implementation="eager").eval()
    embed = target.get_input_embeddings()
    with open(os.path.join(target_dir, "reference.json")) as f:
        prompts = json.load(f)["prompts"]
    tensors, cases = {}, []
    for i, p in enumerate(prompts):
        seq = p["ids"] + p["greedy"]
        for offset in ASSISTANT_OFFSETS:
            t = len(p["ids"]) + offset
            out = text_model(input_ids=torch.tensor([seq[:t]]), use_cache=False, return_shared_kv_states=True)
            kv = {k: (v[0], v[1]) for k, v in out.shared_kv_states.items()}
            h = out.last_hidden_state[:, t - 1:t]
            name = f"prompt{i}.t{t}"
            tensors[name + ".hidden"] = h[0, 0].float().contiguous()
            token, drafted, logits, projected = seq[t], [], [], []
            for _ in range(ASSISTANT_STEPS):
                o = assistant(inputs_embeds=torch.cat([embed(torch.tensor([[token]])), h], dim=-1),
                              position_ids=torch.tensor([[t]]), shared_kv_states=kv, use_cache=False)
                logits.append(o.logits[0, 0].float())
                projected.append(o.last_hidden_state[0, 0].float())
                token = int(torch.argmax(o.logits[0, 0]))
                drafted.append(token)
                h = o.last_hidden_state
            tensors[name + ".logits"] = torch.stack(logits).contiguous()        # [steps, vocab]
            tensors[name + ".projected"] = torch.stack(projected).contiguous()  # [steps, backbone hidden]
            cases.append({"prompt": i, "t": t, "ids": seq[:t + 1], "bonus_token": seq[t], "position": t,
                          "drafted": drafted, "name": name})
    save_file(tensors, os.path.join(assistant_dir, "reference.safetensors"))
    assisted = []
    for i, p in enumerate(prompts):
        entry = {"prompt": i}
        try:  # transformers' own assisted generation: lossless, so it must equal plain greedy
            assistant.generation_config.num_assistant_tokens = ASSISTANT_STEPS
            assistant.generation_config.num_assistant_tokens_schedule = "constant"
            out = target.generate(torch.tensor([p["ids"]]), assistant_model=assistant, do_sample=False,
                                  max_new_tokens=GREEDY_STEPS)
            tokens = out[0, len(p["ids"]):].tolist()
            entry["tokens"] = tokens
            entry["equals_greedy"] = tokens == p["greedy"][:len(tokens)]
        except Exception as e:  # keep the references above even if generate() changes its contract
            entry["error"] = f"{type(e).__name__}: {e}"
        assisted.append(entry)
    with open(os.path.join(assistant_dir, "reference.json"), "w") as f:
        json.dump({"transformers": transformers.__version__, "torch": torch.__version__,
                   "model_class": type(assistant).__name__, "target": os.path.basename(target_dir),
                   "steps": ASSISTANT_STEPS, "cases": cases, "assisted_generate": assisted}, f, indent=1)


def write_assistants(out, vocab_size, first_seed):
    for seed, (name, spec) in enumerate(ASSISTANTS.items(), start=first_seed):
        d = os.path.join(out, name)
        target_dir = os.path.join(out, spec["target"])
        with open(os.path.join(target_dir, "config.json")) as f:
            cfg = json.load(f)
        backbone = cfg.get("text_config", cfg)["hidden_size"]
        shutil.rmtree(d, ignore_errors=True)
        build_assistant(spec, vocab_size, backbone, seed).to(spec["dtype"]).save_pretrained(d)
        record_assistant(d, target_dir)
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        print(f"{name}: {size / 1e6:.2f} MB, files {sorted(os.listdir(d))}")


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
    ap.add_argument("--assistants-only", action="store_true",
                    help="only (re)build the assistants, next to targets already in --out")
    args = ap.parse_args()
    torch.manual_seed(0)
    os.makedirs(args.out, exist_ok=True)
    first_assistant_seed = len(TINY) + 1
    if args.assistants_only:
        with open(os.path.join(args.out, "tiny-31b", "config.json")) as f:
            vocab_size = json.load(f)["text_config"]["vocab_size"]
        write_assistants(args.out, vocab_size, first_assistant_seed)
        return
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
    write_assistants(args.out, vocab_size, first_assistant_seed)


if __name__ == "__main__":
    main()
