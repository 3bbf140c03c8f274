// The general ("triton") GPU attention over the paged bf16 KV cache: prefill / extend (flash attention)
// and decode / verify (split-KV flash decoding) from one tile kernel, reading K/V through the step's block
// tables (attention_meta.cuh: any page size), any GQA group, sliding windows, trees, head dims <= 512.
//
// Work. A block attends ROWS query rows of one chunk for one kv head: rows are the chunk's flattened
// (token, head of the group) pairs, row f = token * group + head, so one K/V tile in shared memory
// serves every query head of the group and several tokens. The host lists the work items (chunk, first
// flattened row) per step and layer kind (TritonAttention): chunks of <= 8 tokens as decode items
// (every row of the request in one block when tokens * group <= 64), longer chunks as extend tiles.
// Grid: (work items, kv heads, splits). With splits > 1 (decode) the block's key range [lo, hi) is cut
// into `splits` runs of whole key tiles; every block writes its partial (max, sum, unnormalized
// output) to a workspace and jemma_attn_merge combines them (flash decoding). With splits == 1 the
// block normalizes and writes the output itself.
//
// Block. RG row groups of 16 rows x CS column splits = RG * CS warps; warp (rg, cs) owns head-dim range
// cs of its row group's 16 rows. Q (bf16) is staged in shared memory (and kept as mma fragments in
// registers where they fit); K and V tiles of N keys stream through STAGES buffers (cp.async,
// zero-filled past the range and for pages the sequence does not hold; the slots of a tile are looked
// up a tile ahead into a small ring). Per tile each warp computes its head-dim range's share of
// S = Q K^T for all N keys with mma.sync m16n8k16 (bf16 in, fp32 accumulate); the CS shares of a row
// group are summed through shared memory (one barrier of the group), so every warp of the group then
// holds the same S and runs the same online softmax (base 2): no exchange of maxima or of P. P (bf16)
// goes from the S accumulators straight into the A fragments of O[16 rows, its range] += P V. Shared
// rows are 16-byte-chunk swizzled (chunk ^ row % 8): ldmatrix reads 8 rows without bank conflicts.
//
// Masking (attention_meta.cuh's rule) is applied only to tiles that need it: those reaching the
// chunk's own tokens, the end of the range, or below a row's window start.
#include "jemma_common.cuh"
#include "attention_meta.cuh"
#include "jemma_ptx.cuh"

namespace jattn {

template <int PENDING>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(PENDING));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

// d += a (16x16 bf16, row) * b (16x8 bf16, col), fp32 accumulate.
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Barrier among the `threads` threads (whole warps) of one row group; id 0 is __syncthreads'.
__device__ __forceinline__ void group_barrier(int id, int threads) {
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads));
}

// Byte offset of 16-byte chunk `chunk` of row `row` in a swizzled tile of rows of `row_bytes`.
__device__ __forceinline__ uint32_t swizzle(int row, int chunk, int row_bytes) {
    return row * row_bytes + ((chunk ^ (row & 7)) << 4);
}

template <int HD, int RG, int CS, int N, int STAGES>
struct Config {
    static constexpr int ROWS = RG * 16;
    static constexpr int WARPS = RG * CS;
    static constexpr int THREADS = WARPS * 32;
    static constexpr int ROW_BYTES = HD * 2;
    static constexpr int CHUNKS = HD / 8;            // 16-byte chunks per row
    static constexpr int DW = HD / CS;               // head-dim range of a warp: its S terms and O columns
    static constexpr int KSTEPS = DW / 16;           // its k16 steps of Q K^T
    static constexpr int NT_S = N / 8;               // S n8 tiles (every key of the tile)
    static constexpr int NT_O = DW / 8;              // O n8 tiles
    // Q's A fragments stay in registers when they fit next to O and S.
    static constexpr bool QREG = KSTEPS * 4 + NT_O * 4 + NT_S * 4 <= 160;
    static constexpr int Q_BYTES = ROWS * ROW_BYTES;
    static constexpr int TILE_BYTES = N * ROW_BYTES;
    // Partial scores of the CS warps of a row group: [warp][n tile][lane] float4 (conflict-free). With Q
    // in registers they reuse Q's shared memory, free once the fragments are loaded.
    static constexpr int PART_BYTES = CS > 1 ? WARPS * NT_S * 32 * 16 : 0;
    static constexpr bool PART_IN_Q = QREG && PART_BYTES <= Q_BYTES;
    static constexpr int SLOT_BYTES = STAGES * N * 4;
    // Must match TritonAttention.Variant.sharedBytes().
    static constexpr int SMEM = Q_BYTES + 2 * STAGES * TILE_BYTES + (PART_IN_Q ? 0 : PART_BYTES) + SLOT_BYTES;
    static_assert(HD % 64 == 0, "head dim variants are multiples of 64 (swizzle over 8 chunks)");
    static_assert(DW % 32 == 0, "a warp's range is whole k16 step pairs and n8 tile pairs");
    static_assert(N % 16 == 0 && N <= THREADS, "key tile");
};

struct Args {
    const float* q;
    int64_t qs;
    float* out;
    int64_t os;
    const __nv_bfloat16* k_cache;
    const __nv_bfloat16* v_cache;
    const int* meta;
    const int2* work;
    int kv_heads;
    int group;
    int head_dim;
    float scale_log2;
    int window;
    int sliding;
    float* ws_acc;     // [items, kv_heads, splits, ROWS, HD]
    float* ws_ml;      // [items, kv_heads, splits, ROWS, 2]: max (base 2, scaled), sum
    int* ws_used;      // [items, kv_heads]: splits that hold keys
    // K stored once (k_eq_v layers): the cache holds V only (k_cache unused) and each K tile is derived from its
    // V tile, K = rope(V * k_w) at the key's position (jemma_key_from_value); null: K is read from k_cache.
    const float* k_w;      // [head_dim]
    const float* inv_freq; // [head_dim / 2]
    // Only the first k_chunks 8-dim chunks of each half (the rotating pairs, rounded up to whole chunks) are
    // derived into the K tile; in the others K = V * k_w, so q is scaled by k_w there and S reads the V tile.
    int k_chunks;
};

// The key range [lo, hi) a work item's rows may see, and where masking starts to be needed.
struct Range {
    int lo, hi, mask_from, first_max;
};

__device__ __forceinline__ Range item_range(const JemmaChunk& c, int row_base, int rows, int group, int window) {
    const int chunk_rows = c.tokens * group;
    const int t_first = row_base / group;
    const int t_last = (min(row_base + rows, chunk_rows) - 1) / group;
    Range r;
    // Tree tokens sit at start + depth >= start; causal ones at start + i.
    const int p_low = c.tree ? c.start : c.start + t_first;
    r.lo = window > 0 ? max(0, p_low - window + 1) : 0;
    r.hi = c.start + t_last + 1;
    r.mask_from = c.tree ? c.start : c.start + t_first + 1;
    r.first_max = window > 0 ? max(0, c.start + t_last - window + 1) : 0;
    return r;
}

// Tiles of the range and the run [t0, t1) split `split` of `splits` covers; returns the splits used.
__device__ __forceinline__ int split_tiles(int lo, int hi, int n, int split, int splits, int& t0, int& t1) {
    const int tiles = (hi - lo + n - 1) / n;
    const int per = (tiles + splits - 1) / splits;
    const int used = (tiles + per - 1) / per;
    t0 = split * per;
    t1 = min(tiles, t0 + per);
    return used;
}

template <int HD, int RG, int CS, int N, int STAGES, bool DERIVE>
__device__ __forceinline__ void attend(const Args& a) {
    using C = Config<HD, RG, CS, N, STAGES>;
    extern __shared__ __align__(128) unsigned char smem[];
    unsigned char* s_q = smem;
    unsigned char* s_k = s_q + C::Q_BYTES;
    unsigned char* s_v = s_k + STAGES * C::TILE_BYTES;
    float4* s_part = reinterpret_cast<float4*>(C::PART_IN_Q ? s_q : s_v + STAGES * C::TILE_BYTES);
    int* s_slot = reinterpret_cast<int*>(s_v + STAGES * C::TILE_BYTES + (C::PART_IN_Q ? 0 : C::PART_BYTES));

    const int item = blockIdx.x;
    const int kvh = blockIdx.y;
    const int split = blockIdx.z;
    const int splits = gridDim.z;
    const int tid = threadIdx.x;
    const int warp = tid >> 5;
    const int lane = tid & 31;
    const int rg = warp / CS;
    const int cs = warp % CS;
    const int g = lane >> 2;         // mma group: rows g and g + 8, key/column pair 2 * (lane % 4)
    const int tq = lane & 3;

    const int2 w = a.work[item];
    const JemmaChunk c = jemma_meta_chunk(a.meta, w.x);
    const int row_base = w.y;
    const int group = a.group;
    const int hd = a.head_dim;
    const int chunk_rows = c.tokens * group;
    const Range range = item_range(c, row_base, C::ROWS, group, a.window);
    int tile0, tile1;
    const int used = split_tiles(range.lo, range.hi, N, split, splits, tile0, tile1);
    if (splits > 1 && split == 0 && tid == 0) {
        a.ws_used[item * a.kv_heads + kvh] = used;
    }
    if (split >= used) {
        return;                                     // the whole block: no barrier was reached
    }
    const int n_tiles = tile1 - tile0;

    const int* table = jemma_meta_table(a.meta, a.sliding, c.table_row);
    const int page_size = jemma_meta_page_size(a.meta);
    const int64_t kv_row = (int64_t) a.kv_heads * hd;     // elements per cache slot
    const __nv_bfloat16* k_head = a.k_cache + (int64_t) kvh * hd;
    const __nv_bfloat16* v_head = a.v_cache + (int64_t) kvh * hd;
    // A compile-time choice (the _kd kernels), so the stored-K kernels carry none of the derivation's registers.
    constexpr bool derive = DERIVE;
    const int chunks_half = hd / 16;                      // 8-dim chunks per half of the head
    const int k_chunks = derive ? a.k_chunks : 1 << 30;   // chunks of each half read from the K tile

    // The slot of key `key` of tile `t` (relative to tile0), -1 past the range or without a page.
    auto slot_of = [&](int t, int key) -> int {
        const int kv = range.lo + (tile0 + t) * N + key;
        return t < n_tiles && kv < range.hi ? (int) jemma_meta_slot(table, page_size, kv) : -1;
    };
    // K/V tile `t` into stage t % STAGES from the slots in s_slot[t % STAGES]; no page: zeros.
    auto load_tile = [&](int t) {
        const int stage = t % STAGES;
        const uint32_t k_dst = jemma_smem_addr(s_k + stage * C::TILE_BYTES);
        const uint32_t v_dst = jemma_smem_addr(s_v + stage * C::TILE_BYTES);
        const int* slots = s_slot + stage * N;
        #pragma unroll 4
        for (int idx = tid; idx < N * C::CHUNKS; idx += C::THREADS) {
            const int key = idx / C::CHUNKS;
            const int chunk = idx % C::CHUNKS;
            const int slot = slots[key];
            const bool ok = slot >= 0 && chunk * 8 < hd;
            const int64_t off = ok ? (int64_t) slot * kv_row + chunk * 8 : 0;
            const uint32_t at = swizzle(key, chunk, C::ROW_BYTES);
            if (!derive) {
                jemma_cp_async16(k_dst + at, k_head + off, ok ? 16 : 0);
            } else if (chunk * 8 >= hd) {
                jemma_cp_async16(k_dst + at, v_head, 0);    // derived K: zeros past the head dim, as stored
            }
            jemma_cp_async16(v_dst + at, v_head + off, ok ? 16 : 0);
        }
    };

    // The slot ring: tiles 0 .. STAGES-1 now; later tile t + STAGES during iteration t.
    if (tid < N) {
        #pragma unroll
        for (int s = 0; s < STAGES; s++) {
            s_slot[s * N + tid] = slot_of(s, tid);
        }
    }
    // Q rows (fp32 -> bf16), zeros past the chunk's rows and past head_dim.
    for (int idx = tid; idx < C::ROWS * (HD / 2); idx += C::THREADS) {
        const int r = idx / (HD / 2);
        const int d = (idx % (HD / 2)) * 2;
        const int f = row_base + r;
        float x0 = 0.0f, x1 = 0.0f;
        if (f < chunk_rows && d < hd) {
            const int token = f / group;
            const int head = kvh * group + f % group;
            const float* src = a.q + (int64_t) (c.first_row + token) * a.qs + (int64_t) head * hd + d;
            x0 = src[0];
            x1 = src[1];
            if (derive && (d < hd / 2 ? d : d - hd / 2) >= a.k_chunks * 8) {
                x0 *= a.k_w[d];           // K stored once: K = V * k_w in the chunks not derived
                x1 *= a.k_w[d + 1];
            }
        }
        *reinterpret_cast<uint32_t*>(s_q + swizzle(r, d >> 3, C::ROW_BYTES) + (d & 7) * 2) = jemma_pack_bf16(x0, x1);
    }
    __syncthreads();
    #pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < n_tiles) {
            load_tile(s);
        }
        jemma_cp_async_commit();
    }

    // This thread's two rows (g, g + 8 of its row group): visibility.
    int row_first[2], row_hi[2];
    uint64_t row_mask[2];
    #pragma unroll
    for (int h = 0; h < 2; h++) {
        const int f = min(row_base + rg * 16 + g + 8 * h, chunk_rows - 1);   // padding rows copy a real one
        const int token = f / group;
        const int position = jemma_meta_position(a.meta, c.first_row + token);
        row_first[h] = a.window > 0 ? max(0, position - a.window + 1) : 0;
        row_hi[h] = c.start + token + 1;
        row_mask[h] = c.tree ? jemma_meta_mask(a.meta, c.first_row + token) : 0;
    }

    const uint32_t q_base = jemma_smem_addr(s_q);
    const int q_row = rg * 16 + (lane & 15);
    const int chunk0 = cs * (C::DW / 8);            // this warp's first head-dim chunk
    uint32_t qf[C::QREG ? C::KSTEPS : 1][4];
    if constexpr (C::QREG) {
        #pragma unroll
        for (int ks = 0; ks < C::KSTEPS; ks++) {
            ldmatrix_x4(qf[ks], q_base + swizzle(q_row, chunk0 + 2 * ks + (lane >> 4), C::ROW_BYTES));
        }
    }

    float o[C::NT_O][4];
    #pragma unroll
    for (int i = 0; i < C::NT_O; i++) {
        o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    }
    float m_run[2] = {-INFINITY, -INFINITY};
    float l_run[2] = {0.0f, 0.0f};

    for (int t = 0; t < n_tiles; t++) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        if (t + STAGES - 1 < n_tiles) {
            load_tile(t + STAGES - 1);
        }
        jemma_cp_async_commit();
        // The slot of tile t + STAGES: looked up now, stored after this tile's work (the table read's
        // latency hides behind it) into the ring entry tile t no longer needs.
        const int next_slot = tid < N ? slot_of(t + STAGES, tid) : -1;

        const int stage = t % STAGES;
        const uint32_t k_base = jemma_smem_addr(s_k + stage * C::TILE_BYTES);
        const uint32_t v_base = jemma_smem_addr(s_v + stage * C::TILE_BYTES);
        const int kv0 = range.lo + (tile0 + t) * N;
        if (derive) {
            // K stored once: this tile's K rows from its V rows (zero-filled keys give zero keys). A key's RoPE
            // position is its sequence position, except for this step's tree tokens, stored at start + index
            // and rotated at start + depth (the metadata's row position). The second half of each pair is
            // half a head away (hd % 16 == 0: TritonAttention checks).
            const int pairs = hd / 16;
            const int kc = a.k_chunks;
            for (int idx = tid; idx < N * kc; idx += C::THREADS) {
                const int key = idx / kc;
                const int ch = idx % kc;
                const int kv = kv0 + key;
                const int pos = c.tree && kv >= c.start ? jemma_meta_position(a.meta, c.first_row + min(kv - c.start,
                                                                                                   c.tokens - 1))
                                                        : kv;
                unsigned char* vt = s_v + stage * C::TILE_BYTES;
                unsigned char* kt = s_k + stage * C::TILE_BYTES;
                uint4 lo = *reinterpret_cast<const uint4*>(vt + swizzle(key, ch, C::ROW_BYTES));
                uint4 hi = *reinterpret_cast<const uint4*>(vt + swizzle(key, ch + pairs, C::ROW_BYTES));
                jemma_key_from_value(lo, hi, a.k_w, a.inv_freq, ch * 8, hd / 2, (float) pos);
                *reinterpret_cast<uint4*>(kt + swizzle(key, ch, C::ROW_BYTES)) = lo;
                *reinterpret_cast<uint4*>(kt + swizzle(key, ch + pairs, C::ROW_BYTES)) = hi;
            }
            __syncthreads();
        }

        // S = Q K^T over this warp's head-dim range, 16 rows x N keys: NT_S independent chains.
        float s[C::NT_S][4];
        #pragma unroll
        for (int i = 0; i < C::NT_S; i++) {
            s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
        }
        // Two k16 steps of Q K^T: A fragments (from registers or shared memory) for both, then per n tile
        // one ldmatrix of K for both.
        auto qk_steps = [&](int ks) {
            uint32_t a0[4], a1[4];
            if constexpr (C::QREG) {
                #pragma unroll
                for (int i = 0; i < 4; i++) {
                    a0[i] = qf[ks][i];
                    a1[i] = qf[ks + 1][i];
                }
            } else {
                ldmatrix_x4(a0, q_base + swizzle(q_row, chunk0 + 2 * ks + (lane >> 4), C::ROW_BYTES));
                ldmatrix_x4(a1, q_base + swizzle(q_row, chunk0 + 2 * ks + 2 + (lane >> 4), C::ROW_BYTES));
            }
            // K stored once: this lane's chunk comes from the K tile where it was derived, else from the V tile.
            const int kch = chunk0 + 2 * ks + (lane >> 3);
            const int kch_half = kch - (kch >= chunks_half ? chunks_half : 0);
            const uint32_t kv_base = derive && kch_half >= k_chunks ? v_base : k_base;
            #pragma unroll
            for (int nt = 0; nt < C::NT_S; nt++) {
                uint32_t b[4];
                ldmatrix_x4(b, kv_base + swizzle(nt * 8 + (lane & 7), kch, C::ROW_BYTES));
                mma_bf16(s[nt], a0, b[0], b[1]);
                mma_bf16(s[nt], a1, b[2], b[3]);
            }
        };
        if constexpr (C::QREG) {
            #pragma unroll
            for (int ks = 0; ks < C::KSTEPS; ks += 2) {
                qk_steps(ks);            // qf indexed by constants: fully unrolled
            }
        } else {
            #pragma unroll 2
            for (int ks = 0; ks < C::KSTEPS; ks += 2) {
                qk_steps(ks);
            }
        }
        if constexpr (CS > 1) {
            // Sum the partial scores of the row group's CS warps (each holds one head-dim range).
            float4* mine = s_part + warp * C::NT_S * 32;
            #pragma unroll
            for (int nt = 0; nt < C::NT_S; nt++) {
                mine[nt * 32 + lane] = make_float4(s[nt][0], s[nt][1], s[nt][2], s[nt][3]);
            }
            group_barrier(1 + rg, CS * 32);
            #pragma unroll
            for (int j = 1; j < CS; j++) {
                const float4* other = s_part + (rg * CS + (cs + j) % CS) * C::NT_S * 32;
                #pragma unroll
                for (int nt = 0; nt < C::NT_S; nt++) {
                    const float4 x = other[nt * 32 + lane];
                    s[nt][0] += x.x;
                    s[nt][1] += x.y;
                    s[nt][2] += x.z;
                    s[nt][3] += x.w;
                }
            }
        }

        // Scale (base 2), mask, online softmax (every warp of a row group holds the same S).
        const bool need_mask = kv0 + N > range.mask_from || kv0 < range.first_max;
        float mx[2] = {-INFINITY, -INFINITY};
        #pragma unroll
        for (int nt = 0; nt < C::NT_S; nt++) {
            #pragma unroll
            for (int e = 0; e < 4; e++) {
                const int h = e >> 1;
                float v = s[nt][e] * a.scale_log2;
                if (need_mask) {
                    const int kv = kv0 + nt * 8 + 2 * tq + (e & 1);
                    if (!jemma_key_visible(a.meta, c, a.window, kv, row_first[h], row_hi[h], row_mask[h])) {
                        v = -INFINITY;
                    }
                }
                s[nt][e] = v;
                mx[h] = fmaxf(mx[h], v);
            }
        }
        float base[2], alpha[2];
        #pragma unroll
        for (int h = 0; h < 2; h++) {
            mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
            mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
            const float m_new = fmaxf(m_run[h], mx[h]);
            base[h] = m_new == -INFINITY ? 0.0f : m_new;
            alpha[h] = exp2f(m_run[h] - base[h]);
            m_run[h] = m_new;
        }
        float sum[2] = {0.0f, 0.0f};
        #pragma unroll
        for (int nt = 0; nt < C::NT_S; nt++) {
            #pragma unroll
            for (int e = 0; e < 4; e++) {
                const float p = exp2f(s[nt][e] - base[e >> 1]);
                s[nt][e] = p;
                sum[e >> 1] += p;
            }
        }
        #pragma unroll
        for (int h = 0; h < 2; h++) {
            l_run[h] = l_run[h] * alpha[h] + sum[h];
        }
        #pragma unroll
        for (int i = 0; i < C::NT_O; i++) {
            o[i][0] *= alpha[0];
            o[i][1] *= alpha[0];
            o[i][2] *= alpha[1];
            o[i][3] *= alpha[1];
        }

        // O[:, this warp's columns] += P V: P's A fragments straight from the S accumulators.
        #pragma unroll
        for (int kk = 0; kk < N / 16; kk++) {
            uint32_t pa[4];
            pa[0] = jemma_pack_bf16(s[2 * kk][0], s[2 * kk][1]);
            pa[1] = jemma_pack_bf16(s[2 * kk][2], s[2 * kk][3]);
            pa[2] = jemma_pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            pa[3] = jemma_pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
            const int key = kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
            #pragma unroll
            for (int np = 0; np < C::NT_O / 2; np++) {
                uint32_t b[4];
                ldmatrix_x4_trans(b, v_base + swizzle(key, chunk0 + np * 2 + (lane >> 4), C::ROW_BYTES));
                mma_bf16(o[2 * np], pa, b[0], b[1]);
                mma_bf16(o[2 * np + 1], pa, b[2], b[3]);
            }
        }
        if (tid < N) {
            s_slot[stage * N + tid] = next_slot;
        }
    }
    cp_async_wait<0>();

    // Row sums over the quad (every warp of a row group has the same).
    #pragma unroll
    for (int h = 0; h < 2; h++) {
        l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 1);
        l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 2);
    }

    const int col0 = cs * C::DW;
    #pragma unroll
    for (int h = 0; h < 2; h++) {
        const int r = rg * 16 + g + 8 * h;
        const int f = row_base + r;
        if (f >= chunk_rows) {
            continue;
        }
        if (splits == 1) {
            const int token = f / group;
            const int head = kvh * group + f % group;
            float* dst = a.out + (int64_t) (c.first_row + token) * a.os + (int64_t) head * hd;
            const float inv = 1.0f / l_run[h];
            #pragma unroll
            for (int nt = 0; nt < C::NT_O; nt++) {
                const int d = col0 + nt * 8 + 2 * tq;
                if (d < hd) {
                    dst[d] = o[nt][2 * h] * inv;
                    dst[d + 1] = o[nt][2 * h + 1] * inv;
                }
            }
        } else {
            const int64_t part = ((int64_t) item * a.kv_heads + kvh) * splits + split;
            float* acc = a.ws_acc + (part * C::ROWS + r) * HD;
            #pragma unroll
            for (int nt = 0; nt < C::NT_O; nt++) {
                const int d = col0 + nt * 8 + 2 * tq;
                *reinterpret_cast<float2*>(acc + d) = make_float2(o[nt][2 * h], o[nt][2 * h + 1]);
            }
            if (cs == 0 && tq == 0) {
                *reinterpret_cast<float2*>(a.ws_ml + (part * C::ROWS + r) * 2) = make_float2(m_run[h], l_run[h]);
            }
        }
    }
}

}  // namespace jattn

#define JEMMA_ATTN_ENTRY(NAME, HD, RG, CS, N, STAGES, DERIVE)                                                 \
    extern "C" __global__ void __launch_bounds__(RG * CS * 32, 1)                                           \
    NAME(const float* q, int64_t qs, float* out, int64_t os, const __nv_bfloat16* k_cache,                  \
         const __nv_bfloat16* v_cache, const int* meta, const int2* work, int kv_heads, int group,          \
         int head_dim, float scale_log2, int window, int sliding, float* ws_acc, float* ws_ml, int* ws_used,  \
         const float* k_w, const float* inv_freq, int k_chunks) {                                            \
        jattn::Args a{q, qs, out, os, k_cache, v_cache, meta, work, kv_heads, group, head_dim, scale_log2,   \
                      window, sliding, ws_acc, ws_ml, ws_used, k_w, inv_freq, k_chunks};                     \
        jattn::attend<HD, RG, CS, N, STAGES, DERIVE>(a);                                                    \
    }
// Each variant twice: NAME reads K from the cache; NAME_kd derives it from V (K stored once: k_w not null).
#define JEMMA_ATTN_KERNEL(NAME, HD, RG, CS, N, STAGES)                                                        \
    JEMMA_ATTN_ENTRY(NAME, HD, RG, CS, N, STAGES, false)                                                     \
    JEMMA_ATTN_ENTRY(NAME##_kd, HD, RG, CS, N, STAGES, true)

// Variants: (head dim bucket, row groups, column splits, keys per tile, stages), in the order of
// TritonAttention.VARIANTS. Extend: 64 (hd 512) or 128 (hd 256) rows per block; decode / verify: 16, 32
// or 64 rows (tokens x group) per block. The last six are alternatives the timing test compares.
#define JEMMA_ATTN_VARIANTS(X)                                   \
    X(jemma_attn_extend_hd64, 64, 4, 1, 64, 2)                   \
    X(jemma_attn_extend_hd256, 256, 8, 1, 64, 2)                 \
    X(jemma_attn_extend_hd512, 512, 4, 2, 32, 2)                 \
    X(jemma_attn_decode_hd64_r16, 64, 1, 2, 32, 3)               \
    X(jemma_attn_decode_hd64_r32, 64, 2, 2, 32, 3)               \
    X(jemma_attn_decode_hd64_r64, 64, 4, 1, 32, 3)               \
    X(jemma_attn_decode_hd256_r16, 256, 1, 4, 32, 3)             \
    X(jemma_attn_decode_hd256_r32, 256, 2, 2, 32, 2)             \
    X(jemma_attn_decode_hd256_r64, 256, 4, 2, 32, 3)             \
    X(jemma_attn_decode_hd512_r16, 512, 1, 4, 32, 3)             \
    X(jemma_attn_decode_hd512_r32, 512, 2, 2, 32, 2)             \
    X(jemma_attn_decode_hd512_r64, 512, 4, 2, 32, 2)             \
    X(jemma_attn_decode_hd256_r16_n16, 256, 1, 4, 16, 4)         \
    X(jemma_attn_decode_hd512_r16_n16, 512, 1, 4, 16, 3)         \
    X(jemma_attn_extend_hd256_n32, 256, 8, 1, 32, 3)             \
    X(jemma_attn_extend_hd512_r32, 512, 2, 4, 32, 2)             \
    X(jemma_attn_decode_hd512_r32_n16, 512, 2, 2, 16, 2)         \
    X(jemma_attn_decode_hd512_r32_w8, 512, 2, 4, 32, 3)

JEMMA_ATTN_VARIANTS(JEMMA_ATTN_KERNEL)

// Each variant's dynamic shared memory (Config::SMEM), in list order: TritonAttention checks its own
// arithmetic against it once, so a launch never gets less than the kernel uses.
extern "C" __global__ void jemma_attn_shared_bytes(int* out) {
    int i = 0;
#define JEMMA_ATTN_SMEM(NAME, HD, RG, CS, N, STAGES) out[i++] = jattn::Config<HD, RG, CS, N, STAGES>::SMEM;
    JEMMA_ATTN_VARIANTS(JEMMA_ATTN_SMEM)
#undef JEMMA_ATTN_SMEM
}

// Flash-decoding merge: grid (items, kv heads), one thread per (row, column) pair in turn. Combines the
// used splits' partials of a work item: out = sum_s 2^(m_s - M) acc_s / sum_s 2^(m_s - M) l_s.
extern "C" __global__ void jemma_attn_merge(float* out, int64_t os, const int* meta, const int2* work, int kv_heads,
                                            int group, int head_dim, int head_dim_bucket, int rows_per_item,
                                            int splits, const float* __restrict__ ws_acc,
                                            const float* __restrict__ ws_ml, const int* __restrict__ ws_used) {
    const int item = blockIdx.x;
    const int kvh = blockIdx.y;
    const int2 w = work[item];
    const JemmaChunk c = jemma_meta_chunk(meta, w.x);
    const int rows = min(rows_per_item, c.tokens * group - w.y);
    const int used = ws_used[item * kv_heads + kvh];
    const int64_t part0 = ((int64_t) item * kv_heads + kvh) * splits;
    for (int idx = threadIdx.x; idx < rows * head_dim; idx += blockDim.x) {
        const int r = idx / head_dim;
        const int d = idx % head_dim;
        float m = -INFINITY;
        for (int s = 0; s < used; s++) {
            m = fmaxf(m, ws_ml[((part0 + s) * rows_per_item + r) * 2]);
        }
        float l = 0.0f, acc = 0.0f;
        for (int s = 0; s < used; s++) {
            const float2 ml = *reinterpret_cast<const float2*>(ws_ml + ((part0 + s) * rows_per_item + r) * 2);
            const float weight = ml.x == -INFINITY ? 0.0f : exp2f(ml.x - m);
            l += weight * ml.y;
            acc += weight * ws_acc[((part0 + s) * rows_per_item + r) * head_dim_bucket + d];
        }
        const int f = w.y + r;
        const int token = f / group;
        const int head = kvh * group + f % group;
        out[(int64_t) (c.first_row + token) * os + (int64_t) head * head_dim + d] = acc / l;
    }
}
