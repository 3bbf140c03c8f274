#!/usr/bin/env python3
"""Trains Jemma's embedded model: a small Gemma 4 chat model and its gemma4_assistant drafter, from the
synthetic tasks of tasks.py, and measures them with transformers.

    python3 tools/train/train.py --out DIR [--target-seconds 330] [--assistant-seconds 70] [--tar FILE] [--smoke]

Stages (each printed with its time):
  1. data: a pool of training items (tasks.training_stream: test and validation keys never occur),
     rendered with the chat template.
  2. tokenizer: a SentencePiece-style BPE trained with `tokenizers` on the task text: U+2581 for spaces,
     every digit its own piece (so numbers are read digit by digit), newlines isolated, 256 byte
     pieces for byte fallback (nothing is unknown), Gemma 4's special tokens at Gemma's ids for
     pad/eos/bos (0/1/2) and <|turn> / <turn|> for the chat turns.
  3. target: Gemma4ForCausalLM (model_type gemma4_text): sliding and full layers, attention_k_eq_v on
     the full layers (their own head dim and kv heads), final logit softcapping. Loss on the answer
     tokens (and the closing <turn|>) only; AdamW, bf16 autocast, a wall-clock budget.
  4. save (bf16 safetensors, tokenizer, chat template, generation_config) and reload through
     transformers; greedy exact-match accuracy on the test split with model.generate.
  5. assistant: a gemma4_assistant (4 KV-shared layers reading the target's last sliding and last full
     layer KV; pre/post projections) trained on the frozen target's states to predict the target's own
     greedy continuations, 3 draft steps unrolled.
  6. accept length: greedy chain speculation (3 draft steps, then the target verifies all of them in one
     forward) on the test split; checks the output equals plain greedy decoding.

Writes DIR/jemma-embedded (target), DIR/jemma-embedded-assistant, DIR/results.json. Everything is
seeded; the wall-clock budgets make the number of steps (not the data order) depend on the machine.
"""
import argparse
import itertools
import json
import math
import os
import platform
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

import transformers
from transformers import Gemma4ForCausalLM, Gemma4TextConfig

try:
    from transformers import Gemma4AssistantConfig, Gemma4AssistantForCausalLM
except ImportError:
    from transformers.models.gemma4_assistant import Gemma4AssistantConfig, Gemma4AssistantForCausalLM

try:
    from transformers import PreTrainedTokenizerFast
except ImportError:  # transformers 5 renamed the fast tokenizer class
    from transformers import TokenizersBackend as PreTrainedTokenizerFast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tasks  # noqa: E402

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<|turn>", "<turn|>"]
PAD, EOS, BOS, UNK, MASK, TURN_OPEN, TURN_CLOSE = range(len(SPECIALS))
VOCAB = 1024
MAX_NEW_TOKENS = 40
DRAFT_STEPS = 3

# The chat template of the embedded model: Gemma 4's turn format (make_golden.py's template).
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

# The target: 6 layers, two of them full (k_eq_v, head dim 128, one kv head), sliding window 24 so
# that most prompts reach past it. About 3.4 M parameters, 6.8 MB in bf16.
TARGET = dict(hidden_size=256, intermediate_size=384, num_hidden_layers=6, num_attention_heads=4,
              num_key_value_heads=2, num_global_key_value_heads=1, head_dim=64, global_head_dim=128,
              layer_types=["sliding_attention", "sliding_attention", "full_attention",
                           "sliding_attention", "sliding_attention", "full_attention"],
              sliding_window=24, attention_k_eq_v=True, final_logit_softcapping=30.0,
              hidden_size_per_layer_input=0, max_position_embeddings=4096)
# The assistant: Gemma 4's assistant layout (3 sliding + 1 full, all KV-shared), at half the width.
ASSISTANT = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2, num_global_key_value_heads=1, head_dim=64, global_head_dim=128,
                 layer_types=["sliding_attention"] * 3 + ["full_attention"], attention_k_eq_v=True,
                 hidden_size_per_layer_input=0, vocab_size_per_layer_input=0, max_position_embeddings=4096)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def render_prompt(messages):
    """The chat template for one user turn with the generation prompt, without Jinja (checked against it)."""
    (m,) = messages
    return "<bos><|turn>user\n" + m["content"].strip() + "<turn|>\n<|turn>model\n"


# ---------------------------------------------------------------- tokenizer

def pre_tokenizer():
    # Digits (with the space before them), newlines and punctuation alone, then the usual split before
    # each space: a word is the same piece in a list, before a comma or at the end.
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex("\u2581?[0-9]|\n|[.,:;?!'\"]"), behavior="isolated"),
        pre_tokenizers.Split("\u2581", behavior="merged_with_next"),
    ])


def build_tokenizer(texts, out_dir):
    trainer_tok = Tokenizer(models.BPE(unk_token="<unk>"))
    trainer_tok.normalizer = normalizers.Replace(" ", "\u2581")
    trainer_tok.pre_tokenizer = pre_tokenizer()
    n_fixed = len(SPECIALS) + 256
    trainer = trainers.BpeTrainer(vocab_size=VOCAB - n_fixed, show_progress=False, special_tokens=[])
    trainer_tok.train_from_iterator(texts, trainer=trainer)
    trained = json.loads(trainer_tok.to_str())["model"]

    # Specials first (Gemma's ids: pad 0, eos 1, bos 2), then the 256 byte pieces, then the learned ones.
    vocab = {s: i for i, s in enumerate(SPECIALS)}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for piece, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        if piece not in vocab:
            vocab[piece] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in trained["merges"]]

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.pre_tokenizer = pre_tokenizer()
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])

    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                 unk_token="<unk>", mask_token="<mask>",
                                 additional_special_tokens=["<|turn>", "<turn|>"])
    hf.chat_template = CHAT_TEMPLATE
    hf.save_pretrained(out_dir)
    return hf, tok, len(vocab)


def encode_items(tok, items):
    """(prompt ids, answer ids + <turn|>) per item; the prompt starts with <bos> (the template writes it)."""
    prompts = tok.encode_batch([render_prompt(it["messages"]) for it in items], add_special_tokens=False)
    answers = tok.encode_batch([it["answer"] for it in items], add_special_tokens=False)
    return [(p.ids, a.ids + [TURN_CLOSE]) for p, a in zip(prompts, answers)]


def pack(encoded, device):
    """Right-padded [N, L] ids with per-row prompt and total lengths."""
    plen = np.fromiter((len(p) for p, _ in encoded), dtype=np.int64, count=len(encoded))
    tlen = plen + np.fromiter((len(a) for _, a in encoded), dtype=np.int64, count=len(encoded))
    flat = np.fromiter(itertools.chain.from_iterable(p + a for p, a in encoded), dtype=np.int32,
                       count=int(tlen.sum()))
    rows = np.repeat(np.arange(len(encoded)), tlen)
    cols = np.arange(len(flat)) - np.repeat(np.cumsum(tlen) - tlen, tlen)
    ids = np.full((len(encoded), int(tlen.max())), PAD, dtype=np.int32)
    ids[rows, cols] = flat
    return (torch.from_numpy(ids).to(device), torch.from_numpy(plen.astype(np.int32)).to(device),
            torch.from_numpy(tlen.astype(np.int32)).to(device))


# ---------------------------------------------------------------- target

def target_config(vocab_size):
    return Gemma4TextConfig(**TARGET, vocab_size=vocab_size, vocab_size_per_layer_input=vocab_size,
                            pad_token_id=PAD, eos_token_id=EOS, bos_token_id=BOS, rms_norm_eps=1e-6)


def batch_of(ids, plen, tlen, idx):
    """Inputs, labels (-100 outside the answer) for the rows idx, trimmed to their longest sequence."""
    L = int(tlen[idx].max())
    x = ids[idx, :L].long()
    pos = torch.arange(L, device=x.device)[None, :]
    # label at t is token t+1 when t+1 lies in the answer (from the prompt's end to the sequence's end)
    nxt = pos + 1
    keep = (nxt >= plen[idx, None]) & (nxt < tlen[idx, None])
    labels = torch.where(keep, torch.roll(x, -1, dims=1), torch.full_like(x, -100))
    return x, labels


@torch.no_grad()
def teacher_forced_accuracy(model, data, items, device, batch=512):
    """Share of items whose every answer token is the argmax (that is exactly greedy exact match, up to
    tokenizations of the same text); per task."""
    ids, plen, tlen = data
    model.eval()
    right = torch.zeros(len(items), dtype=torch.bool)
    for s in range(0, len(items), batch):
        idx = torch.arange(s, min(s + batch, len(items)), device=device)
        x, labels = batch_of(ids, plen, tlen, idx)
        with autocast(device):
            logits = model(input_ids=x, use_cache=False).logits
        ok = (logits.argmax(-1) == labels) | (labels == -100)
        right[s:s + len(idx)] = ok.all(dim=1).cpu()
    model.train()
    per = {}
    for it, r in zip(items, right.tolist()):
        per.setdefault(it["task"], []).append(r)
    return float(right.float().mean()), {t: sum(v) / len(v) for t, v in per.items()}


def autocast(device):
    # bf16 autocast on the GPU; on the CPU only when asked (to try the same dtype paths without a GPU)
    enabled = device.type == "cuda" or os.environ.get("TRAIN_CPU_AUTOCAST") == "1"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def lr_at(progress, step, peak, warmup):
    """Linear warm-up over `warmup` steps, then cosine decay to 5% over the (wall-clock) budget."""
    warm = min(1.0, (step + 1) / warmup)
    return peak * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train_target(model, train, val, val_items, device, seconds, args):
    ids, plen, tlen = train
    n = ids.shape[0]
    decay = [p for name, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for name, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98), eps=1e-8, **fused(device))
    g = torch.Generator(device=device).manual_seed(1)
    model.train()
    start = time.time()
    step, losses, history = 0, [], []
    next_eval, perfect = start + args.eval_every, 0
    while True:
        elapsed = time.time() - start
        if elapsed >= seconds or (args.max_steps and step >= args.max_steps):
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(elapsed / seconds, step, args.lr, args.warmup)
        idx = torch.randint(0, n, (args.batch,), device=device, generator=g)
        x, labels = batch_of(ids, plen, tlen, idx)
        with autocast(device):
            logits = model(input_ids=x, use_cache=False).logits
        loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 50 == 0:
            losses.append(float(loss))
        if time.time() >= next_eval:
            acc, per = teacher_forced_accuracy(model, val, val_items, device)
            history.append({"step": step, "seconds": round(time.time() - start, 1), "loss": float(loss),
                            "val_exact": acc})
            log(f"target step {step} ({time.time() - start:.0f} s): loss {float(loss):.4f}, validation exact "
                f"{acc:.4f} " + " ".join(f"{t} {v:.3f}" for t, v in per.items()))
            next_eval = time.time() + args.eval_every
            # Stop early once validation is perfect twice in a row late in training: the device is shared.
            perfect = perfect + 1 if acc == 1.0 and elapsed > 0.6 * seconds else 0
            if perfect >= 2:
                log("validation perfect twice: stopping early")
                break
    log(f"target: {step} steps of {args.batch} in {time.time() - start:.1f} s")
    return {"steps": step, "seconds": round(time.time() - start, 1), "batch": args.batch, "peak_lr": args.lr,
            "final_loss": losses[-1] if losses else float(loss.detach()), "history": history}


def fused(device):
    return {"fused": True} if device.type == "cuda" else {}


# ---------------------------------------------------------------- save / evaluate

def dir_size(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))


def save_model(model, d, tok_dir=None):
    os.makedirs(d, exist_ok=True)
    model.to(torch.bfloat16).save_pretrained(d)
    model.float()
    if tok_dir:
        for f in os.listdir(tok_dir):
            with open(os.path.join(tok_dir, f), "rb") as src, open(os.path.join(d, f), "wb") as dst:
                dst.write(src.read())
    with open(os.path.join(d, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": BOS, "eos_token_id": [EOS, TURN_CLOSE], "pad_token_id": PAD,
                   "do_sample": False}, f, indent=1)


def answer_text(tokenizer, ids):
    out = []
    for t in ids:
        if t in (EOS, TURN_CLOSE):
            break
        out.append(t)
    return tokenizer.decode(out, skip_special_tokens=True).strip()


@torch.no_grad()
def greedy_eval(model, tokenizer, items, device, batch=256):
    """Greedy generation with transformers' generate (left-padded batches); exact match of the answer."""
    tokenizer.padding_side = "left"
    outputs = []
    for s in range(0, len(items), batch):
        chunk = items[s:s + batch]
        texts = [tokenizer.apply_chat_template(it["messages"], tokenize=False, add_generation_prompt=True)
                 for it in chunk]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        gen = model.generate(**enc, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, pad_token_id=PAD,
                             eos_token_id=[EOS, TURN_CLOSE])
        for row in gen[:, enc["input_ids"].shape[1]:].tolist():
            outputs.append(row)
    right, per = 0, {}
    results = []
    for it, row in zip(items, outputs):
        text = answer_text(tokenizer, row)
        ok = text == it["answer"]
        right += ok
        per.setdefault(it["task"], []).append(ok)
        results.append({"id": it.get("id"), "output": text, "ok": ok})
    return right / len(items), {t: sum(v) / len(v) for t, v in per.items()}, results


@torch.no_grad()
def greedy_ids(model, prompt, max_new=MAX_NEW_TOKENS):
    """Plain greedy decoding by full recompute (no cache): the reference for the speculation check."""
    seq = list(prompt)
    out = []
    for _ in range(max_new):
        logits = model(input_ids=torch.tensor([seq], device=model.device), use_cache=False).logits[0, -1]
        t = int(logits.argmax())
        out.append(t)
        seq.append(t)
        if t in (EOS, TURN_CLOSE):
            break
    return out


# ---------------------------------------------------------------- assistant

def assistant_config(vocab_size, target_cfg):
    text = dict(ASSISTANT, vocab_size=vocab_size, sliding_window=target_cfg.sliding_window, pad_token_id=PAD,
                eos_token_id=EOS, bos_token_id=BOS, rms_norm_eps=1e-6, num_kv_shared_layers=ASSISTANT["num_hidden_layers"])
    return Gemma4AssistantConfig(text_config=text, backbone_hidden_size=target_cfg.hidden_size,
                                 use_ordered_embeddings=False, tie_word_embeddings=True)


def draft_masks(T, window, device):
    """The masks transformers' assistant builds, for all draft positions at once: the query that drafts
    after position t (it sits at position t+1) sees the target's KV at positions <= t (full layers) and at
    t-window..t (sliding layers: transformers' bidirectional window is inclusive, then flipped to the past).
    [1, 1, T, T] booleans, True = attend."""
    q = torch.arange(T, device=device)[:, None]
    k = torch.arange(T, device=device)[None, :]
    full = k <= q
    sliding = full & (k >= q - window)
    return {"full_attention": full[None, None], "sliding_attention": sliding[None, None]}


def assistant_step(assistant, inputs, positions, masks, kv):
    """One draft step for every position: (logits [B, T, V], projected state [B, T, backbone])."""
    x = assistant.pre_projection(inputs)
    h = assistant.model(inputs_embeds=x, attention_mask=masks, position_ids=positions, shared_kv_states=kv,
                        use_cache=False).last_hidden_state
    return assistant.lm_head(h), assistant.post_projection(h)


@torch.no_grad()
def target_states(target, x):
    out = target(input_ids=x, use_cache=False, output_hidden_states=True, return_shared_kv_states=True)
    kv = {k: (v[0].detach(), v[1].detach()) for k, v in out.shared_kv_states.items()}
    return out.hidden_states[-1].detach(), kv, out.logits


def train_assistant(assistant, target, data, device, seconds, args):
    """Chains of DRAFT_STEPS steps from every answer position, teacher-forced on the target's tokens: the
    step-k query after position t takes (embedding of token t+k, previous state) and predicts token t+1+k;
    its previous state is the target's final hidden state at t for k = 1, else the assistant's own
    projected state of step k-1."""
    ids, plen, tlen = data
    n = ids.shape[0]
    embed = target.get_input_embeddings()
    opt = torch.optim.AdamW(assistant.parameters(), lr=args.assistant_lr, betas=(0.9, 0.98), weight_decay=0.01,
                            **fused(device))
    g = torch.Generator(device=device).manual_seed(2)
    assistant.train()
    start, step, history = time.time(), 0, []
    window = target.config.sliding_window
    while True:
        elapsed = time.time() - start
        if elapsed >= seconds or (args.max_steps and step >= args.max_steps):
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(elapsed / seconds, step, args.assistant_lr, 100)
        idx = torch.randint(0, n, (args.assistant_batch,), device=device, generator=g)
        L = int(tlen[idx].max())
        x = ids[idx, :L].long()
        with autocast(device):
            h, kv, _ = target_states(target, x)
            emb = embed(x).detach()
        T = L - 1
        masks = draft_masks(T, window, device)
        positions = (torch.arange(T, device=device) + 1)[None, :].expand(x.shape[0], T)
        t = torch.arange(T, device=device)[None, :]
        kv_t = {k: (v[0][:, :, :T], v[1][:, :, :T]) for k, v in kv.items()}
        prev = h[:, :T]
        loss, parts = 0.0, []
        with autocast(device):
            for k in range(1, DRAFT_STEPS + 1):
                # input token t+k (embedding), label t+1+k; drafting starts at the last prompt position
                tok_idx = (t + k).clamp(max=L - 1)
                inp = torch.cat([torch.gather(emb, 1, tok_idx[..., None].expand(-1, -1, emb.shape[-1])
                                              .expand(x.shape[0], -1, -1)), prev], dim=-1)
                logits, prev = assistant_step(assistant, inp, positions, masks, kv_t)
                lab_idx = (t + 1 + k).clamp(max=L - 1).expand(x.shape[0], -1)
                labels = torch.gather(x, 1, lab_idx)
                valid = (t >= plen[idx, None] - 1) & (t + 1 + k < tlen[idx, None])
                labels = torch.where(valid, labels, torch.full_like(labels, -100))
                part = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                       ignore_index=-100)
                parts.append(float(part))
                loss = loss + part
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(assistant.parameters(), 1.0)
        opt.step()
        step += 1
        if step % max(1, args.log_every) == 0:
            log(f"assistant step {step} ({time.time() - start:.0f} s): loss per draft step "
                + " ".join(f"{p:.4f}" for p in parts))
            history.append({"step": step, "seconds": round(time.time() - start, 1), "loss_per_step": parts})
    return {"steps": step, "seconds": round(time.time() - start, 1), "batch": args.assistant_batch,
            "peak_lr": args.assistant_lr, "final_loss_per_step": parts if step else None, "history": history}


@torch.no_grad()
def speculative_greedy(target, assistant, prompt, steps=DRAFT_STEPS, max_new=MAX_NEW_TOKENS):
    """Greedy chain speculation the way transformers drives a gemma4_assistant: the first token comes from
    the prefill; then each round drafts `steps` tokens (all at the position of the last accepted token,
    attending to the target's KV before it), the target scores them in one forward, the longest agreeing
    prefix is kept plus the target's own next token. Returns (tokens, tokens emitted per round)."""
    device = target.device
    embed = target.get_input_embeddings()
    seq = list(prompt)
    h, kv, logits = target_states(target, torch.tensor([seq], device=device))
    out = [int(logits[0, -1].argmax())]
    seq.append(out[0])
    last = h[:, -1:]  # the state that produced the last token
    rounds = []
    while out[-1] not in (EOS, TURN_CLOSE) and len(out) < max_new:
        n_kv = len(seq) - 1  # the target's KV covers every position before the last token
        kv_now = {k: (v[0][:, :, :n_kv], v[1][:, :, :n_kv]) for k, v in kv.items()}
        mask = torch.ones(1, len(seq), dtype=torch.long, device=device)
        pos = torch.tensor([[len(seq) - 1]], device=device)
        token, state, drafts = seq[-1], last, []
        for _ in range(steps):
            inp = torch.cat([embed(torch.tensor([[token]], device=device)), state], dim=-1)
            o = assistant(inputs_embeds=inp, attention_mask=mask, position_ids=pos, shared_kv_states=kv_now,
                          use_cache=False)
            token, state = int(o.logits[0, -1].argmax()), o.last_hidden_state
            drafts.append(token)
        h, kv, logits = target_states(target, torch.tensor([seq + drafts], device=device))
        verify = logits[0, len(seq) - 1:].argmax(-1).tolist()  # the target's token after each candidate
        accepted = 0
        while accepted < steps and drafts[accepted] == verify[accepted]:
            accepted += 1
        new = drafts[:accepted] + [verify[accepted]]
        emitted = 0
        for t in new:
            if len(out) >= max_new:
                break
            out.append(t)
            emitted += 1
            if t in (EOS, TURN_CLOSE):
                break
        rounds.append(emitted)
        seq = seq + new
        last = h[:, len(seq) - 2:len(seq) - 1]  # state at the last accepted draft (or the round's input)
    return out, rounds


def measure_accept(target, assistant, tokenizer, items, deadline):
    per, all_rounds, same, done = {}, [], 0, 0
    first_rounds = []
    for it in items:
        if time.time() > deadline:
            break
        text = tokenizer.apply_chat_template(it["messages"], tokenize=False, add_generation_prompt=True)
        prompt = tokenizer.encode(text, add_special_tokens=False)
        spec, rounds = speculative_greedy(target, assistant, prompt)
        plain = greedy_ids(target, prompt)
        same += spec == plain
        done += 1
        all_rounds += rounds
        per.setdefault(it["task"], []).extend(rounds)
        if len(first_rounds) < 8:
            first_rounds.append({"id": it.get("id"), "prompt_ids": prompt, "greedy_ids": plain, "rounds": rounds})
    mean = lambda v: sum(v) / len(v) if v else float("nan")  # noqa: E731
    return {"items": done, "rounds": len(all_rounds), "accept_length": mean(all_rounds),
            "accept_length_per_task": {t: mean(v) for t, v in per.items()},
            "speculative_equals_greedy": same, "examples": first_rounds}


def max_accept_length(encoded, steps=DRAFT_STEPS):
    """The accept length a perfect drafter would reach on these answers (the first token comes from the
    prefill, then rounds of up to steps + 1 tokens)."""
    rounds, tokens = 0, 0
    for _, a in encoded:
        rest = len(a) - 1
        while rest > 0:
            k = min(rest, steps + 1)
            rounds, tokens, rest = rounds + 1, tokens + k, rest - k
    return tokens / rounds if rounds else float("nan")


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--smoke", action="store_true", help="tiny pool and step counts: every stage end to end")
    ap.add_argument("--pool", type=int, default=1_500_000, help="training items generated")
    ap.add_argument("--target-seconds", type=float, default=330)
    ap.add_argument("--assistant-seconds", type=float, default=70)
    ap.add_argument("--deadline", type=float, default=540, help="seconds for everything; budgets shrink to fit")
    ap.add_argument("--tar", help="also write the outputs as this .tar.gz (after the target, and at the end)")
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--assistant-batch", type=int, default=512)
    ap.add_argument("--assistant-lr", type=float, default=2e-3)
    ap.add_argument("--assistant-pool", type=int, default=32768, help="training prompts the target answers")
    ap.add_argument("--eval-every", type=float, default=30)
    ap.add_argument("--log-every", type=int, default=200)
    ap.add_argument("--accept-items", type=int, default=480)
    args = ap.parse_args()
    if args.smoke:  # full batch sizes (their step times are what the smoke run measures), few steps
        args.pool, args.max_steps, args.warmup = min(args.pool, 100_000), args.max_steps or 40, 10
        args.assistant_pool, args.eval_every, args.log_every, args.accept_items = 4096, 1e9, 10, 24
    t0 = time.time()
    deadline = t0 + args.deadline
    torch.manual_seed(0)
    random.seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    # fp32 means fp32 (the reference evaluations and the mask check compare fp32 results)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    env = {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
           "device": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "cpu"}
    log(f"start: {env}, args {vars(args)}")
    target_dir = os.path.join(args.out, "jemma-embedded")
    assistant_dir = os.path.join(args.out, "jemma-embedded-assistant")
    tok_dir = os.path.join(args.out, "_tokenizer")
    results = {"env": env, "args": vars(args), "stages": {}}

    def stage(name, since):
        results["stages"][name] = round(time.time() - since, 1)
        log(f"{name}: {time.time() - since:.1f} s")
        return time.time()

    # 1. data
    s = time.time()
    test_items = [dict({"id": f"test-{i:04d}"}, **it) for i, it in enumerate(tasks.test_split())]
    val_items = tasks.validation_split()
    train_items = tasks.training_items(args.pool)
    s = stage("data", s)

    # 2. tokenizer
    sample = train_items[:200_000]
    # the role names and the newline of the turn headers are as frequent as the prompts themselves
    texts = [it["messages"][0]["content"] for it in sample] + [it["answer"] for it in sample] \
        + ["user\nmodel\nsystem\n"] * len(sample)
    hf_tok, raw_tok, vocab_size = build_tokenizer(texts, tok_dir)
    for it in test_items[:50] + train_items[:200]:
        assert hf_tok.apply_chat_template(it["messages"], tokenize=False, add_generation_prompt=True) \
            == render_prompt(it["messages"]), "render_prompt differs from the chat template"
        assert raw_tok.decode(raw_tok.encode(it["answer"], add_special_tokens=False).ids) == it["answer"]
    train_enc = encode_items(raw_tok, train_items)
    val_enc, test_enc = encode_items(raw_tok, val_items), encode_items(raw_tok, test_items)
    lengths = sorted(len(p) + len(a) for p, a in train_enc)
    results["tokenizer"] = {"vocab_size": vocab_size, "sequence_tokens_p50": lengths[len(lengths) // 2],
                            "sequence_tokens_max": lengths[-1],
                            "example": raw_tok.encode(render_prompt(test_items[0]["messages"]) + test_items[0]["answer"],
                                                      add_special_tokens=False).tokens,
                            "perfect_drafter_accept_length": max_accept_length(test_enc)}
    log(f"tokenizer: {results['tokenizer']}")
    train = pack(train_enc, device)
    val, test = pack(val_enc, device), pack(test_enc, device)
    del train_enc
    s = stage("tokenizer", s)

    # 3. target
    cfg = target_config(vocab_size)
    model = Gemma4ForCausalLM(cfg).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"target: {n_params / 1e6:.2f} M parameters, layers {cfg.layer_types}")
    reserve = args.assistant_seconds + (90 if not args.smoke else 30)
    budget = max(10.0, min(args.target_seconds, deadline - time.time() - reserve))
    results["target"] = {"parameters": n_params, "config": {k: v for k, v in TARGET.items()}}
    results["target"]["training"] = train_target(model, train, val, val_items, device, budget, args)
    acc, per = teacher_forced_accuracy(model, val, val_items, device)
    results["target"]["validation_exact_teacher_forced"] = {"all": acc, "per_task": per}
    log(f"validation exact (teacher forced): {acc:.4f} {per}")
    s = stage("target_training", s)

    # 4. save, reload, evaluate with generate
    save_model(model, target_dir, tok_dir)
    del model
    tokenizer = transformers.AutoTokenizer.from_pretrained(target_dir)
    target = Gemma4ForCausalLM.from_pretrained(target_dir, dtype=torch.float32).to(device).eval()
    acc, per, outputs = greedy_eval(target, tokenizer, test_items, device)
    results["target"]["test_greedy_exact"] = {"all": acc, "per_task": per, "items": len(test_items)}
    results["target"]["test_failures"] = [o for o in outputs if not o["ok"]][:40]
    log(f"TEST greedy exact match (transformers generate, fp32 from the saved bf16 weights): {acc:.4f} {per}")
    # reference.json: prompt ids and greedy ids by full recompute, for the Java engine's own check
    ref, batched_differs = [], 0
    for it, o in zip(test_items[:56], outputs):
        prompt = tokenizer.apply_chat_template(it["messages"], tokenize=False, add_generation_prompt=True)
        ids = tokenizer.encode(prompt, add_special_tokens=False)
        greedy = greedy_ids(target, ids)
        batched_differs += answer_text(tokenizer, greedy) != o["output"]
        ref.append({"id": it["id"], "prompt_ids": ids, "greedy_ids": greedy})
    results["target"]["batched_generate_differs_from_unpadded"] = batched_differs
    log(f"batched (left-padded) generate vs unpadded greedy: {batched_differs} of {len(ref)} differ")
    with open(os.path.join(target_dir, "reference.json"), "w") as f:
        json.dump({"transformers": transformers.__version__, "torch": torch.__version__,
                   "note": "greedy by full recompute in fp32 from the bf16 weights", "items": ref}, f)
    results["target"]["size_bytes"] = dir_size(target_dir)
    s = stage("save_and_eval", s)
    with open(os.path.join(args.out, "results.json"), "w") as f:  # again at the end, with the assistant
        json.dump(results, f, indent=1)
    write_tar(args)

    try:
        assistant_stages(args, results, train_items, test_items, target, tokenizer, cfg, vocab_size, device,
                         assistant_dir, deadline, stage, s)
    except Exception as e:  # the target and its figures still come back
        import traceback
        traceback.print_exc()
        results["assistant_error"] = repr(e)
    results["total_seconds"] = round(time.time() - t0, 1)
    results["size_bytes_together"] = dir_size(target_dir) + (dir_size(assistant_dir) if os.path.isdir(assistant_dir) else 0)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    write_tar(args)
    log(f"done in {results['total_seconds']} s; sizes: target {results['target']['size_bytes'] / 1e6:.2f} MB, "
        f"both {results['size_bytes_together'] / 1e6:.2f} MB")


def write_tar(args):
    """The model directories and results.json as one .tar.gz (--tar), rewritten whole each time."""
    if not args.tar:
        return
    import tarfile
    tmp = args.tar + ".tmp"
    with tarfile.open(tmp, "w:gz") as tar:
        for name in ("jemma-embedded", "jemma-embedded-assistant", "results.json"):
            if os.path.exists(os.path.join(args.out, name)):
                tar.add(os.path.join(args.out, name), arcname=name)
    os.replace(tmp, args.tar)
    log(f"wrote {args.tar} ({os.path.getsize(args.tar) / 1e6:.2f} MB)")


def assistant_stages(args, results, train_items, test_items, target, tokenizer, cfg, vocab_size, device,
                     assistant_dir, deadline, stage, s):
    # 5. assistant: the target's own greedy continuations of training prompts
    src = train_items[:args.assistant_pool]
    tokenizer.padding_side = "left"
    seqs = []
    with torch.no_grad():
        for b in range(0, len(src), 4096):
            chunk = src[b:b + 4096]
            enc = tokenizer([render_prompt(it["messages"]) for it in chunk], return_tensors="pt", padding=True,
                            add_special_tokens=False).to(device)
            gen = target.generate(**enc, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, pad_token_id=PAD,
                                  eos_token_id=[EOS, TURN_CLOSE])
            for row_in, row_out in zip(enc["input_ids"].tolist(), gen[:, enc["input_ids"].shape[1]:].tolist()):
                p = [t for t in row_in if t != PAD]
                a = []
                for t in row_out:
                    a.append(t)
                    if t in (EOS, TURN_CLOSE):
                        break
                seqs.append((p, a))
    agree = sum(answer_text(tokenizer, a) == it["answer"] for (p, a), it in zip(seqs, src)) / len(src)
    log(f"assistant data: {len(seqs)} target continuations ({agree:.4f} equal the training answer)")
    a_data = pack(seqs, device)
    a_cfg = assistant_config(vocab_size, cfg)
    assistant = Gemma4AssistantForCausalLM(a_cfg).to(device)
    a_params = sum(p.numel() for p in assistant.parameters())
    log(f"assistant: {a_params / 1e6:.2f} M parameters")
    for p in target.parameters():
        p.requires_grad_(False)
    results["assistant"] = {"parameters": a_params, "config": ASSISTANT, "target_agreement_on_train": agree}
    try:
        results["assistant"]["mask_check_max_diff"] = check_masks(target, assistant, a_data, device)
    except AssertionError as e:  # train anyway: the accept length below is measured through transformers' own path
        log(f"WARNING: {e}")
        results["assistant"]["mask_check_error"] = str(e)
    a_budget = max(5.0, min(args.assistant_seconds, deadline - time.time() - (60 if not args.smoke else 15)))
    results["assistant"]["training"] = train_assistant(assistant, target, a_data, device, a_budget, args)
    assistant.eval()
    save_model(assistant, assistant_dir)
    assistant = Gemma4AssistantForCausalLM.from_pretrained(assistant_dir, dtype=torch.float32).to(device).eval()
    results["assistant"]["size_bytes"] = dir_size(assistant_dir)
    s = stage("assistant", s)

    # 6. accept length on the test split (3 draft steps, chain)
    acc_items = test_items[:args.accept_items]
    spec = measure_accept(target, assistant, tokenizer, acc_items, deadline - 5)
    results["assistant"]["accept"] = {k: v for k, v in spec.items() if k != "examples"}
    log(f"ACCEPT length at {DRAFT_STEPS} steps: {spec['accept_length']:.3f} over {spec['rounds']} rounds of "
        f"{spec['items']} items; per task {spec['accept_length_per_task']}; speculative == greedy for "
        f"{spec['speculative_equals_greedy']}/{spec['items']}")
    with open(os.path.join(assistant_dir, "reference.json"), "w") as f:
        json.dump({"transformers": transformers.__version__, "draft_steps": DRAFT_STEPS,
                   "note": "tokens emitted per speculative round (greedy chain, full recompute, fp32)",
                   "items": spec["examples"]}, f)
    stage("accept_length", s)


@torch.no_grad()
def check_masks(target, assistant, data, device):
    """The all-positions training forward must equal transformers' own assistant forward (which builds its
    masks from one query and the KV before it) at every position, sliding window included."""
    ids, plen, tlen = data
    row = int(torch.argmax(tlen))
    L = int(tlen[row])
    x = ids[row:row + 1, :L].long()
    h, kv, _ = target_states(target, x)
    emb = target.get_input_embeddings()(x)
    T = L - 1
    inp = torch.cat([emb[:, 1:], h[:, :T]], dim=-1)
    kv_t = {k: (v[0][:, :, :T], v[1][:, :, :T]) for k, v in kv.items()}
    positions = (torch.arange(T, device=device) + 1)[None]
    logits, state = assistant_step(assistant, inp, positions, draft_masks(T, target.config.sliding_window, device), kv_t)
    worst, scale = 0.0, float(logits.abs().max()) + float(state.abs().max())
    for t in range(T):
        kv_now = {k: (v[0][:, :, :t + 1], v[1][:, :, :t + 1]) for k, v in kv.items()}
        o = assistant(inputs_embeds=inp[:, t:t + 1], attention_mask=torch.ones(1, t + 2, dtype=torch.long, device=device),
                      position_ids=positions[:, t:t + 1], shared_kv_states=kv_now, use_cache=False)
        worst = max(worst, float((o.logits[0, 0] - logits[0, t]).abs().max()),
                    float((o.last_hidden_state[0, 0] - state[0, t]).abs().max()))
    log(f"assistant masks: all-positions forward vs transformers' per-position forward over {T} positions "
        f"(window {target.config.sliding_window}): max |diff| {worst:.2e} (values up to {scale:.2f})")
    if worst > 1e-4 * max(1.0, scale):
        raise AssertionError(f"the training masks differ from transformers' assistant masks ({worst})")
    return worst


if __name__ == "__main__":
    main()
