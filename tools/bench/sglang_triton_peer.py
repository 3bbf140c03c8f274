#!/usr/bin/env python3
"""sglang's own triton attention kernels as a peer of Jemma's attention backends, on the same GPU and shapes.

Issue 5's goal "verify with 4 query tokens per request: trtllm_mha >= 1.5x faster than triton at contexts >= 4k"
was written against sglang's triton backend. This driver runs sglang's kernels the way its TritonAttnBackend
calls them on an NVIDIA GPU, at the shapes of Jemma's TrtllmMhaTimingsGpuTest#decodeAndVerifyAgainstCopyBandwidth:

- target_verify, speculative topk 1 with 4 draft tokens (EAGLE verify): extend_attention_fwd(q, k, v, o,
  k_buffer, v_buffer, qo_indptr, kv_indptr, kv_indices, custom_mask, causal=True, mask_indptr,
  max_extend_len=4, k_descale=1.0, v_descale=1.0, layer.scaling, logit_cap=0.0, sliding_window_size=-1,
  sinks=None, window_kv_offsets=None, xai_temperature_len=-1). kv_indptr/kv_indices cover the cached prefix
  (seq_lens, ctx - 4 tokens per request, one index per token as create_flashinfer_kv_indices_triton writes
  them); the 4 draft tokens' K/V come in k/v; custom_mask is EAGLE's tree mask for a chain (FULL_MASK layout:
  4 x (prefix + 4) booleans per request, prefix all visible, drafts causal). sglang's split-KV verify kernel
  (verify_splitkv) is gated to AMD gfx95 and is not used on NVIDIA, so neither here. A second verify row
  passes custom_mask=None (causal only; not the backend's call) to show what the mask costs.
- decode (the sanity row): get_num_kv_splits_triton as TritonAttnBackend.get_num_kv_splits launches it
  (device_core_count = the SM count, max_kv_splits = --triton-attention-num-kv-splits, default 8), then
  decode_attention_fwd(q, k_buffer, v_buffer, o, kv_indptr, kv_indices, attn_logits, attn_lse,
  num_kv_splits, max_kv_splits, layer.scaling, 1.0, 1.0, logit_cap=0.0, use_pdl=<Hopper: True>).

Shapes (Gemma 4 31B, no sliding window: the full context also for the head dim 256 layers, as Jemma's test
does): head dim 512 with 32 query / 4 KV heads (the k_eq_v full layers), head dim 256 with 32 / 16; batch 32;
contexts 4k-32k; bf16 K/V pools of batch x 32k tokens, sequences' pages of 16 tokens shuffled over the pool
(sglang's kernels address tokens, so the page size only sets which tokens are contiguous). Gemma 4's
attention scale is 1.0. One small ragged case per shape and mode is checked against a float32 torch
reference first. Times: the median of CUDA-graph replays (10 calls per graph; sglang replays graphs for
decode and verify), and the median of single eager calls (which include the host's launch when it is
longer than the kernel). Bandwidth: KV bytes read once (batch x ctx x KV heads x head dim x 2 x 2 bytes)
over the time, against a device-to-device copy timed in the same run (read + write bytes over time).

The kernels are sglang's code and not part of Jemma: copy them (and stub the few sglang helpers they import)
into an ignored folder and pass it as --kernels; the folder needs extend_attention.py (extend_attention_fwd),
decode_attention.py (decode_attention_fwd) and metadata.py (get_num_kv_splits_triton).

    python3 tools/bench/sglang_triton_peer.py --kernels .dev/NAME/sglang_triton [--out sglang.tsv]
    python3 tools/bench/sglang_triton_peer.py --join sglang.tsv gpu-report.tsv [--table table.tsv]

The second form joins this script's TSV with the gpu-report.tsv of Jemma's timing test from the same call
into one table (sglang triton, Jemma's triton, Jemma's trtllm_mha; speeds relative to sglang's triton).
"""
import argparse
import math
import os
import re
import statistics
import sys
import time
import traceback

CHECK_BOUND = 2e-2   # max |out - ref| / max |ref|: bf16 output and bf16 P in the kernels


def log(msg):
    print(f"[sglang-peer {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kernels", help="folder holding sglang's extend_attention.py, decode_attention.py, metadata.py")
    p.add_argument("--out", default=None, help="TSV of the sglang rows (default $OUT/sglang-triton.tsv)")
    p.add_argument("--contexts", default="4096,8192,16384,32768")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--page", type=int, default=16)
    p.add_argument("--draft", type=int, default=4, help="query tokens per request in verify")
    p.add_argument("--head-dims", default="512,256")
    p.add_argument("--max-kv-splits", type=int, default=8, help="sglang --triton-attention-num-kv-splits")
    p.add_argument("--pdl", choices=["auto", "on", "off"], default="auto", help="decode's use_pdl (auto: Hopper+)")
    p.add_argument("--graph-calls", type=int, default=10)
    p.add_argument("--replays", type=int, default=20)
    p.add_argument("--join", nargs=2, metavar=("SGLANG_TSV", "GPU_REPORT_TSV"))
    p.add_argument("--table", default=None, help="with --join: where to write the joined table as TSV")
    return p.parse_args()


# ---- shapes and KV layout

KV_HEADS = {512: 4, 256: 16}
Q_HEADS = 32
SCALE = 1.0   # Gemma 4: q and k are RMS-normed, the attention scale is 1


def kv_bytes(batch, ctx, hd):
    return batch * ctx * KV_HEADS[hd] * hd * 2 * 2


class Pool:
    """sglang's token pool for one layer: k_buffer/v_buffer [tokens, kv heads, head dim] bf16, and the pages
    of `seqs` sequences of up to `max_ctx` tokens shuffled over it."""

    def __init__(self, torch, seqs, max_ctx, page, kv_heads, hd, seed):
        self.torch = torch
        self.page = page
        self.pages_per_seq = -(-max_ctx // page)
        g = torch.Generator(device="cuda")
        g.manual_seed(seed)
        n_pages = seqs * self.pages_per_seq
        self.physical = torch.randperm(n_pages, generator=g, device="cuda")
        tokens = n_pages * page
        self.k = torch.empty(tokens, kv_heads, hd, dtype=torch.bfloat16, device="cuda")
        self.v = torch.empty(tokens, kv_heads, hd, dtype=torch.bfloat16, device="cuda")
        self.k.uniform_(-1, 1, generator=g)
        self.v.uniform_(-1, 1, generator=g)

    def indices(self, lens):
        """kv_indptr (int32) and kv_indices (int64, one slot per token) of sequences 0..len(lens)-1."""
        torch = self.torch
        parts = []
        for s, n in enumerate(lens):
            pos = torch.arange(n, device="cuda")
            parts.append(self.physical[s * self.pages_per_seq + pos // self.page] * self.page + pos % self.page)
        indptr = torch.zeros(len(lens) + 1, dtype=torch.int32, device="cuda")
        indptr[1:] = torch.cumsum(torch.tensor(lens, device="cuda"), 0)
        return indptr, torch.cat(parts).to(torch.int64)


def chain_mask(torch, prefix_lens, draft):
    """EAGLE's FULL_MASK tree mask for topk 1: per request draft x (prefix + draft), prefix visible, drafts causal."""
    parts = []
    tri = torch.tril(torch.ones(draft, draft, dtype=torch.bool, device="cuda"))
    for n in prefix_lens:
        m = torch.ones(draft, n + draft, dtype=torch.bool, device="cuda")
        m[:, n:] = tri
        parts.append(m.flatten())
    lens = torch.tensor([draft * (n + draft) for n in prefix_lens], device="cuda")
    indptr = torch.zeros(len(prefix_lens) + 1, dtype=torch.int64, device="cuda")
    indptr[1:] = torch.cumsum(lens, 0)
    return torch.cat(parts), indptr


class Peer:
    def __init__(self, args):
        import torch
        import triton
        sys.path.insert(0, os.path.abspath(args.kernels))
        import decode_attention
        import extend_attention
        import metadata
        self.torch, self.triton, self.args = torch, triton, args
        self.extend_attention_fwd = extend_attention.extend_attention_fwd
        self.decode_attention_fwd = decode_attention.decode_attention_fwd
        self.get_num_kv_splits_triton = metadata.get_num_kv_splits_triton
        props = torch.cuda.get_device_properties(0)
        self.sm_count = props.multi_processor_count
        self.device = f"{props.name}, {self.sm_count} SMs, torch {torch.__version__}, triton {triton.__version__}"
        cap = torch.cuda.get_device_capability()
        self.pdl = {"on": True, "off": False}.get(args.pdl, cap[0] >= 9)

    # -- sglang's calls

    def verify_call(self, pool, q, k_ext, v_ext, o, qo_indptr, kv_indptr, kv_indices, mask, mask_indptr):
        draft = self.args.draft
        return lambda: self.extend_attention_fwd(
            q, k_ext, v_ext, o, pool.k, pool.v, qo_indptr, kv_indptr, kv_indices, mask, True, mask_indptr,
            draft, 1.0, 1.0, SCALE, logit_cap=0.0, sliding_window_size=-1, sinks=None, window_kv_offsets=None,
            xai_temperature_len=-1)

    def num_kv_splits(self, seq_lens, kv_heads):
        torch = self.torch
        splits = torch.empty(len(seq_lens), dtype=torch.int32, device="cuda")
        lens = torch.tensor(seq_lens, dtype=torch.int64, device="cuda")
        n = len(seq_lens)
        schedule = 256 if n < 256 else self.triton.next_power_of_2(n)
        self.get_num_kv_splits_triton[(1,)](splits, lens, n, 1, Q_HEADS, kv_heads, self.args.max_kv_splits,
                                            self.sm_count, MAX_NUM_SEQ=schedule)
        return splits

    def decode_call(self, pool, q, o, kv_indptr, kv_indices, splits):
        torch, m = self.torch, self.args.max_kv_splits
        b, hd = q.shape[0], q.shape[2]
        logits = torch.empty(b, Q_HEADS, m, hd, dtype=torch.float32, device="cuda")
        lse = torch.empty(b, Q_HEADS, m, dtype=torch.float32, device="cuda")
        return lambda: self.decode_attention_fwd(
            q, pool.k, pool.v, o, kv_indptr, kv_indices, logits, lse, splits, m, SCALE, 1.0, 1.0,
            logit_cap=0.0, sinks=None, xai_temperature_len=-1, use_pdl=self.pdl)

    # -- timing

    def time_graph(self, fn):
        torch = self.torch
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(s)
        torch.cuda.synchronize()
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for _ in range(self.args.graph_calls):
                fn()
        for _ in range(3):
            g.replay()
        torch.cuda.synchronize()
        times = []
        for _ in range(self.args.replays):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            g.replay()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b) * 1000 / self.args.graph_calls)
        del g
        return statistics.median(times)

    def time_eager(self, fn, reps=30):
        torch = self.torch
        for _ in range(5):
            fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(reps):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b) * 1000)
        return statistics.median(times)

    def copy_gbps(self, nbytes=2 << 30):
        torch = self.torch
        src = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
        dst = torch.empty_like(src)
        us = self.time_eager(lambda: dst.copy_(src), reps=20)
        del src, dst
        return 2 * nbytes / us / 1e3

    # -- the check: float32 reference of one small ragged batch

    def reference(self, pool, q, k_ext, v_ext, q_lens, kv_indptr, kv_indices, draft_causal):
        """Per request: q rows [n, H, D] against the cached tokens plus (verify) its own draft K/V, causal
        among the drafts."""
        torch = self.torch
        group = Q_HEADS // pool.k.shape[1]
        out, q_at, ext_at = [], 0, 0
        for s in range(len(q_lens)):
            n = q_lens[s]
            idx = kv_indices[kv_indptr[s]:kv_indptr[s + 1]]
            k = pool.k[idx].float()
            v = pool.v[idx].float()
            if k_ext is not None:
                k = torch.cat([k, k_ext[ext_at:ext_at + n].float()])
                v = torch.cat([v, v_ext[ext_at:ext_at + n].float()])
                ext_at += n
            k = k.repeat_interleave(group, dim=1)   # [keys, H, D]
            v = v.repeat_interleave(group, dim=1)
            qs = q[q_at:q_at + n].float()              # [n, H, D]
            scores = torch.einsum("qhd,khd->hqk", qs, k) * SCALE
            if draft_causal:
                keys, prefix = k.shape[0], k.shape[0] - n
                col = torch.arange(keys, device="cuda")[None, :]
                row = torch.arange(n, device="cuda")[:, None]
                scores = scores.masked_fill(~((col < prefix) | (col - prefix <= row))[None], float("-inf"))
            out.append(torch.einsum("hqk,khd->qhd", torch.softmax(scores, -1), v))
            q_at += n
        return torch.cat(out)

    def check(self, hd):
        torch, draft = self.torch, self.args.draft
        kvh = KV_HEADS[hd]
        prefix = [37, 700, 2100]   # ragged; decode: uneven lengths take several KV splits
        pool = Pool(torch, len(prefix), 2200, self.args.page, kvh, hd, seed=hd + 7)
        results = []
        g = torch.Generator(device="cuda")
        g.manual_seed(hd)
        # verify
        n = len(prefix) * draft
        q = torch.empty(n, Q_HEADS, hd, dtype=torch.bfloat16, device="cuda").uniform_(-1, 1, generator=g)
        k_ext = torch.empty(n, kvh, hd, dtype=torch.bfloat16, device="cuda").uniform_(-1, 1, generator=g)
        v_ext = torch.empty(n, kvh, hd, dtype=torch.bfloat16, device="cuda").uniform_(-1, 1, generator=g)
        o = torch.full_like(q, float("nan"))
        qo_indptr = torch.arange(0, (len(prefix) + 1) * draft, draft, dtype=torch.int32, device="cuda")
        kv_indptr, kv_indices = pool.indices(prefix)
        mask, mask_indptr = chain_mask(torch, prefix, draft)
        self.verify_call(pool, q, k_ext, v_ext, o, qo_indptr, kv_indptr, kv_indices, mask, mask_indptr)()
        ref = self.reference(pool, q, k_ext, v_ext, [draft] * len(prefix), kv_indptr.tolist(), kv_indices, True)
        results.append((f"verify {draft}", (o.float() - ref).abs().max().item() / ref.abs().max().item()))
        o.fill_(float("nan"))
        self.verify_call(pool, q, k_ext, v_ext, o, qo_indptr, kv_indptr, kv_indices, None, None)()
        results.append((f"verify {draft} causal, no mask",
                        (o.float() - ref).abs().max().item() / ref.abs().max().item()))
        # decode
        q1 = torch.empty(len(prefix), Q_HEADS, hd, dtype=torch.bfloat16, device="cuda").uniform_(-1, 1, generator=g)
        o1 = torch.full_like(q1, float("nan"))
        splits = self.num_kv_splits(prefix, kvh)
        try:
            self.decode_call(pool, q1, o1, kv_indptr, kv_indices, splits)()
        except Exception as e:
            if not self.pdl:
                raise
            log(f"decode with use_pdl=True raised ({e!r}); use_pdl=False from here on")
            self.pdl = False
            self.decode_call(pool, q1, o1, kv_indptr, kv_indices, splits)()
        ref1 = self.reference(pool, q1, None, None, [1] * len(prefix), kv_indptr.tolist(), kv_indices, False)
        results.append((f"decode (splits {splits.tolist()})",
                        (o1.float() - ref1).abs().max().item() / ref1.abs().max().item()))
        del pool
        return results

    # -- the timings

    def run(self):
        torch, args = self.torch, self.args
        contexts = [int(c) for c in args.contexts.split(",")]
        rows = []
        log(f"device: {self.device}; decode use_pdl={self.pdl}")
        copy = self.copy_gbps()
        log(f"device copy 2 GiB: {copy:.0f} GB/s (read + write)")
        for hd in [int(h) for h in args.head_dims.split(",")]:
            kvh = KV_HEADS[hd]
            shape = f"hd{hd} 32/{kvh}"
            try:
                for what, err in self.check(hd):
                    status = "PASS" if err <= CHECK_BOUND and not math.isnan(err) else "FAIL"
                    log(f"check {shape} {what}: max rel err {err:.3e} (bound {CHECK_BOUND:.0e}) {status}")
                    rows.append(("check", shape, what, "", f"{err:.3e}", status, "", "", ""))
            except Exception:
                traceback.print_exc()
                rows.append(("check", shape, "check raised", "", "", "FAIL", "", "", ""))
            pool = Pool(torch, args.batch, max(contexts), args.page, kvh, hd, seed=hd)
            g = torch.Generator(device="cuda")
            g.manual_seed(hd + 1)
            for ctx in contexts:
                nbytes = kv_bytes(args.batch, ctx, hd)
                for mode in ("decode", f"verify {args.draft}", f"verify {args.draft} causal, no mask"):
                    tokens = 1 if mode == "decode" else args.draft
                    try:
                        n = args.batch * tokens
                        q = torch.empty(n, Q_HEADS, hd, dtype=torch.bfloat16, device="cuda").uniform_(-1, 1, generator=g)
                        o = torch.empty_like(q)
                        if mode == "decode":
                            lens = [ctx] * args.batch
                            kv_indptr, kv_indices = pool.indices(lens)
                            splits = self.num_kv_splits(lens, kvh)
                            note = f"kv splits {splits[0].item()} of {args.max_kv_splits}"
                            fn = self.decode_call(pool, q, o, kv_indptr, kv_indices, splits)
                        else:
                            lens = [ctx - tokens] * args.batch
                            k_ext = torch.empty(n, kvh, hd, dtype=torch.bfloat16, device="cuda").uniform_(-1, 1, generator=g)
                            v_ext = torch.empty_like(k_ext).uniform_(-1, 1, generator=g)
                            qo_indptr = torch.arange(0, (args.batch + 1) * tokens, tokens, dtype=torch.int32,
                                                     device="cuda")
                            kv_indptr, kv_indices = pool.indices(lens)
                            if mode.endswith("no mask"):
                                # Not how the backend calls it (it passes EAGLE's mask): shows what the mask costs.
                                mask, mask_indptr = None, None
                                note = "extend_attention_fwd, causal, custom_mask None"
                            else:
                                mask, mask_indptr = chain_mask(torch, lens, tokens)
                                note = "extend_attention_fwd, custom mask (chain)"
                            fn = self.verify_call(pool, q, k_ext, v_ext, o, qo_indptr, kv_indptr, kv_indices, mask,
                                                  mask_indptr)
                        eager = self.time_eager(fn)
                        try:
                            graph = self.time_graph(fn)
                        except Exception as e:
                            log(f"graph capture failed ({e!r}); eager only")
                            graph = float("nan")
                        best = graph if not math.isnan(graph) else eager
                        gbs = nbytes / best / 1e3
                        log(f"sglang triton {mode} {shape} b{args.batch} ctx {ctx}: graph {graph:.1f} us, eager "
                            f"{eager:.1f} us; {gbs:.0f} GB/s, {100 * gbs / copy:.0f}% of copy ({note})")
                        rows.append(("time", shape, mode, ctx, f"{graph:.1f}", f"{eager:.1f}", f"{gbs:.0f}",
                                     f"{100 * gbs / copy:.1f}", note))
                    except Exception:
                        traceback.print_exc()
                        rows.append(("time", shape, mode, ctx, "", "", "", "", "raised"))
            del pool
            torch.cuda.empty_cache()
        out = args.out or os.path.join(os.environ.get("OUT", "."), "sglang-triton.tsv")
        with open(out, "w") as f:
            f.write(f"# {self.device}; copy {copy:.0f} GB/s; batch {args.batch}, page {args.page}, scale {SCALE}; "
                    f"decode use_pdl={self.pdl}; max_kv_splits {args.max_kv_splits}\n")
            f.write("kind\tshape\tmode\tctx\tgraph_us|err\teager_us|status\tGB/s\tpct_copy\tnote\n")
            for r in rows:
                f.write("\t".join(str(x) for x in r) + "\n")
        log(f"wrote {out}")
        return 0 if all(r[5] != "FAIL" for r in rows if r[0] == "check") else 1


# ---- the joined table

def join(sglang_tsv, report_tsv, table_out):
    sg = {}
    for line in open(sglang_tsv):
        f = line.rstrip("\n").split("\t")
        if f[0] == "time" and f[4]:
            us = float(f[4]) if f[4] != "nan" else float(f[5])
            sg[(f[1], f[2], int(f[3]))] = (us, f[7])
    ours = {}
    name = re.compile(r"^(trtllm_mha|triton) (decode|verify \d+) (hd\d+ 32/\d+) b32 ctx (\d+)$")
    for line in open(report_tsv):
        f = line.rstrip("\n").split("\t")
        if len(f) >= 5 and f[0] == "time":
            m = name.match(f[2])
            if m:
                pct = re.search(r"(\d+)% of copy", f[4])
                ours[(m.group(1), m.group(3), m.group(2), int(m.group(4)))] = (
                    float(f[3].split()[0]), pct.group(1) if pct else "")
    head = ["shape", "mode", "ctx", "sglang triton us (% copy)", "Jemma triton us (% copy)",
            "Jemma trtllm_mha us (% copy)", "trtllm_mha speed / sglang triton", "Jemma triton speed / sglang triton"]
    rows = []
    for (shape, mode, ctx), (sus, spct) in sorted(sg.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        t = ours.get(("triton", shape, mode, ctx))
        x = ours.get(("trtllm_mha", shape, mode, ctx))
        fmt = lambda v: f"{v[0]:.1f} ({v[1]}%)" if v else "-"
        rows.append([shape, mode, str(ctx), f"{sus:.1f} ({float(spct):.0f}%)", fmt(t), fmt(x),
                     f"{sus / x[0]:.2f}x" if x else "-", f"{sus / t[0]:.2f}x" if t else "-"])
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    if table_out:
        with open(table_out, "w") as f:
            for r in [head] + rows:
                f.write("\t".join(r) + "\n")
    return 0


def main():
    args = parse_args()
    if args.join:
        return join(args.join[0], args.join[1], args.table)
    if not args.kernels:
        print("--kernels is required (the folder with sglang's kernel files)", file=sys.stderr)
        return 2
    return Peer(args).run()


if __name__ == "__main__":
    sys.exit(main())
