#!/usr/bin/env python3
"""Hugging Face transformers on the same GPU and the same dummy Gemma 4 31B weights as Jemma.

The reference side of the issue's side-by-side benchmark: transformers' Gemma4ForCausalLM built from
Jemma's shape-only config (src/main/resources/configs/gemma-4-31b.json) in bf16 on the GPU, its weights
filled by the shared dummy-weight generator (/work/helpers/DUMMY.md: the same bits Jemma's
--load-format dummy produces for the same seed), attention "sdpa", generation with a static cache
(cache_implementation="static"), in three modes: eager; torch.compile with the "cudagraphs" backend
(dynamo's capture replayed as CUDA graphs: no Python or launch overhead per step, ATen's kernels, and
minutes less compilation); and generate's own torch.compile (inductor, mode "reduce-overhead"). A mode
that fails is reported as failed and the others stand. Measures decode tokens/s at batch 1 and 8 with a 2k-token context:
each batch row gets a 2048-token prompt, generate prefills once, and the time of every decode step
is taken with CUDA events (recorded by a stopping criterion, so they include generate's own per-step
work: logits processing, argmax, the stop check); the median step gives tokens/s = batch / step time.

Also prints, for a fixed prompt, the greedy next tokens (a plain forward's top 5 logits, then 16
greedy tokens through the dynamic and the static cache) for comparison with Jemma's dummy-weight model.

Run on the GPU host (PyTorch and transformers installed), from the repository root:

    python3 tools/bench/transformers_side_by_side.py [--seed 0] [--batches 1,8]
        [--modes eager,compile-cudagraphs,compile]

Output: progress on stderr, one JSON object on stdout (also written to $OUT/transformers-side-by-side.json
when OUT is set), and a table.
"""
import argparse
import json
import math
import os
import statistics
import struct
import sys
import time
import traceback

MASK32 = 0xFFFFFFFF
FIXED_PROMPT = [2, 1000, 2000, 3000, 4000, 5000, 6000, 7000]


def log(msg):
    print(f"[side-by-side {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- the dummy-weight generator, pure Python (the reference the tensor version is checked against)

def fmix32(h):
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & MASK32
    h ^= h >> 16
    return h


def fnv1a32(data):
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & MASK32
    return h


def tensor_key(seed, name):
    return fmix32((seed & MASK32) ^ fnv1a32(name.encode("utf-8")))


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def value_range(last_dim):
    """fp32(1 / sqrt(last dim)): computed in double, rounded to fp32 once."""
    return f32(1.0 / math.sqrt(last_dim))


def value_py(key, index, rng):
    """Element `index` of a rank >= 2 tensor in fp32 (before rounding to the dtype)."""
    h = fmix32(key ^ ((index * 0x9E3779B9) & MASK32))
    u = f32((h >> 8) * 2.0 ** -24)
    return f32(f32(2.0 * u - 1.0) * rng)


def bf16_bits(x):
    """fp32 -> bf16, round to nearest even (no NaNs here)."""
    b = f32_bits(x)
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) & 0xFFFF


# Values pinned by Jemma's Java generator test (DummyWeightsTest): if this file and the Java side agree
# on these, they agree on the formula.
PINNED = [
    ("fnv", "model.layers.0.self_attn.q_proj.weight", 0x1AF1383B),
    ("key", (0, "model.layers.0.self_attn.q_proj.weight"), 0xDCB1547C),
    ("key", (0, "model.embed_tokens.weight"), 0xBE824EAB),
    ("key", (7, "model.language_model.layers.0.self_attn.q_proj.weight"), 0xB7EE83F8),
    ("f32", (0, "model.layers.0.self_attn.q_proj.weight", 5376, 0), 0xBC0A209D),
    ("f32", (0, "model.layers.0.self_attn.q_proj.weight", 5376, 1), 0xBC1CFC77),
    ("f32", (0, "model.layers.0.self_attn.q_proj.weight", 5376, 12345), 0x3BC76367),
    ("f32", (0, "model.layers.0.self_attn.q_proj.weight", 5376, 8192 * 5376 - 1), 0x3B97DD89),
    ("f32", (0, "model.embed_tokens.weight", 5376, 1409286143), 0x3A2E586F),
    ("f32", (0, "model.embed_tokens.weight", 5376, 7), 0x3B4FB795),
    ("f32", (0, "model.layers.5.mlp.down_proj.weight", 21504, 100_000_000), 0xBB8D83DE),
    ("bf16", (7, "model.language_model.layers.0.self_attn.q_proj.weight", 64, 0), 0xBDFF),
    ("bf16", (7, "model.language_model.layers.0.self_attn.q_proj.weight", 64, 8191), 0xBDCC),
]


def check_pinned():
    for kind, args, want in PINNED:
        if kind == "fnv":
            got = fnv1a32(args.encode("utf-8"))
        elif kind == "key":
            got = tensor_key(*args)
        else:
            seed, name, last, index = args
            x = value_py(tensor_key(seed, name), index, value_range(last))
            got = f32_bits(x) if kind == "f32" else bf16_bits(x)
        if got != want:
            raise AssertionError(f"dummy generator: {kind} {args} = {got:#x}, pinned {want:#x}")


# ---- the same generator on tensors: int64 arithmetic, every uint32 product split so nothing overflows

def mul32(a, c):
    """(a * c) mod 2^32 for a in [0, 2^32) (int64 tensor or array) and a constant c < 2^32, without
    int64 overflow: a * (c & 0xffff) < 2^48, and only the low 16 bits of a * (c >> 16) matter."""
    lo = c & 0xFFFF
    hi = c >> 16
    return (a * lo + (((a * hi) & 0xFFFF) << 16)) & MASK32


def fmix32_t(h):
    h = h ^ (h >> 16)
    h = mul32(h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = mul32(h, 0xC2B2AE35)
    return h ^ (h >> 16)


def hash_indices(key, index):
    """The 24-bit integer (h >> 8) of each element index (int64 tensor or array of indices < 2^32)."""
    return fmix32_t(mul32(index, 0x9E3779B9) ^ key) >> 8


def fill_dummy_(param, name, seed, chunk=1 << 26):
    """Fills a parameter in place with its dummy values, chunk by chunk on its own device (each chunk
    needs a few int64 temporaries: about 3 GB at the default 64M elements)."""
    import torch

    if param.dim() <= 1:
        param.fill_(1.0)
        return
    n = param.numel()
    if n >= 1 << 32:
        raise ValueError(f"{name}: {n} elements, the generator's index is 32-bit")
    key = tensor_key(seed, name)
    rng = torch.tensor(value_range(param.shape[-1]), dtype=torch.float32, device=param.device)
    flat = param.view(-1)
    for start in range(0, n, chunk):
        end = min(n, start + chunk)
        index = torch.arange(start, end, dtype=torch.int64, device=param.device)
        u = hash_indices(key, index).to(torch.float32) * (2.0 ** -24)       # exact: 24-bit integers
        x = (u * 2.0 - 1.0) * rng                                           # one fp32 multiply
        flat[start:end].copy_(x)                                            # to bf16, nearest even
        del index, u, x


def verify_filled(model, seed, samples=256):
    """Compares stored elements (fixed and random indices of a few tensors) with the pure Python generator."""
    import random

    import torch

    params = dict(model.named_parameters())
    names = ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
             "model.layers.5.mlp.down_proj.weight", "model.layers.5.self_attn.k_proj.weight",
             f"model.layers.{model.config.num_hidden_layers - 1}.mlp.up_proj.weight"]
    fixed = {"model.embed_tokens.weight": [0, 7, 1409286143], "model.layers.0.self_attn.q_proj.weight": [0, 1, 12345],
             "model.layers.5.mlp.down_proj.weight": [100_000_000]}
    r = random.Random(seed + 1)
    checked = mismatched = 0
    first_bad = None
    for name in names:
        p = params[name]
        flat = p.detach().view(-1)
        idx = fixed.get(name, []) + [flat.numel() - 1] + [r.randrange(flat.numel()) for _ in range(samples)]
        got = flat[torch.tensor(idx, device=flat.device)].view(torch.int16).to(torch.int32).cpu().tolist()
        key = tensor_key(seed, name)
        rng = value_range(p.shape[-1])
        for i, g in zip(idx, got):
            want = bf16_bits(value_py(key, i, rng))
            checked += 1
            if (g & 0xFFFF) != want:
                mismatched += 1
                first_bad = first_bad or f"{name}[{i}] = {g & 0xFFFF:#06x}, expected {want:#06x}"
    norms_ok = all(bool((p == 1).all()) for n, p in params.items() if p.dim() <= 1)
    return {"checked": checked, "mismatched": mismatched, "first_mismatch": first_bad, "vectors_all_ones": norms_ok}


# ---- the model

def load_config(path):
    from transformers import Gemma4TextConfig

    with open(path) as f:
        d = json.load(f)
    d.pop("architectures", None)
    d.pop("model_type", None)
    d.pop("dtype", None)
    return Gemma4TextConfig(**d)


def build_model(config, seed):
    import torch
    from transformers import Gemma4ForCausalLM

    t0 = time.time()
    config._attn_implementation = "sdpa"
    with torch.device("cuda"):
        model = Gemma4ForCausalLM._from_config(config, dtype=torch.bfloat16, attn_implementation="sdpa")
    model.eval()
    torch.cuda.synchronize()
    built = time.time() - t0
    t0 = time.time()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name != "lm_head.weight":            # tied to the embedding (no such checkpoint tensor)
                fill_dummy_(p, name, seed)
        for name, b in model.named_buffers():
            if name.endswith("layer_scalar"):       # checkpoint buffers of shape [1]: 1.0 like every vector
                b.fill_(1.0)
    torch.cuda.synchronize()
    filled = time.time() - t0
    tied = model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    if not tied:
        with torch.no_grad():
            model.lm_head.weight.copy_(model.model.embed_tokens.weight)
    n = sum(p.numel() for p in model.parameters())
    return model, {"build_s": round(built, 1), "fill_s": round(filled, 1), "parameters": n,
                   "weight_gb": round(sum(p.numel() * p.element_size() for p in model.parameters()) / 1e9, 2),
                   "lm_head_tied": tied}


def count_cache_layers(cache):
    for probe in (lambda c: len(c.layers), lambda c: len(c.keys.layers), lambda c: len(c)):
        try:
            return probe(cache)
        except Exception:
            pass
    return -1


def fix_static_cache(model):
    """Some transformers 5.x releases build a StaticCache with no layers for configs whose
    num_kv_shared_layers is 0 (layer_types[:-0] is empty). Detect it and, if so, drop the attribute
    (the model read it at construction; the cache then keeps every layer)."""
    from transformers import StaticCache

    layers = model.config.num_hidden_layers
    found = count_cache_layers(StaticCache(config=model.config, max_cache_len=16))
    if found == layers or found < 0:
        return f"StaticCache has {found} layers"
    if getattr(model.config, "num_kv_shared_layers", None) == 0:
        delattr(model.config, "num_kv_shared_layers")
        again = count_cache_layers(StaticCache(config=model.config, max_cache_len=16))
        return f"StaticCache had {found} of {layers} layers (num_kv_shared_layers = 0 bug); after the fix {again}"
    return f"StaticCache has {found} of {layers} layers"


def make_clock():
    """A stopping criterion that never stops and records a CUDA event per generated token."""
    import torch
    from transformers import StoppingCriteria

    class StepClock(StoppingCriteria):
        def __init__(self):
            self.events = []

        def __call__(self, input_ids, scores, **kwargs):
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            self.events.append(e)
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

        def step_ms(self, skip):
            torch.cuda.synchronize()
            ms = [a.elapsed_time(b) for a, b in zip(self.events, self.events[1:])]
            return ms[skip:]

    return StepClock()


def generation_config(new_tokens, static, compile_mode):
    """compile_mode: None (eager), "inductor" (generate's own torch.compile: inductor, reduce-overhead) or
    "cudagraphs" (torch.compile with the cudagraphs backend: dynamo capture replayed as CUDA graphs,
    no generated kernels; it compiles in a fraction of inductor's time)."""
    from transformers import CompileConfig, GenerationConfig

    kw = dict(max_new_tokens=new_tokens, min_new_tokens=None, do_sample=False, num_beams=1,
              pad_token_id=0, bos_token_id=2, eos_token_id=None, use_cache=True)
    if static:
        kw["cache_implementation"] = "static"
    gc = GenerationConfig(**kw)
    if compile_mode is None:
        gc.disable_compile = True
    elif compile_mode == "cudagraphs":
        cc = CompileConfig()
        cc.backend = "cudagraphs"
        cc.mode = None
        gc.compile_config = cc
    return gc


def run_generate(model, input_ids, new_tokens, static, compile_mode):
    import torch
    from transformers import StoppingCriteriaList

    clock = make_clock()
    start = torch.cuda.Event(enable_timing=True)
    start.record()
    t0 = time.time()
    with torch.no_grad():
        out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                             generation_config=generation_config(new_tokens, static, compile_mode),
                             stopping_criteria=StoppingCriteriaList([clock]))
    torch.cuda.synchronize()
    wall = time.time() - t0
    prefill_ms = start.elapsed_time(clock.events[0]) if clock.events else float("nan")
    return out, clock, prefill_ms, wall


def release_compiled(model):
    """Drops the previous batch size's compiled step and its CUDA graph pool (on the H200, batch 8's
    cudagraphs run ran out of memory with batch 1's pool, 69 GB of private pools in all, still held)."""
    import gc

    import torch

    for attr in ("_compiled_call", "_last_compile_config"):
        if hasattr(model, attr):
            delattr(model, attr)
    torch._dynamo.reset()
    try:
        from torch._inductor import cudagraph_trees
        cudagraph_trees.reset_cudagraph_trees()
    except Exception:
        pass
    gc.collect()
    torch.cuda.empty_cache()


MODES = {"eager": None, "compile": "inductor", "compile-cudagraphs": "cudagraphs"}


def decode_benchmark(model, batch, context, steps, mode, seed):
    import torch

    compile_mode = MODES[mode]
    g = torch.Generator(device="cpu").manual_seed(seed + batch)
    ids = torch.randint(3, model.config.vocab_size, (batch, context), generator=g).cuda()
    warmup_s = None
    if compile_mode:
        release_compiled(model)
        # The first generate compiles the decode step (and records its CUDA graphs); not timed.
        t0 = time.time()
        run_generate(model, ids, 4, static=True, compile_mode=compile_mode)
        warmup_s = round(time.time() - t0, 1)
        log(f"batch {batch}: {mode} warm-up (compilation) took {warmup_s} s")
    out, clock, prefill_ms, wall = run_generate(model, ids, steps + 1, static=True, compile_mode=compile_mode)
    ms = clock.step_ms(skip=2 if compile_mode else 1)
    med = statistics.median(ms)
    result = {"batch": batch, "mode": mode, "context": context,
              "decode_steps_timed": len(ms), "step_ms_median": round(med, 3),
              "step_ms_min": round(min(ms), 3), "step_ms_max": round(max(ms), 3),
              "tokens_per_s": round(batch * 1000.0 / med, 1), "prefill_ms": round(prefill_ms, 1),
              "generate_wall_s": round(wall, 2), "compile_warmup_s": warmup_s,
              "generated_shape": list(out.shape)}
    del out
    torch.cuda.empty_cache()
    return result


def greedy_reference(model):
    """The fixed prompt's next tokens: a plain forward's top 5, then 16 greedy tokens (dynamic and static cache)."""
    import torch

    ids = torch.tensor([FIXED_PROMPT], device="cuda")
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, -1].float()
    top = torch.topk(logits, 5)
    result = {"prompt": FIXED_PROMPT,
              "top5_next": [{"id": int(i), "logit": round(float(v), 4)} for v, i in zip(top.values, top.indices)]}
    for name, static in (("greedy_dynamic_cache", False), ("greedy_static_cache", True)):
        try:
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                     generation_config=generation_config(16, static, None))
            result[name] = out[0, len(FIXED_PROMPT):].tolist()
        except Exception as e:
            result[name] = f"failed: {type(e).__name__}: {e}"
    return result


def table(report):
    lines = [f"transformers {report['transformers']} / torch {report['torch']} on {report['device']}, "
             f"Gemma 4 31B dummy weights (seed {report['seed']}), sdpa, static cache, context {report['context']}",
             f"{'batch':>5} {'mode':>18} {'step ms':>9} {'tok/s':>9} {'prefill ms':>11} {'compile s':>10}"]
    for r in report["results"]:
        if "error" in r:
            lines.append(f"{r['batch']:>5} {r['mode']:>18}   failed: {r['error'][:80]}")
        else:
            lines.append(f"{r['batch']:>5} {r['mode']:>18} {r['step_ms_median']:>9.2f} {r['tokens_per_s']:>9.1f} "
                         f"{r['prefill_ms']:>11.1f} {r['compile_warmup_s'] or '-':>10}")
    g = report.get("greedy", {})
    if g:
        lines.append(f"fixed prompt {g.get('prompt')}: top 5 next {[t['id'] for t in g.get('top5_next', [])]}")
        lines.append(f"  greedy (dynamic cache): {g.get('greedy_dynamic_cache')}")
        lines.append(f"  greedy (static cache):  {g.get('greedy_static_cache')}")
    return "\n".join(lines)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_config = os.path.join(here, "..", "..", "src", "main", "resources", "configs", "gemma-4-31b.json")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=default_config)
    ap.add_argument("--seed", type=int, default=0, help="jemma.dummy-seed")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--modes", default="eager,compile-cudagraphs,compile",
                    help="comma-separated, in order: eager, compile-cudagraphs (torch.compile, cudagraphs backend), "
                         "compile (generate's torch.compile: inductor, reduce-overhead)")
    ap.add_argument("--skip-greedy", action="store_true", help="skip the fixed prompt's greedy tokens")
    ap.add_argument("--context", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=32, help="decode steps timed per measurement")
    ap.add_argument("--self-test", action="store_true", help="only check the pure Python generator and exit")
    args = ap.parse_args()

    check_pinned()
    if args.self_test:
        print("dummy generator: pinned values match")
        return 0

    import torch
    import transformers

    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "transformers": transformers.__version__, "config": os.path.relpath(args.config),
              "seed": args.seed, "context": args.context, "attention": "sdpa", "results": []}
    out_dir = os.environ.get("OUT")

    def emit():
        text = json.dumps(report, indent=1)
        if out_dir:
            with open(os.path.join(out_dir, "transformers-side-by-side.json"), "w") as f:
                f.write(text)

    config = load_config(args.config)
    log(f"building {config.num_hidden_layers} layers on the GPU")
    model, info = build_model(config, args.seed)
    report.update(info)
    log(f"built in {info['build_s']} s, filled in {info['fill_s']} s: {info['parameters'] / 1e9:.2f} B parameters, "
        f"{info['weight_gb']} GB; GPU memory {torch.cuda.memory_allocated() / 1e9:.1f} GB")
    report["generator_check"] = verify_filled(model, args.seed)
    log(f"generator check: {report['generator_check']}")
    report["static_cache"] = fix_static_cache(model)
    log(report["static_cache"])
    emit()

    if not args.skip_greedy:
        try:
            report["greedy"] = greedy_reference(model)
        except Exception as e:
            report["greedy"] = {"error": f"{type(e).__name__}: {e}"}
            traceback.print_exc()
        log(f"greedy: {report['greedy']}")
        emit()

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for mode in modes:
        if mode not in MODES:
            raise SystemExit(f"unknown mode {mode}: one of {', '.join(MODES)}")
        torch._dynamo.reset()
        for batch in [int(b) for b in args.batches.split(",")]:
            log(f"batch {batch}, {mode}")
            try:
                r = decode_benchmark(model, batch, args.context, args.steps, mode, args.seed)
            except Exception as e:
                traceback.print_exc()
                r = {"batch": batch, "mode": mode, "error": f"{type(e).__name__}: {e}"}
                torch.cuda.empty_cache()
            report["results"].append(r)
            log(json.dumps(r))
            emit()
    try:
        from torch._dynamo.utils import counters
        report["dynamo"] = {"stats": dict(counters["stats"]), "graph_breaks": sum(counters["graph_break"].values()),
                            "recompiles": dict(counters.get("recompiles", {}))}
    except Exception as e:
        report["dynamo"] = f"unavailable: {e}"
    for mode in modes:
        rows = [r for r in report["results"] if r["mode"] == mode]
        if mode != "eager" and (not rows or any("error" in r for r in rows)):
            report.setdefault("notes", []).append(f"{mode} failed for some batch: see its rows")
    emit()
    print(json.dumps(report, indent=1))
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
