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
// second launch. The counters (`arrivals`, one uint32 per (chunk, kv head)) start at zero and are zero
// again after every launch, so a captured graph replays.
//
// Variants (extern "C", one per compiled shape): jemma_xqa_hd{64,128,256,512}_p{16,32,64}_q{1,2,4}, where
// q is NQ, the number of 8-row query tiles: group * max_tokens <= 8 * NQ. Launch: grid (splits, kv_heads,
// every chunk of the step), Shape<HD, NQ>::THREADS threads, dynamic shared memory Shape<HD, NQ>::SMEM
// bytes (the launcher computes the same formulas; the kernel checks the shared memory).
#include "jemma_common.cuh"
#include "attention_meta.cuh"
#include "jemma_ptx.cuh"

namespace jemma_xqa {

constexpr int KEYS = 16;                       // keys per tile
constexpr int MAX_SPLITS = 64;                 // blocks per (chunk, kv head) at most (TrtllmMhaAttention)
constexpr float NEG_INF = -INFINITY;

template <int HD, int NQ>
struct Shape {
    static constexpr int ROWS = 8 * NQ;                      // query rows per block, padded
    // One warp per 16 dims of the head dim, at most 8 (head dim 64: 4 warps, 128 and up: 8); 16 for 32
    // rows at head dim 512 (one block per SM there: more warps hide the latencies, and half the slice per
    // warp halves q's and O's registers).
    static constexpr int WARPS = (HD == 512 && NQ > 2) ? 16 : (HD / 16 < 8 ? HD / 16 : 8);
    static constexpr int THREADS = WARPS * 32;
    static constexpr int DSL = HD / WARPS;                   // head-dim slice per warp: 16, 32 or 64
    static constexpr int KSTEPS = DSL / 16;                  // 16-wide steps over the slice
    static constexpr int CHUNKS = HD / 8;                    // 16-byte pieces per K or V row
    static constexpr int ROW_BYTES = HD * 2 + 16;            // padded smem row of K or V
    static constexpr int STAGE_BYTES = 2 * KEYS * ROW_BYTES; // K tile then V tile
    // hd 512 with up to 16 rows: 3 stages (two blocks per SM); 32 rows: 5 stages, one block per SM
    // (registers); hd 256: 5 stages of half the size, two blocks per SM; hd 64/128: 4 small stages (under
    // 48 KB in all).
    static constexpr int STAGES = (HD == 512 && NQ <= 2) ? 3 : HD <= 128 ? 4 : 5;
    static constexpr int MIN_BLOCKS = (HD == 512 && NQ > 2) ? 1 : 2;
    static constexpr int RED_STRIDE = KEYS + 4;              // floats per row of a warp's partial S
    static constexpr int P_STRIDE = KEYS + 8;                // bf16 per row of P (48 bytes)
    static constexpr int RED_OFFSET = STAGES * STAGE_BYTES;
    static constexpr int P_OFFSET = RED_OFFSET + WARPS * ROWS * RED_STRIDE * 4;
    static constexpr int CORR_OFFSET = P_OFFSET + ROWS * P_STRIDE * 2;
    static constexpr int SMEM = CORR_OFFSET + 3 * ROWS * 4;  // corr, final m, final l
    static_assert(DSL % 16 == 0 && KEYS * CHUNKS % THREADS == 0, "a warp's slice is whole mma steps");
    // The merge (last split block) keeps every split's weight per row in the stage buffers.
    static_assert(MAX_SPLITS * ROWS * 4 <= STAGES * STAGE_BYTES, "merge weights fit the stages");
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

template <int HD, int PAGE, int NQ>
__device__ __forceinline__ void attend(const float* __restrict__ q, int64_t qs, float* __restrict__ out, int64_t os,
                                       const __nv_bfloat16* __restrict__ k_cache,
                                       const __nv_bfloat16* __restrict__ v_cache, int kv_heads, int group,
                                       float scale_log2, int window, const int* __restrict__ meta, int sliding,
                                       int max_tokens, float* __restrict__ part_o, float* __restrict__ part_ml,
                                       unsigned* __restrict__ arrivals) {
    using S = Shape<HD, NQ>;
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

    // ---- the pipeline: tile `tile` into stage `stage` (K rows, then V rows) ----
    // Each thread copies PER 16-byte pieces of K and the same of V per tile. The block-table entries of
    // a tile are read one iteration ahead (fetch_pages): a table read issued just before the copies
    // would stall the warp for an L2 round trip every tile, with the pipeline one stage shorter.
    constexpr int PER = KEYS * S::CHUNKS / S::THREADS;
    const int64_t kv_row = (int64_t) kv_heads * HD;
    auto fetch_pages = [&](int tile, int (&pages)[PER]) {
        #pragma unroll
        for (int j = 0; j < PER; j++) {
            const int p = tile * KEYS + (tid + j * S::THREADS) / S::CHUNKS;
            pages[j] = p >= lo && p < end ? table[p / PAGE] : -1;
        }
    };
    auto load_tile = [&](int tile, int stage, const int (&pages)[PER]) {
        unsigned char* base = smem + stage * S::STAGE_BYTES;
        #pragma unroll
        for (int j = 0; j < PER; j++) {
            const int idx = tid + j * S::THREADS;
            const int key = idx / S::CHUNKS;
            const int ch = idx % S::CHUNKS;
            const int p = tile * KEYS + key;
            const int page = pages[j];
            const int64_t off = page >= 0
                    ? ((int64_t) page * PAGE + p % PAGE) * kv_row + (int64_t) h * HD + ch * 8 : 0;
            const int bytes = page >= 0 ? 16 : 0;
            const unsigned dst = jemma_smem_addr(base + key * S::ROW_BYTES + ch * 16);
            jemma_cp_async16(dst, k_cache + off, bytes);
            jemma_cp_async16(dst + KEYS * S::ROW_BYTES, v_cache + off, bytes);
        }
    };

    // The first tiles' table entries are read together (independent loads, one round trip), then their
    // copies go out; q is read while they fly.
    int pages_next[PER];
    {
        int pages_first[S::STAGES - 1][PER];
        #pragma unroll
        for (int st = 0; st < S::STAGES - 1; st++) {
            fetch_pages(tile0 + st, pages_first[st]);
        }
        #pragma unroll
        for (int st = 0; st < S::STAGES - 1; st++) {
            if (tile0 + st < tile1) {
                load_tile(tile0 + st, st, pages_first[st]);
            }
            jemma_cp_async_commit();
        }
    }
    fetch_pages(tile0 + S::STAGES - 1, pages_next);

    // ---- q as the B operand of S^T = K . Q^T, this warp's slice of the head dim, hi and lo parts ----
    const int d0 = warp * S::DSL;
    unsigned qhi[S::KSTEPS][NQ][2];
    unsigned qlo[S::KSTEPS][NQ][2];
    #pragma unroll
    for (int nt = 0; nt < NQ; nt++) {
        const int r = nt * 8 + g;
        const bool real = r < rows;
        const float* qr = real ? q + (int64_t) (q_row0 + r / group) * qs + (int64_t) (h * group + r % group) * HD
                               : q;
        #pragma unroll
        for (int ks = 0; ks < S::KSTEPS; ks++) {
            const int d = d0 + ks * 16 + 2 * t4;
            float x0 = 0.f, x1 = 0.f, x8 = 0.f, x9 = 0.f;
            if (real) {
                x0 = qr[d];
                x1 = qr[d + 1];
                x8 = qr[d + 8];
                x9 = qr[d + 9];
            }
            split_bf16(x0, x1, qhi[ks][nt][0], qlo[ks][nt][0]);
            split_bf16(x8, x9, qhi[ks][nt][1], qlo[ks][nt][1]);
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
    // stride of 20 floats the two halves read disjoint banks), one key per lane: unit u = warp + WARPS * i
    // covers rows (u / 4) * 8 + u % 4 + {0, 4}. Each thread keeps its rows' running max and sum, and the
    // visible key range of each row (padded rows: none).
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

    for (int tile = tile0; tile < tile1; tile++) {
        const int stage = (tile - tile0) % S::STAGES;
        cp_async_wait<S::STAGES - 2>();
        __syncthreads();                        // the tile is in, and everyone is done with tile - 1
        {
            const int next = tile + S::STAGES - 1;
            if (next < tile1) {
                load_tile(next, (next - tile0) % S::STAGES, pages_next);
            }
            jemma_cp_async_commit();
            fetch_pages(next + 1, pages_next);  // used in the next iteration
        }
        const unsigned char* kt = smem + stage * S::STAGE_BYTES;
        const unsigned char* vt = kt + KEYS * S::ROW_BYTES;

        // 1. partial S^T over this warp's slice: keys (16) x rows (8 per n-tile)
        float sacc[NQ][4];
        #pragma unroll
        for (int nt = 0; nt < NQ; nt++) {
            sacc[nt][0] = sacc[nt][1] = sacc[nt][2] = sacc[nt][3] = 0.f;
        }
        #pragma unroll
        for (int ks = 0; ks < S::KSTEPS; ks++) {
            // matrices: (keys 0-7, d 0-7), (keys 8-15, d 0-7), (keys 0-7, d 8-15), (keys 8-15, d 8-15)
            const int key = (lane & 7) + ((lane >> 3) & 1) * 8;
            const int d = d0 + ks * 16 + (lane >> 4) * 8;
            unsigned a0, a1, a2, a3;
            ldmatrix_x4(jemma_smem_addr(kt + key * S::ROW_BYTES + d * 2), a0, a1, a2, a3);
            #pragma unroll
            for (int nt = 0; nt < NQ; nt++) {
                mma_bf16(sacc[nt], a0, a1, a2, a3, qhi[ks][nt][0], qhi[ks][nt][1]);
                mma_bf16(sacc[nt], a0, a1, a2, a3, qlo[ks][nt][0], qlo[ks][nt][1]);
            }
        }
        {
            float* mine = red + warp * S::ROWS * S::RED_STRIDE;
            #pragma unroll
            for (int nt = 0; nt < NQ; nt++) {
                const int r = nt * 8 + 2 * t4;
                mine[r * S::RED_STRIDE + g] = sacc[nt][0];
                mine[(r + 1) * S::RED_STRIDE + g] = sacc[nt][1];
                mine[r * S::RED_STRIDE + g + 8] = sacc[nt][2];
                mine[(r + 1) * S::RED_STRIDE + g + 8] = sacc[nt][3];
            }
        }
        __syncthreads();

        // 2. sum the partials, mask, online softmax -> P (bf16) and the rows' rescale factors
        {
            const int kp = tile * KEYS + sm_key;
            #pragma unroll
            for (int i = 0; i < SM_ROWS; i++) {
                const int r = sm_row[i];
                if (r >= 0) {
                    float s = 0.f;
                    #pragma unroll
                    for (int w = 0; w < S::WARPS; w++) {
                        s += red[(w * S::ROWS + r) * S::RED_STRIDE + sm_key];
                    }
                    const bool visible = kp <= key_last[i] && kp >= key_first[i];
                    const float x = visible ? s * scale_log2 : NEG_INF;
                    float tmax = x;
                    #pragma unroll
                    for (int off = 8; off > 0; off >>= 1) {
                        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, off));
                    }
                    const float m_new = fmaxf(m_run[i], tmax);
                    const float corr = m_new == NEG_INF ? 1.f : exp2f(m_run[i] - m_new);
                    const float p = x == NEG_INF ? 0.f : exp2f(x - m_new);
                    l_run[i] = l_run[i] * corr + p;     // this lane's keys; summed over the row's lanes at the end
                    m_run[i] = m_new;
                    p_s[r * S::P_STRIDE + sm_key] = __float2bfloat16_rn(p);
                    if (sm_key == 0) {
                        corr_s[r] = corr;
                    }
                }
            }
        }
        __syncthreads();

        // 3. O^T = O^T * corr + V^T . P^T over this warp's slice
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
        unsigned pb[NQ][2];
        #pragma unroll
        for (int nt = 0; nt < NQ; nt++) {
            // P rows nt*8 + 0..7; lanes 0-7 keys 0-7, lanes 8-15 keys 8-15 (x2 reads lanes 0-15's addresses)
            const int r = nt * 8 + (lane & 7);
            const int kcol = ((lane >> 3) & 1) * 8;
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

    // ---- split KV: the last block of the (chunk, kv head) to arrive merges every split's partial ----
    // Each block publishes its partial (fence), then counts itself in; the one that brings the count to
    // `splits` knows every partial is visible, merges them in split order (the same bits whichever block
    // is last, graph replay or eager) and puts the count back to 0 for the next launch.
    __threadfence();
    __syncthreads();
    int* last_s = reinterpret_cast<int*>(corr_s);                 // the rescale factors are done with
    if (tid == 0) {
        const unsigned before = atomicAdd(arrivals + pair, 1u);
        const int last = before == (unsigned) splits - 1;
        if (last) {
            atomicExch(arrivals + pair, 0u);
        }
        *last_s = last;
    }
    __syncthreads();
    if (!*last_s) {
        return;
    }
    __threadfence();
    // Per (split, row): the weight exp2(m - m_all) / total, in the stage buffers (every copy has landed).
    // A warp per row, lanes over the splits (two each: MAX_SPLITS = 64); the sums in a fixed order.
    float* w_s = reinterpret_cast<float*>(smem);                  // [splits][ROWS]
    const int64_t first = pair * splits;
    for (int r = warp; r < rows; r += S::WARPS) {
        float m[2], l[2];
        #pragma unroll
        for (int j = 0; j < 2; j++) {
            const int sp = lane + 32 * j;
            const float2 ml = sp < splits ? __ldcg(reinterpret_cast<const float2*>(part_ml) + (first + sp) * S::ROWS + r)
                                          : make_float2(NEG_INF, 0.f);
            m[j] = ml.x;
            l[j] = ml.y;
        }
        float m_all = fmaxf(m[0], m[1]);
        #pragma unroll
        for (int off = 16; off > 0; off >>= 1) {
            m_all = fmaxf(m_all, __shfl_xor_sync(0xffffffffu, m_all, off));
        }
        float e[2];
        #pragma unroll
        for (int j = 0; j < 2; j++) {
            e[j] = m[j] == NEG_INF ? 0.f : exp2f(m[j] - m_all);
        }
        float total = e[0] * l[0] + e[1] * l[1];
        #pragma unroll
        for (int off = 16; off > 0; off >>= 1) {
            total += __shfl_xor_sync(0xffffffffu, total, off);
        }
        const float inv = 1.f / total;
        #pragma unroll
        for (int j = 0; j < 2; j++) {
            const int sp = lane + 32 * j;
            if (sp < splits) {
                w_s[sp * S::ROWS + r] = e[j] * inv;
            }
        }
    }
    __syncthreads();
    // O = sum over splits (fixed order) of weight x partial O: every thread over (row, 4 dims), 16 splits'
    // loads in flight before their sums.
    constexpr int D4 = HD / 4;
    const float4* po = reinterpret_cast<const float4*>(part_o) + first * S::ROWS * D4;
    constexpr int64_t SPLIT4 = (int64_t) S::ROWS * D4;            // float4s per split's partial
    for (int i = tid; i < rows * D4; i += S::THREADS) {
        const int r = i / D4;
        const int d4 = i % D4;
        const float4* src = po + r * D4 + d4;
        float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
        int sp = 0;
        for (; sp + 16 <= splits; sp += 16) {
            float4 x[16];
            #pragma unroll
            for (int j = 0; j < 16; j++) {
                x[j] = __ldcg(src + (sp + j) * SPLIT4);
            }
            #pragma unroll
            for (int j = 0; j < 16; j++) {
                const float w = w_s[(sp + j) * S::ROWS + r];
                acc.x = fmaf(w, x[j].x, acc.x);
                acc.y = fmaf(w, x[j].y, acc.y);
                acc.z = fmaf(w, x[j].z, acc.z);
                acc.w = fmaf(w, x[j].w, acc.w);
            }
        }
        for (; sp + 4 <= splits; sp += 4) {
            float4 x[4];
            #pragma unroll
            for (int j = 0; j < 4; j++) {
                x[j] = __ldcg(src + (sp + j) * SPLIT4);
            }
            #pragma unroll
            for (int j = 0; j < 4; j++) {
                const float w = w_s[(sp + j) * S::ROWS + r];
                acc.x = fmaf(w, x[j].x, acc.x);
                acc.y = fmaf(w, x[j].y, acc.y);
                acc.z = fmaf(w, x[j].z, acc.z);
                acc.w = fmaf(w, x[j].w, acc.w);
            }
        }
        for (; sp < splits; sp++) {
            const float4 x = __ldcg(src + sp * SPLIT4);
            const float w = w_s[sp * S::ROWS + r];
            acc.x = fmaf(w, x.x, acc.x);
            acc.y = fmaf(w, x.y, acc.y);
            acc.z = fmaf(w, x.z, acc.z);
            acc.w = fmaf(w, x.w, acc.w);
        }
        float* dst = out + (int64_t) (q_row0 + r / group) * os + (int64_t) (h * group + r % group) * HD + 4 * d4;
        dst[0] = acc.x;
        dst[1] = acc.y;
        dst[2] = acc.z;
        dst[3] = acc.w;
    }
}

}  // namespace jemma_xqa

#define JEMMA_XQA_VARIANT(HD, PAGE, NQ)                                                                        \
    extern "C" __global__ void __launch_bounds__(jemma_xqa::Shape<HD, NQ>::THREADS,                          \
                                                 jemma_xqa::Shape<HD, NQ>::MIN_BLOCKS)                         \
    jemma_xqa_hd##HD##_p##PAGE##_q##NQ(const float* q, int64_t qs, float* out, int64_t os,                      \
                                       const __nv_bfloat16* k_cache, const __nv_bfloat16* v_cache,             \
                                       int kv_heads, int group, float scale_log2, int window, const int* meta,  \
                                       int sliding, int max_tokens, float* part_o, float* part_ml,              \
                                       unsigned* arrivals) {                                                    \
        jemma_xqa::attend<HD, PAGE, NQ>(q, qs, out, os, k_cache, v_cache, kv_heads, group, scale_log2, window, \
                                        meta, sliding, max_tokens, part_o, part_ml, arrivals);                  \
    }

#define JEMMA_XQA_PAGES(HD, NQ) \
    JEMMA_XQA_VARIANT(HD, 16, NQ) JEMMA_XQA_VARIANT(HD, 32, NQ) JEMMA_XQA_VARIANT(HD, 64, NQ)

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
