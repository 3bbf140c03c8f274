// Specialized decode / chain-verify attention (the "trtllm_mha" backend, XQA-style), over the same paged
// bf16 KV buffers and per-step metadata (chunk records, block tables) as the general backend:
// attention_meta.cuh. Switching backends changes no stored data.
//
// One thread block per (split, kv head, chunk): a chunk this kernel does not serve (a tree, or more than
// max_tokens query tokens: a prefill chunk, which the general backend takes) returns at once. It streams the chunk's visible keys through shared memory
// once and serves every query head of the KV head's group and every query token of the chunk (a decode
// token or a causal draft chain) at the same time: ROWS = 8 * NQ query rows, row r = token (r / group),
// head (kv_head * group + r % group), padded with zero rows.
//
// Per tile of 16 keys (3 or 5 tiles in flight through a cp.async pipeline, K and V rows padded by 16 bytes
// so that ldmatrix is free of bank conflicts):
//   1. S^T = K . Q^T on the tensor cores (mma m16n8k16 bf16, fp32 accumulate): the keys are the A operand
//      (16 rows), the query rows the B operand (8 per n-tile: decode wastes nothing at group 8). Each
//      warp takes an equal slice of the head dim (Shape::WARPS); q is split into bf16 hi + lo parts (two mmas), so the
//      scores are as exact as fp32 q against the bf16 keys (Gemma's scale is 1.0: scores reach tens).
//   2. The warps' partial scores are summed through shared memory; the online softmax (fp32, base 2) gives the
//      tile's weights P (bf16, in shared memory) and each row's rescale factor.
//   3. O^T += V^T . P^T on the tensor cores; each warp owns the same slice of the head dim of O.
// Causal masking within the chain and sliding windows are per (row, key position). Long sequences with
// few (chunk, kv head) pairs split their keys over `splits` blocks (XQA's multi-block mode): each writes
// its unnormalized O and (max, sum) per row, counts itself in on a per-(chunk, kv head) arrival counter,
// and the last to arrive merges all partials in split order (deterministic) and resets the counter: no
// second launch. The counters (`arrivals`, 1 + MAX_GROUPS uint32 per (chunk, kv head)) start at zero and
// are zero again after every launch, so a captured graph replays.
//
// Variants (extern "C", one per compiled shape): jemma_xqa_hd{64,128,256,512}_p{16,32,64}_q{1,2,4}, where
// q is NQ, the number of 8-row query tiles: group * max_tokens <= 8 * NQ; and the wide
// rounds jemma_xqa_hd{256,512}_p{16,32,64}_q{1,2}_r{2,4} (TPR tiles of 16 keys per round); and the 32-row
// experiments at head dim 512 (NOTES.md, trtllm_mha run 6): jemma_xqa_hd512_p{16,32,64}_q4_ring (block table
// through a shared-memory ring), _q4_pipe8_ring (pipelined rounds, 8 warps), _q4_r2_ring. Launch: grid
// (splits, kv_heads, every chunk of the step), Shape<HD, NQ, TPR>::THREADS threads, dynamic
// shared memory Shape<HD, NQ, TPR>::SMEM bytes (the launcher computes the same formulas; the kernel
// checks the shared memory).
#include "jemma_common.cuh"
#include "attention_meta.cuh"
#include "jemma_ptx.cuh"

namespace jemma_xqa {

constexpr int KEYS = 16;                       // keys per tile
constexpr int MAX_SPLITS = 64;                 // blocks per (chunk, kv head) at most (TrtllmMhaAttention)
constexpr int MERGE_GROUP = 8;                 // splits per first-level merge group
constexpr int MAX_GROUPS = MAX_SPLITS / MERGE_GROUP;
constexpr float NEG_INF = -INFINITY;
constexpr int TABLE_RING = 64;                 // RING variants: block-table entries in shared memory
constexpr int TABLE_AHEAD = 32;                // tiles between a ring entry's read and its tile's copies

template <int HD, int NQ, int TPR = 1, int PIPE = 0, bool RING = false>
struct Shape {
    static constexpr int ROWS = 8 * NQ;                      // query rows per block, padded
    // One warp per 16 dims of the head dim, at most 8 (head dim 64: 4 warps, 128 and up: 8); 16 for 32
    // rows at head dim 512 (one block per SM there: more warps hide the latencies, and half the slice per
    // warp halves q's and O's registers). PIPE > 0: the pipelined rounds (below) with PIPE warps.
    static constexpr int WARPS = PIPE > 0 ? PIPE : (HD == 512 && NQ > 2 && TPR == 1) ? 16 : (HD / 16 < 8 ? HD / 16 : 8);
    static constexpr int THREADS = WARPS * 32;
    static constexpr int DSL = HD / WARPS;                   // head-dim slice per warp: 16, 32 or 64
    static constexpr int KSTEPS = DSL / 16;                  // 16-wide steps over the slice
    static constexpr int CHUNKS = HD / 8;                    // 16-byte pieces per K or V row
    static constexpr int ROW_BYTES = HD * 2 + 16;            // padded smem row of K or V
    static constexpr int STAGE_BYTES = 2 * KEYS * ROW_BYTES; // K tile then V tile
    // Keys per round (one pass of partial scores, softmax and P.V between barriers): TPR tiles of 16.
    // Wide rounds (TPR 2, 4) are for small batches, where a block has few tiles and the per-round chain
    // of barriers and dependent steps, not bandwidth, sets its time.
    static constexpr int RKEYS = KEYS * TPR;
    // TPR 1: hd 512 with up to 16 query rows: 3 stages (two blocks per SM); 32 rows: 5 stages, one block
    // per SM (registers); hd 256: 5 stages of half the size, two blocks per SM; hd 64/128: 4 small stages
    // (under 48 KB in all). Wide rounds: hd 256 5 stages (two blocks per SM), hd 512 3 stages at TPR 2
    // (two blocks per SM) or 6 at TPR 4 (5 for 16 rows: 227 KB; one block per SM).
    // Pipelined rounds (PIPE > 0, head dim 512 with 32 rows: one block per SM): round rd's P.V runs with
    // round rd + 1's scores, so a round's V stays one round longer: 6 stages at 8 warps (222 KB), 5 at 16.
    static constexpr int STAGES = PIPE > 0 ? (PIPE == 8 ? 6 : 5)
                                : TPR == 1 ? ((HD == 512 && NQ <= 2) ? 3 : HD <= 128 ? 4 : 5)
                                : HD == 512 ? (TPR == 2 ? (NQ > 2 ? 5 : 3) : NQ == 1 ? 6 : 5) : 5;
    static constexpr int LAG = PIPE > 0 ? 2 : 1;             // rounds a stage stays in use
    static constexpr int PROLOGUE = STAGES - LAG * TPR;      // tiles issued before the first round
    static constexpr int RED_STRIDE = RKEYS + 4;             // floats per row of a warp's partial S
    static constexpr int P_STRIDE = RKEYS + 8;               // bf16 per row of P (odd 16-byte units)
    static constexpr int RED_OFFSET = STAGES * STAGE_BYTES;
    static constexpr int P_OFFSET = RED_OFFSET + WARPS * ROWS * RED_STRIDE * 4;
    static constexpr int CORR_OFFSET = P_OFFSET + ROWS * P_STRIDE * 2;
    static constexpr int RING_OFFSET = CORR_OFFSET + 3 * ROWS * 4;  // after corr, final m, final l
    // RING: block-table entries TABLE_AHEAD tiles ahead of the copies, in a ring of TABLE_RING ints
    // filled by 4-byte cp.async (no register waits on a table read in the round loop).
    static constexpr int SMEM = RING_OFFSET + (RING ? TABLE_RING * 4 : 0);
    // Two blocks per SM where two fit the 228 KB of an SM (1 KB reserved per block).
    static constexpr int MIN_BLOCKS = 2 * (SMEM + 1024) <= 228 * 1024 ? 2 : 1;
    static_assert(DSL % 16 == 0 && KEYS * CHUNKS % THREADS == 0, "a warp's slice is whole mma steps");
    static_assert(PROLOGUE >= 0, "a round fits the stages");
    static_assert(PIPE == 0 || STAGES >= 3 * TPR, "pipelined rounds: two rounds in use, one arriving");
    // The merges keep their weights per (partial, row) in the stage buffers.
    static_assert(MERGE_GROUP * ROWS * 4 <= STAGES * STAGE_BYTES, "merge weights fit the stages");
};

template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" :: "n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(unsigned addr, unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}

__device__ __forceinline__ void ldmatrix_x4_trans(unsigned addr, unsigned& r0, unsigned& r1, unsigned& r2,
                                                  unsigned& r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}

__device__ __forceinline__ void ldmatrix_x2(unsigned addr, unsigned& r0, unsigned& r1) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r0), "=r"(r1) : "r"(addr));
}

// c += a (16x16, row) . b (16x8, col); bf16 in, fp32 accumulate.
__device__ __forceinline__ void mma_bf16(float* c, unsigned a0, unsigned a1, unsigned a2, unsigned a3,
                                         unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Splits two fp32 values into bf16 hi parts and bf16 lo parts (x - hi): hi + lo carries 16 mantissa bits.
__device__ __forceinline__ void split_bf16(float x0, float x1, unsigned& hi, unsigned& lo) {
    const __nv_bfloat16 h0 = __float2bfloat16_rn(x0);
    const __nv_bfloat16 h1 = __float2bfloat16_rn(x1);
    hi = jemma_pack_bf16(__bfloat162float(h0), __bfloat162float(h1));
    lo = jemma_pack_bf16(x0 - __bfloat162float(h0), x1 - __bfloat162float(h1));
}

template <int HD, int PAGE, int NQ, int TPR, int PIPE, bool RING, bool DERIVE>
__device__ __forceinline__ void attend(const float* __restrict__ q, int64_t qs, float* __restrict__ out, int64_t os,
                                       const __nv_bfloat16* __restrict__ k_cache,
                                       const __nv_bfloat16* __restrict__ v_cache, int kv_heads, int group,
                                       float scale_log2, int window, const int* __restrict__ meta, int sliding,
                                       int max_tokens, float* __restrict__ part_o, float* __restrict__ part_ml,
                                       unsigned* __restrict__ arrivals, const float* __restrict__ k_w,
                                       const float* __restrict__ inv_freq, int k_chunks) {
    using S = Shape<HD, NQ, TPR, PIPE, RING>;
    static_assert(!RING || TABLE_AHEAD >= S::PROLOGUE + TPR && TABLE_AHEAD + TPR <= TABLE_RING,
                  "a ring entry lands before its round and is read before the ring comes round");
    extern __shared__ __align__(16) unsigned char smem[];
    float* red = reinterpret_cast<float*>(smem + S::RED_OFFSET);
    __nv_bfloat16* p_s = reinterpret_cast<__nv_bfloat16*>(smem + S::P_OFFSET);
    float* corr_s = reinterpret_cast<float*>(smem + S::CORR_OFFSET);
    float* m_s = corr_s + S::ROWS;
    float* l_s = m_s + S::ROWS;

    // The header and the chunk record in one round trip (the records follow the header: the kernel
    // checks), not the chain header -> record -> table offset.
    const int4* meta4 = reinterpret_cast<const int4*>(meta);
    const int4 head0 = meta4[0];                // chunks, tokens, page size, table stride
    const int4 head1 = meta4[1];                // chunk records, ...
    const int4 head2 = meta4[2];                // full table, sliding table, ...
    const int4* rec = reinterpret_cast<const int4*>(meta + JEMMA_META_HEADER + JEMMA_META_CHUNK_INTS * blockIdx.z);
    const int4 rec0 = rec[0];
    const int4 rec1 = rec[1];
    const JemmaChunk c{rec0.x, rec0.y, rec0.z, rec0.w, rec1.x, rec1.y, rec1.z, rec1.w};
    if (c.tree || c.tokens > max_tokens) {
        return;                                 // the general backend serves this chunk
    }
    unsigned dyn_smem;
    asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(dyn_smem));
    if (dyn_smem < (unsigned) S::SMEM || head0.z != PAGE || head1.x != JEMMA_META_HEADER) {
        __trap();                               // a launcher bug: too little shared memory, another page size
    }

    const int split = blockIdx.x;
    const int splits = gridDim.x;
    const int h = blockIdx.y;
    const int chunk = blockIdx.z;
    const int tid = threadIdx.x;
    const int warp = tid >> 5;
    const int lane = tid & 31;
    const int g = lane >> 2;                    // mma fragment: group id
    const int t4 = lane & 3;                    //               thread in group

    const int q_row0 = c.first_row;
    const int tokens = c.tokens;
    const int start = c.start;
    const int* table = meta + (sliding ? head2.y : head2.x) + (int64_t) c.table_row * head0.w;
    const int rows = group * tokens;
    if (rows > S::ROWS) {
        __trap();                               // the launcher picks NQ >= group * tokens / 8
    }
    const int end = start + tokens;             // keys [lo, end) are read
    const int lo = window > 0 ? max(0, start - window + 1) : 0;
    const int tile_lo = lo / KEYS;
    const int tile_hi = (end + KEYS - 1) / KEYS;
    const int per_split = (tile_hi - tile_lo + splits - 1) / splits;
    const int tile0 = tile_lo + split * per_split;
    const int tile1 = min(tile_hi, tile0 + per_split);
    const int rounds = tile1 > tile0 ? (tile1 - tile0 + TPR - 1) / TPR : 0;

    // ---- the pipeline: tile `tile` into stage (tile - tile0) % STAGES (K rows, then V rows) ----
    // A tile of 16 keys lies in one page (pages of 16, 32, 64 positions), so one block-table entry per
    // tile; keys outside [lo, end) are zero-filled. The entries of a round's tiles are read one round
    // ahead: a table read issued just before the copies would stall the warp for an L2 round trip.
    constexpr int PER = KEYS * S::CHUNKS / S::THREADS;
    const int64_t kv_row = (int64_t) kv_heads * HD;
    // K stored once (k_eq_v layers; k_w not null): only V rows are copied. In the first k_chunks 8-dim chunks of
    // each half (the rotating pairs) each round's K rows are derived from them in shared memory (derive_round)
    // before its scores; in the others K = V * k_w: q is scaled by k_w there and the scores read the V rows.
    // Keys are chain positions: RoPE at p.
    // A compile-time choice (the _kd kernels), so the stored-K kernels carry none of the derivation's registers.
    constexpr bool derive = DERIVE;
    const int kc_read = derive ? k_chunks : 1 << 30;     // chunks of each half the scores read from the K rows
    auto fetch_page = [&](int tile) -> int {
        return tile < tile1 ? table[tile * KEYS / PAGE] : -1;
    };
    auto load_tile = [&](int tile, int page) {
        unsigned char* base = smem + ((tile - tile0) % S::STAGES) * S::STAGE_BYTES;
        #pragma unroll
        for (int j = 0; j < PER; j++) {
            const int idx = tid + j * S::THREADS;
            const int key = idx / S::CHUNKS;
            const int ch = idx % S::CHUNKS;
            const int p = tile * KEYS + key;
            const bool real = page >= 0 && p >= lo && p < end;
            const int64_t off = real ? ((int64_t) page * PAGE + p % PAGE) * kv_row + (int64_t) h * HD + ch * 8 : 0;
            const unsigned dst = jemma_smem_addr(base + key * S::ROW_BYTES + ch * 16);
            if (!derive) {
                jemma_cp_async16(dst, k_cache + off, real ? 16 : 0);
            }
            jemma_cp_async16(dst + KEYS * S::ROW_BYTES, v_cache + off, real ? 16 : 0);
        }
    };

    // q first: this warp's slice of its rows (8-row n-tiles, rows r = nt * 8 + g, dims d, d+1, d+8, d+9
    // of each 16-wide step): its loads go out with the table reads, ahead of the K/V copies in the
    // load queue (after them, q arrived with the K/V data: 14% of the stall samples of a batch-1 launch).
    const int d0 = warp * S::DSL;
    float qraw[S::KSTEPS][NQ][4];
    #pragma unroll
    for (int nt = 0; nt < NQ; nt++) {
        const int r = nt * 8 + g;
        const bool real = r < rows;
        const float* qr = real ? q + (int64_t) (q_row0 + r / group) * qs + (int64_t) (h * group + r % group) * HD
                               : q;
        #pragma unroll
        for (int ks = 0; ks < S::KSTEPS; ks++) {
            const int d = d0 + ks * 16 + 2 * t4;
            qraw[ks][nt][0] = real ? qr[d] : 0.f;
            qraw[ks][nt][1] = real ? qr[d + 1] : 0.f;
            qraw[ks][nt][2] = real ? qr[d + 8] : 0.f;
            qraw[ks][nt][3] = real ? qr[d + 9] : 0.f;
        }
    }
    if (derive) {
        // K = V * k_w in the chunks not derived: the weight goes on q there.
        #pragma unroll
        for (int ks = 0; ks < S::KSTEPS; ks++) {
            const int d = d0 + ks * 16 + 2 * t4;
            #pragma unroll
            for (int part = 0; part < 2; part++) {
                const int dd = d + 8 * part;
                if ((dd % (HD / 2)) / 8 >= k_chunks) {
                    const float w0 = __ldg(k_w + dd);
                    const float w1 = __ldg(k_w + dd + 1);
                    #pragma unroll
                    for (int nt = 0; nt < NQ; nt++) {
                        qraw[ks][nt][2 * part] *= w0;
                        qraw[ks][nt][2 * part + 1] *= w1;
                    }
                }
            }
        }
    }

    // The prologue's table entries are read together (independent loads, one round trip), then their
    // copies go out. One commit group per tile, empty ones included, so the waits below count tiles.
    int pages_next[TPR];
    {
        int pages_first[S::PROLOGUE > 0 ? S::PROLOGUE : 1];
        #pragma unroll
        for (int st = 0; st < S::PROLOGUE; st++) {
            pages_first[st] = fetch_page(tile0 + st);
        }
        #pragma unroll
        for (int i = 0; i < TPR; i++) {
            pages_next[i] = RING ? -1 : fetch_page(tile0 + S::PROLOGUE + i);
        }
        #pragma unroll
        for (int st = 0; st < S::PROLOGUE; st++) {
            if (tile0 + st < tile1) {
                load_tile(tile0 + st, pages_first[st]);
            }
            jemma_cp_async_commit();
        }
    }
    int* ring = reinterpret_cast<int*>(smem + S::RING_OFFSET);   // RING: entry of tile t at (t - tile0) % TABLE_RING
    if constexpr (RING) {
        // Tiles PROLOGUE .. PROLOGUE + TABLE_AHEAD - 1 by plain loads (visible after round 0's barrier);
        // every round's copies then bring the entries TABLE_AHEAD tiles further on.
        if (tid < TABLE_AHEAD) {
            ring[(S::PROLOGUE + tid) % TABLE_RING] = fetch_page(tile0 + S::PROLOGUE + tid);
        }
    }
    // Round rd's copies: the TPR tiles PROLOGUE + rd * TPR + i (into the stages of round rd - 1), then
    // the next round's table entries.
    auto issue_round = [&](int rd) {
        const int first = tile0 + S::PROLOGUE + rd * TPR;
        if constexpr (RING) {
            // The entries TABLE_AHEAD tiles on, in this round's first copy group: the wait of the round
            // that reads them (TABLE_AHEAD / TPR rounds on) has seen the group land, and its barrier
            // shows them to every thread. Their slots' old entries were read rounds ago.
            if (tid < TPR) {
                const int t = first + TABLE_AHEAD + tid;
                const int* src = t < tile1 ? table + t * KEYS / PAGE : table;
                const unsigned dst = jemma_smem_addr(ring + (t - tile0) % TABLE_RING);
                asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n"
                             :: "r"(dst), "l"(src), "r"(t < tile1 ? 4 : 0));
            }
        }
        #pragma unroll
        for (int i = 0; i < TPR; i++) {
            if (first + i < tile1) {
                load_tile(first + i, RING ? ring[(first + i - tile0) % TABLE_RING] : pages_next[i]);
            }
            jemma_cp_async_commit();
        }
        if constexpr (!RING) {
            #pragma unroll
            for (int i = 0; i < TPR; i++) {
                pages_next[i] = fetch_page(first + TPR + i);
            }
        }
    };

    // ---- q as the B operand of S^T = K . Q^T, this warp's slice of the head dim, hi and lo parts ----
    // (loaded before the prologue's copies, converted after them: above)
    unsigned qhi[S::KSTEPS][NQ][2];
    unsigned qlo[S::KSTEPS][NQ][2];
    #pragma unroll
    for (int nt = 0; nt < NQ; nt++) {
        #pragma unroll
        for (int ks = 0; ks < S::KSTEPS; ks++) {
            split_bf16(qraw[ks][nt][0], qraw[ks][nt][1], qhi[ks][nt][0], qlo[ks][nt][0]);
            split_bf16(qraw[ks][nt][2], qraw[ks][nt][3], qhi[ks][nt][1], qlo[ks][nt][1]);
        }
    }

    float o[S::KSTEPS][NQ][4];                  // O^T: 16 dims x 8 rows per (dim tile, row tile)
    #pragma unroll
    for (int a = 0; a < S::KSTEPS; a++) {
        #pragma unroll
        for (int b = 0; b < NQ; b++) {
            #pragma unroll
            for (int e = 0; e < 4; e++) {
                o[a][b][e] = 0.f;
            }
        }
    }
    // Softmax: a warp takes 2 rows per pass, r and r + 4 (lanes 0-15, 16-31; with the partials' row
    // stride of RKEYS + 4 floats the two halves read disjoint banks), TPR keys per lane (sm_key + 16 i):
    // unit u = warp + WARPS * i covers rows (u / 4) * 8 + u % 4 + {0, 4}. Each thread keeps its rows'
    // running max and sum, and the visible key range of each row (padded rows: none).
    constexpr int SM_ROWS = (S::ROWS / 2 + S::WARPS - 1) / S::WARPS;
    const int sm_key = lane & 15;
    float m_run[SM_ROWS];
    float l_run[SM_ROWS];
    int sm_row[SM_ROWS];
    int key_first[SM_ROWS];
    int key_last[SM_ROWS];
    #pragma unroll
    for (int i = 0; i < SM_ROWS; i++) {
        const int u = warp + S::WARPS * i;
        const int r = (u >> 2) * 8 + (u & 3) + 4 * (lane >> 4);
        sm_row[i] = u < S::ROWS / 2 ? r : -1;           // whole warps: the shuffles stay uniform
        m_run[i] = NEG_INF;
        l_run[i] = 0.f;
        const int tq = r / group;
        key_last[i] = r < rows ? start + tq : -1;
        key_first[i] = window > 0 ? start + tq - window + 1 : 0;
    }
    const int key_end = tile1 * KEYS;           // this split's keys end here (a last round may be short)

    // K stored once: the K rows of round rd's tiles from their V rows (after the barrier that shows the V rows;
    // a barrier follows before the scores read them). Zero-filled keys give zero keys.
    auto derive_round = [&](int rd) {
        constexpr int PAIRS = HD / 16;
        #pragma unroll
        for (int st = 0; st < TPR; st++) {
            const int tile = tile0 + rd * TPR + st;
            unsigned char* kt = smem + ((tile - tile0) % S::STAGES) * S::STAGE_BYTES;
            const unsigned char* vt = kt + KEYS * S::ROW_BYTES;
            for (int idx = tid; idx < KEYS * k_chunks; idx += S::THREADS) {
                const int key = idx / k_chunks;
                const int ch = idx % k_chunks;
                uint4 lo = *reinterpret_cast<const uint4*>(vt + key * S::ROW_BYTES + ch * 16);
                uint4 hi = *reinterpret_cast<const uint4*>(vt + key * S::ROW_BYTES + (ch + PAIRS) * 16);
                jemma_key_from_value(lo, hi, k_w, inv_freq, ch * 8, HD / 2, (float) (tile * KEYS + key));
                *reinterpret_cast<uint4*>(kt + key * S::ROW_BYTES + ch * 16) = lo;
                *reinterpret_cast<uint4*>(kt + key * S::ROW_BYTES + (ch + PAIRS) * 16) = hi;
            }
        }
        __syncthreads();
    };

    // Round rd's start: its tiles are in, and every warp is done with the stages the next copies take
    // (round rd - LAG's).
    auto begin_round = [&](int rd) {
        if constexpr (S::STAGES >= (S::LAG + 1) * TPR) {
            cp_async_wait<S::STAGES - (S::LAG + 1) * TPR>();
            __syncthreads();
            issue_round(rd);
        } else {
            // Fewer than two rounds of stages: free round rd - 1's stages first, then wait for this one.
            __syncthreads();
            issue_round(rd);
            cp_async_wait<S::PROLOGUE>();
            __syncthreads();
        }
        if (derive) {
            derive_round(rd);
        }
    };

    // 1. partial S^T over this warp's slice: keys (16 per tile) x rows (8 per n-tile), into `red`
    auto scores = [&](int rd) {
        const int rt0 = tile0 + rd * TPR;       // the round's first tile
        float sacc[TPR][NQ][4];
        #pragma unroll
        for (int st = 0; st < TPR; st++) {
            #pragma unroll
            for (int nt = 0; nt < NQ; nt++) {
                sacc[st][nt][0] = sacc[st][nt][1] = sacc[st][nt][2] = sacc[st][nt][3] = 0.f;
            }
        }
        #pragma unroll
        for (int st = 0; st < TPR; st++) {
            if (TPR == 1 || rt0 + st < tile1) {
                const unsigned char* kt = smem + ((rt0 + st - tile0) % S::STAGES) * S::STAGE_BYTES;
                #pragma unroll
                for (int ks = 0; ks < S::KSTEPS; ks++) {
                    // matrices: (keys 0-7, d 0-7), (keys 8-15, d 0-7), (keys 0-7, d 8-15), (keys 8-15, d 8-15)
                    const int key = (lane & 7) + ((lane >> 3) & 1) * 8;
                    const int d = d0 + ks * 16 + (lane >> 4) * 8;
                    // K stored once: a chunk not derived is read from the V rows (K = V * k_w, k_w on q).
                    const int kv_off = derive && (d % (HD / 2)) / 8 >= kc_read ? KEYS * S::ROW_BYTES : 0;
                    unsigned a0, a1, a2, a3;
                    ldmatrix_x4(jemma_smem_addr(kt + kv_off + key * S::ROW_BYTES + d * 2), a0, a1, a2, a3);
                    #pragma unroll
                    for (int nt = 0; nt < NQ; nt++) {
                        mma_bf16(sacc[st][nt], a0, a1, a2, a3, qhi[ks][nt][0], qhi[ks][nt][1]);
                        mma_bf16(sacc[st][nt], a0, a1, a2, a3, qlo[ks][nt][0], qlo[ks][nt][1]);
                    }
                }
            }
        }
        float* mine = red + warp * S::ROWS * S::RED_STRIDE;
        #pragma unroll
        for (int st = 0; st < TPR; st++) {
            #pragma unroll
            for (int nt = 0; nt < NQ; nt++) {
                const int r = nt * 8 + 2 * t4;
                const int k = st * KEYS + g;
                mine[r * S::RED_STRIDE + k] = sacc[st][nt][0];
                mine[(r + 1) * S::RED_STRIDE + k] = sacc[st][nt][1];
                mine[r * S::RED_STRIDE + k + 8] = sacc[st][nt][2];
                mine[(r + 1) * S::RED_STRIDE + k + 8] = sacc[st][nt][3];
            }
        }
    };

    // 2. sum the partials, mask, online softmax -> P (bf16) and the rows' rescale factors
    auto softmax = [&](int rd) {
        const int rt0 = tile0 + rd * TPR;
        #pragma unroll
        for (int i = 0; i < SM_ROWS; i++) {
            const int r = sm_row[i];
            if (r >= 0) {
                float x[TPR];
                float tmax = NEG_INF;
                #pragma unroll
                for (int st = 0; st < TPR; st++) {
                    const int kp = (rt0 + st) * KEYS + sm_key;
                    float s = 0.f;
                    #pragma unroll
                    for (int w = 0; w < S::WARPS; w++) {
                        s += red[(w * S::ROWS + r) * S::RED_STRIDE + st * KEYS + sm_key];
                    }
                    const bool visible = kp <= key_last[i] && kp >= key_first[i] && (TPR == 1 || kp < key_end);
                    x[st] = visible ? s * scale_log2 : NEG_INF;
                    tmax = fmaxf(tmax, x[st]);
                }
                #pragma unroll
                for (int off = 8; off > 0; off >>= 1) {
                    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, off));
                }
                const float m_new = fmaxf(m_run[i], tmax);
                const float corr = m_new == NEG_INF ? 1.f : exp2f(m_run[i] - m_new);
                float psum = 0.f;
                #pragma unroll
                for (int st = 0; st < TPR; st++) {
                    const float p = x[st] == NEG_INF ? 0.f : exp2f(x[st] - m_new);
                    psum += p;
                    p_s[r * S::P_STRIDE + st * KEYS + sm_key] = __float2bfloat16_rn(p);
                }
                l_run[i] = l_run[i] * corr + psum;  // this lane's keys; summed over the row's lanes at the end
                m_run[i] = m_new;
                if (sm_key == 0) {
                    corr_s[r] = corr;
                }
            }
        }
    };

    // 3. O^T = O^T * corr + V^T . P^T over this warp's slice
    auto pv = [&](int rd) {
        const int rt0 = tile0 + rd * TPR;
        #pragma unroll
        for (int nt = 0; nt < NQ; nt++) {
            const float c0 = corr_s[nt * 8 + 2 * t4];
            const float c1 = corr_s[nt * 8 + 2 * t4 + 1];
            #pragma unroll
            for (int dt = 0; dt < S::KSTEPS; dt++) {
                o[dt][nt][0] *= c0;
                o[dt][nt][1] *= c1;
                o[dt][nt][2] *= c0;
                o[dt][nt][3] *= c1;
            }
        }
        #pragma unroll
        for (int st = 0; st < TPR; st++) {
            if (TPR == 1 || rt0 + st < tile1) {
                const unsigned char* vt = smem + ((rt0 + st - tile0) % S::STAGES) * S::STAGE_BYTES
                        + KEYS * S::ROW_BYTES;
                unsigned pb[NQ][2];
                #pragma unroll
                for (int nt = 0; nt < NQ; nt++) {
                    // P rows nt*8 + 0..7; lanes 0-7 keys 0-7, lanes 8-15 keys 8-15 (x2 reads lanes 0-15's addresses)
                    const int r = nt * 8 + (lane & 7);
                    const int kcol = st * KEYS + ((lane >> 3) & 1) * 8;
                    ldmatrix_x2(jemma_smem_addr(p_s + r * S::P_STRIDE + kcol), pb[nt][0], pb[nt][1]);
                }
                #pragma unroll
                for (int dt = 0; dt < S::KSTEPS; dt++) {
                    // matrices (stored rows = keys): (d 0-7, keys 0-7), (d 8-15, keys 0-7), (d 0-7, keys 8-15),
                    // (d 8-15, keys 8-15), transposed: V^T's A fragment
                    const int key = (lane & 7) + (lane >> 4) * 8;
                    const int d = d0 + dt * 16 + ((lane >> 3) & 1) * 8;
                    unsigned a0, a1, a2, a3;
                    ldmatrix_x4_trans(jemma_smem_addr(vt + key * S::ROW_BYTES + d * 2), a0, a1, a2, a3);
                    #pragma unroll
                    for (int nt = 0; nt < NQ; nt++) {
                        mma_bf16(o[dt][nt], a0, a1, a2, a3, pb[nt][0], pb[nt][1]);
                    }
                }
            }
        }
    };

    if constexpr (PIPE == 0) {
        for (int rd = 0; rd < rounds; rd++) {
            begin_round(rd);
            scores(rd);
            __syncthreads();
            softmax(rd);
            __syncthreads();
            pv(rd);
        }
    } else if (rounds > 0) {
        // Pipelined: round rd's scores and round rd - 1's P.V between the same two barriers (independent
        // mma chains for the warp to interleave, one barrier fewer per round). P and the rescale factors
        // of round rd - 1 are read before the barrier after which round rd's softmax writes them.
        begin_round(0);
        scores(0);
        __syncthreads();
        softmax(0);
        for (int rd = 1; rd < rounds; rd++) {
            begin_round(rd);
            scores(rd);
            pv(rd - 1);
            __syncthreads();
            softmax(rd);
        }
        __syncthreads();
        pv(rounds - 1);
    }
    cp_async_wait<0>();

    // ---- results: the rows' (max, sum), then O (normalized when this block saw every key) ----
    #pragma unroll
    for (int i = 0; i < SM_ROWS; i++) {
        const int r = sm_row[i];
        if (r >= 0) {                           // whole warps: the shuffles stay uniform
            float l = l_run[i];
            #pragma unroll
            for (int off = 8; off > 0; off >>= 1) {
                l += __shfl_xor_sync(0xffffffffu, l, off);
            }
            if (sm_key == 0) {
                m_s[r] = m_run[i];
                l_s[r] = l;
            }
        }
    }
    __syncthreads();
    const int64_t pair = (int64_t) chunk * kv_heads + h;
    const int64_t part = pair * splits + split;     // (chunk, kv head, split)
    if (splits > 1) {
        for (int r = tid; r < rows; r += S::THREADS) {
            part_ml[(part * S::ROWS + r) * 2] = m_s[r];
            part_ml[(part * S::ROWS + r) * 2 + 1] = l_s[r];
        }
    }
    #pragma unroll
    for (int nt = 0; nt < NQ; nt++) {
        #pragma unroll
        for (int half = 0; half < 2; half++) {
            const int r = nt * 8 + 2 * t4 + half;
            if (r < rows) {
                float* dst;
                float norm;
                if (splits > 1) {
                    dst = part_o + (part * S::ROWS + r) * HD;
                    norm = 1.f;
                } else {
                    dst = out + (int64_t) (q_row0 + r / group) * os + (int64_t) (h * group + r % group) * HD;
                    norm = 1.f / l_s[r];
                }
                #pragma unroll
                for (int dt = 0; dt < S::KSTEPS; dt++) {
                    const int d = d0 + dt * 16 + g;
                    dst[d] = o[dt][nt][half] * norm;
                    dst[d + 8] = o[dt][nt][2 + half] * norm;
                }
            }
        }
    }
    if (splits == 1) {
        return;
    }

    // ---- split KV: a two-level merge of the partials, by the last blocks to arrive ----
    // The splits form groups of MERGE_GROUP consecutive splits. Each block publishes its partial and counts
    // itself in on its group's counter; the last of a group merges the group's partials (split order) into
    // the group's first slot, unnormalized (max, sum, O), and counts the group in on the pair's counter;
    // the last group merges the groups (group order) into the output. With one group, the group's merge
    // writes the output. Fixed orders: the same bits whichever block is last (graph replay or eager). Each
    // last arrival puts its counter back to 0 for the next launch. Why two levels: one merging block reads
    // splits x ROWS x HD x 4 bytes (32 splits at head dim 512: 512 KB) at one SM's L2 bandwidth, about 9 us
    // on the H200; in groups of 8 the reads are spread over the SMs of the group mergers.
    // Publishing: one thread counts the block in with an acq_rel atomic at GPU scope (CUTLASS's semaphore
    // pattern): the barrier orders every thread's stores before it and the release is cumulative; in the
    // last block the same atomic acquires every other block's stores, and the barrier after it orders the
    // merge's loads after it. No per-thread fences.
    int* last_s = reinterpret_cast<int*>(corr_s);                 // the rescale factors are done with
    auto arrive = [&](unsigned* counter, int expected) -> bool {
        __syncthreads();
        if (tid == 0) {
            unsigned before;
            asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;" : "=r"(before) : "l"(counter) : "memory");
            const int last = before == (unsigned) expected - 1;
            if (last) {
                *counter = 0u;                  // every block has counted: the next launch's zero
            }
            *last_s = last;
        }
        __syncthreads();
        return *last_s != 0;
    };
    // merge(first, stride, n, final): the n <= MERGE_GROUP partials in slots first + k * stride (k order).
    // Weights per (k, row) in the stage buffers (every copy has landed): a warp per row, lanes over k;
    // final: exp2(m_k - m) / total, into the output; else exp2(m_k - m), the merged (m, total) and O into
    // slot `first` (each thread reads an item's n values before writing it; the row's warp reads its
    // (max, sum) before writing them). O: every thread over (row, 4 dims) items, two items at a time (16
    // loads in flight); the first two items' loads go out before the weights, so the round trips overlap.
    float* w_s = reinterpret_cast<float*>(smem);                  // [MERGE_GROUP][ROWS]
    constexpr int D4 = HD / 4;
    constexpr int64_t SPLIT4 = (int64_t) S::ROWS * D4;            // float4s per slot's partial
    const int items = rows * D4;                                  // item i: row i / D4, dims 4 (i % D4)
    const float4* part4 = reinterpret_cast<const float4*>(part_o);
    float2* ml2 = reinterpret_cast<float2*>(part_ml);
    auto merge = [&](int64_t first, int stride, int n, bool final) {
        float4 xa[MERGE_GROUP], xb[MERGE_GROUP];
        auto load = [&](int i, float4 (&x)[MERGE_GROUP]) {
            #pragma unroll
            for (int k = 0; k < MERGE_GROUP; k++) {
                if (k < n && i < items) {
                    x[k] = __ldcg(part4 + (first + (int64_t) k * stride) * SPLIT4 + i);
                }
            }
        };
        load(tid, xa);
        load(tid + S::THREADS, xb);
        for (int r = warp; r < rows; r += S::WARPS) {
            const int k = lane;                                   // lanes 0..n-1
            const float2 ml = k < n ? __ldcg(ml2 + (first + (int64_t) k * stride) * S::ROWS + r)
                                    : make_float2(NEG_INF, 0.f);
            float m_all = ml.x;
            #pragma unroll
            for (int off = 16; off > 0; off >>= 1) {
                m_all = fmaxf(m_all, __shfl_xor_sync(0xffffffffu, m_all, off));
            }
            const float e = ml.x == NEG_INF ? 0.f : exp2f(ml.x - m_all);
            float total = e * ml.y;
            #pragma unroll
            for (int off = 16; off > 0; off >>= 1) {
                total += __shfl_xor_sync(0xffffffffu, total, off);
            }
            if (k < n) {
                w_s[k * S::ROWS + r] = final ? e / total : e;
            }
            if (!final && lane == 0) {
                ml2[first * S::ROWS + r] = make_float2(m_all, total);
            }
        }
        __syncthreads();
        for (int i = tid; i < items; i += 2 * S::THREADS) {
            const int i2 = i + S::THREADS;
            if (i != tid) {
                load(i, xa);
                load(i2, xb);
            }
            const int r = i / D4;
            const int r2 = i2 / D4;
            float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
            float4 acc2 = acc;
            #pragma unroll
            for (int k = 0; k < MERGE_GROUP; k++) {
                if (k < n) {
                    const float w = w_s[k * S::ROWS + r];
                    acc.x = fmaf(w, xa[k].x, acc.x);
                    acc.y = fmaf(w, xa[k].y, acc.y);
                    acc.z = fmaf(w, xa[k].z, acc.z);
                    acc.w = fmaf(w, xa[k].w, acc.w);
                    if (i2 < items) {
                        const float w2 = w_s[k * S::ROWS + r2];
                        acc2.x = fmaf(w2, xb[k].x, acc2.x);
                        acc2.y = fmaf(w2, xb[k].y, acc2.y);
                        acc2.z = fmaf(w2, xb[k].z, acc2.z);
                        acc2.w = fmaf(w2, xb[k].w, acc2.w);
                    }
                }
            }
            #pragma unroll
            for (int half = 0; half < 2; half++) {
                const int ii = half == 0 ? i : i2;
                const int rr = half == 0 ? r : r2;
                const float4 v = half == 0 ? acc : acc2;
                if (ii < items) {
                    if (final) {
                        float* dst = out + (int64_t) (q_row0 + rr / group) * os + (int64_t) (h * group + rr % group) * HD
                                + 4 * (ii % D4);
                        dst[0] = v.x;
                        dst[1] = v.y;
                        dst[2] = v.z;
                        dst[3] = v.w;
                    } else {
                        reinterpret_cast<float4*>(part_o)[first * SPLIT4 + ii] = v;
                    }
                }
            }
        }
    };

    const int64_t slot0 = pair * splits;                          // the pair's first split slot
    const int groups = (splits + MERGE_GROUP - 1) / MERGE_GROUP;
    const int grp = split / MERGE_GROUP;
    const int gfirst = grp * MERGE_GROUP;
    unsigned* counters = arrivals + pair * (1 + MAX_GROUPS);      // [0]: groups merged, [1 + g]: group g's splits
    if (!arrive(counters + 1 + grp, min(MERGE_GROUP, splits - gfirst))) {
        return;
    }
    if (groups == 1) {
        merge(slot0, 1, splits, true);
        return;
    }
    merge(slot0 + gfirst, 1, min(MERGE_GROUP, splits - gfirst), false);
    if (!arrive(counters, groups)) {
        return;
    }
    merge(slot0, MERGE_GROUP, groups, true);
}

}  // namespace jemma_xqa

#define JEMMA_XQA_ENTRY(NAME, HD, PAGE, NQ, TPR, PIPE, RING, DERIVE)                                         \
    extern "C" __global__ void __launch_bounds__(jemma_xqa::Shape<HD, NQ, TPR, PIPE, RING>::THREADS,         \
                                                 jemma_xqa::Shape<HD, NQ, TPR, PIPE, RING>::MIN_BLOCKS)        \
    NAME(const float* q, int64_t qs, float* out, int64_t os, const __nv_bfloat16* k_cache,                    \
         const __nv_bfloat16* v_cache, int kv_heads, int group, float scale_log2, int window, const int* meta,  \
         int sliding, int max_tokens, float* part_o, float* part_ml, unsigned* arrivals, const float* k_w,      \
         const float* inv_freq, int k_chunks) {                                                                 \
        jemma_xqa::attend<HD, PAGE, NQ, TPR, PIPE, RING, DERIVE>(q, qs, out, os, k_cache, v_cache, kv_heads,    \
                                             group, scale_log2, window, meta, sliding, max_tokens, part_o,       \
                                             part_ml, arrivals, k_w, inv_freq, k_chunks);                        \
    }
// Each variant twice: NAME reads K from the cache; NAME_kd derives it from V (K stored once: k_w not null).
#define JEMMA_XQA_KERNEL(NAME, HD, PAGE, NQ, TPR, PIPE, RING)                                                \
    JEMMA_XQA_ENTRY(NAME, HD, PAGE, NQ, TPR, PIPE, RING, false)                                              \
    JEMMA_XQA_ENTRY(NAME##_kd, HD, PAGE, NQ, TPR, PIPE, RING, true)
#define JEMMA_XQA_VARIANT(HD, PAGE, NQ) JEMMA_XQA_KERNEL(jemma_xqa_hd##HD##_p##PAGE##_q##NQ, HD, PAGE, NQ, 1, 0, false)
// The block table through a shared-memory ring: jemma_xqa_hd512_p{16,32,64}_q4_ring; with pipelined rounds
// of 8 warps: jemma_xqa_hd512_p{16,32,64}_q4_pipe8_ring.
#define JEMMA_XQA_RING(HD, PAGE, NQ) \
    JEMMA_XQA_KERNEL(jemma_xqa_hd##HD##_p##PAGE##_q##NQ##_ring, HD, PAGE, NQ, 1, 0, true)
#define JEMMA_XQA_PIPE_RING(HD, PAGE, NQ, W) \
    JEMMA_XQA_KERNEL(jemma_xqa_hd##HD##_p##PAGE##_q##NQ##_pipe##W##_ring, HD, PAGE, NQ, 1, W, true)
// Wide rounds (TPR tiles of 16 keys between barriers): jemma_xqa_hd{256,512}_p{16,32,64}_q{1,2}_r{2,4}.
#define JEMMA_XQA_WIDE(HD, PAGE, NQ, TPR) \
    JEMMA_XQA_KERNEL(jemma_xqa_hd##HD##_p##PAGE##_q##NQ##_r##TPR, HD, PAGE, NQ, TPR, 0, false)

#define JEMMA_XQA_PAGES(HD, NQ) \
    JEMMA_XQA_VARIANT(HD, 16, NQ) JEMMA_XQA_VARIANT(HD, 32, NQ) JEMMA_XQA_VARIANT(HD, 64, NQ)
#define JEMMA_XQA_WIDE_PAGES(HD, NQ, TPR) \
    JEMMA_XQA_WIDE(HD, 16, NQ, TPR) JEMMA_XQA_WIDE(HD, 32, NQ, TPR) JEMMA_XQA_WIDE(HD, 64, NQ, TPR)

JEMMA_XQA_PAGES(64, 1)
JEMMA_XQA_PAGES(64, 2)
JEMMA_XQA_PAGES(64, 4)
JEMMA_XQA_PAGES(128, 1)
JEMMA_XQA_PAGES(128, 2)
JEMMA_XQA_PAGES(128, 4)
JEMMA_XQA_PAGES(256, 1)
JEMMA_XQA_PAGES(256, 2)
JEMMA_XQA_PAGES(256, 4)
JEMMA_XQA_PAGES(512, 1)
JEMMA_XQA_PAGES(512, 2)
JEMMA_XQA_PAGES(512, 4)
JEMMA_XQA_WIDE_PAGES(256, 1, 2)
JEMMA_XQA_WIDE_PAGES(256, 2, 2)
JEMMA_XQA_WIDE_PAGES(256, 1, 4)
JEMMA_XQA_WIDE_PAGES(256, 2, 4)
JEMMA_XQA_WIDE_PAGES(512, 1, 2)
JEMMA_XQA_WIDE_PAGES(512, 2, 2)
JEMMA_XQA_WIDE_PAGES(512, 1, 4)
JEMMA_XQA_WIDE_PAGES(512, 2, 4)
JEMMA_XQA_RING(512, 16, 4) JEMMA_XQA_RING(512, 32, 4) JEMMA_XQA_RING(512, 64, 4)
JEMMA_XQA_PIPE_RING(512, 16, 4, 8) JEMMA_XQA_PIPE_RING(512, 32, 4, 8) JEMMA_XQA_PIPE_RING(512, 64, 4, 8)
// Two tiles per round at 32 rows (8 warps, 5 stages, 206 KB) with the ring: jemma_xqa_hd512_p{16,32,64}_q4_r2_ring.
JEMMA_XQA_KERNEL(jemma_xqa_hd512_p16_q4_r2_ring, 512, 16, 4, 2, 0, true)
JEMMA_XQA_KERNEL(jemma_xqa_hd512_p32_q4_r2_ring, 512, 32, 4, 2, 0, true)
JEMMA_XQA_KERNEL(jemma_xqa_hd512_p64_q4_r2_ring, 512, 64, 4, 2, 0, true)
