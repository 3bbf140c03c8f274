// Prefill / extend attention for Hopper (sm_90a): FlashAttention-3-style warp specialization with wgmma.
// The general ("triton") backend launches it in place of jemma_attn_extend_hd256 / _hd512
// (attention_general.cu) on compute capability 9.0, for the same work items (128 or 64 flattened
// (token, group head) rows of one chunk for one kv head), grid (work items, kv heads); decode, verify and
// the mma.sync kernels stay as they are (sm_80 and the fallback).
//
// Block: 384 threads = 3 warpgroups. Warpgroup 0 is the producer (setmaxnreg 40 registers): it looks up
// the slots of each tile of N keys through the block table (any page size) and gathers K and V rows with
// cp.async (16 bytes a lane, a warp per key row) into 2-stage rings, zero-filling keys past the range
// and pages the sequence does not hold; once a copy group has landed it fences (the tensor cores read
// through the async proxy) and arrives on the `full` mbarriers of what it held. K and V have their own
// full / empty barriers: K(t) is free once S(t) is done, V(t) once P V(t) is.
//
// Warpgroups 1 and 2 are consumers (232 registers; O alone takes 128 a thread). Head dim 256: each owns
// 64 of the block's 128 rows and all 256 columns. Head dim 512: both take the same 64 rows and each half
// of the head dim: its partial S over its half of Q K^T goes through shared memory to the other, both
// run the same softmax, each accumulates its 256 columns of O. Per tile: S = Q K^T (wgmma m64nNk16, Q
// and K from shared memory), online softmax in base 2 in registers (masking only on tiles that reach
// the chunk's own tokens, the range end or a window start: attention_meta.cuh's rule, trees included;
// O's rescale skipped when no row of the warp got a new maximum), O += P V (wgmma m64n256k16, P from
// registers as bf16, V from shared memory, MN-major). The default kernels issue S(t) and P V(t - 1) back
// to back, so the softmax of S(t) runs while the tensor cores do P V(t - 1); warp-level arrives on the
// empty barriers release the stages. Each consumer loads its Q (fp32) with 16 loads in flight a thread
// before converting (one round trip per 16 groups of 4 columns, not one per group: the block's fixed cost
// that weighed most, see NOTES.md; the _bq kernels copy bf16 Q by cp.async instead), and at the end writes
// O (fp32) and, when TritonAttention passes one, O's bf16 copy for the o_proj GEMM (the GEMM's own rounding,
// so it skips its conversion pass).
//
// Clusters of 2 CTAs (session 5, NOTES.md version 3): _split gives each 128-row item
// a cluster whose CTAs hold one half of the head dim each (Q, K, V, O's columns), so the pair reads each K/V
// byte once per 128 rows; the warps exchange their partial scores with the other CTA's warp of the same rows
// (st.async, complete_tx on a per-warp mbarrier). _cluster instead pairs adjacent 64-row items and delivers
// each CTA's half of every shared K/V tile into the other's stage by bulk copy (slower: the pair's pipelines
// run in lock step); _cluster_solo is that kernel sharing nothing. _split_n48 (session 6, NOTES.md version 4b)
// is _split with 48-key tiles and 2 stages (7.0 vs 7.5 ms at 8k causal).
//
// Session 7 (NOTES.md version 5): _tma kernels fetch K and V by bulk tensor copy (see TMA) instead of the
// producer warpgroup's cp.async gather. The defaults since: head dim 256 _tma_n80 (80-key tiles; 442 TFLOP/s at 8k
// causal against the gather's 398), head dim 512 _split_ahead_n48_tma (S a tile ahead, 48-key tiles; 364 against
// _split_n48's 310). For pages that are not a multiple of 16 slots TritonAttention takes the gather kernels.
// Session 8 (NOTES.md version 6): the same kernels at 461 and 405 TFLOP/s, once the loop held 8 registers fewer (the
// rows' visibility) and the score exchange waited at CTA scope. Session 9 (NOTES.md version 7): 570 and 479, once
// each bulk copy brought a page's 16 keys x 256 columns instead of 16 x 64 (TMA): what had held the kernels was
// the copy engine's cost per box, not L2's bandwidth. Kernel variants are quickest tried with
// tools/gpu/prefill-bench.sh (no Java), then checked with AttentionGpuTest.
//
// The kernels and their alternatives are one table, JEMMA_FA3_KERNELS at the end (TritonAttention's
// SM90_KERNELS mirrors it): the defaults, and for timings and tests session 3's default (_base) and the
// variants measured against it.
//
// Shared memory (1024-byte aligned, 128-byte swizzle: 16-byte chunk c of a 128-byte row r sits at
// chunk c ^ (r % 8)): Q [HD/64 column blocks][ROWS][64] bf16, K and V tiles [HD/64][N keys][64] per
// stage (the TMA kernels: [N / 8][4][8][64], see TMA), the partial-score exchange (head dim 512), then the
// mbarriers. Q and K are K-major wgmma operands (rows contiguous along the head dim), V the MN-major B operand
// of P V (leading byte offset: between 64-column blocks, stride: between 8-row groups).
#include "jemma_common.cuh"
#include "attention_meta.cuh"
#include "jemma_ptx.cuh"

// A CUtensorMap (cuda.h; 128 opaque bytes, 64-byte aligned), passed by value as a __grid_constant__ parameter.
struct alignas(64) JemmaTensorMap {
    unsigned long long words[16];
};

namespace jfa3 {

constexpr int THREADS = 384;

// Kernel options (FLAGS bits): S(t) issued with P V(t - 1) so that the softmax overlaps the tensor cores;
// the two warpgroups taking turns at the tensor cores; the producer signalling a round before waiting for the
// next one's buffers; Q loaded one 4-column group a round trip (session 3's loop, kept to time against);
// ASYNC: the copies arrive on the full barriers themselves (cp.async.mbarrier.arrive.noinc) when they land,
// the producer never waits for a copy and reads each round's block-table entries a round ahead; PERSIST:
// one block per SM works through the items (the producer loads the next item's tiles while the consumers
// finish the current one).
constexpr int OVERLAP = 1;
constexpr int PINGPONG = 2;
constexpr int EARLY = 4;
constexpr int QSLOW = 16;
constexpr int ASYNC = 32;
constexpr int PERSIST = 64;
// CLUSTER: thread-block clusters of 2 CTAs (adjacent work items of one kv head, see attend); each CTA gathers
// half of every shared K / V tile (its half of the head dim's 64-column blocks) and a bulk copy delivers that
// half into the other CTA's shared memory too, so each K/V byte leaves L2 once per 2 x ROWS query rows.
constexpr int CLUSTER = 128;
// SOLO (with CLUSTER): the pairs share nothing, each CTA loads its whole tiles (what the cluster costs by itself).
constexpr int SOLO = 256;
// XSPLIT: a cluster of 2 CTAs per 128-row item, each CTA one half of the head dim (rank r: columns r * HD / 2 ..):
// it loads only that half of Q, K and V (so the pair reads each K/V byte once per 128 rows and no tile crosses
// between the CTAs), its two warpgroups own 64 rows each, and the partial scores over the two halves are
// exchanged between the CTAs every tile (st.async into the other CTA's shared memory, completing on a
// per-warp mbarrier there); each CTA writes its half of O's columns.
constexpr int XSPLIT = 512;
// BQ: Q is bf16 in global memory (the QKV norm's bf16-only output at prefill, session 5 qb5): `q` points at bf16
// [tokens, heads * head_dim] with row stride qs in elements (16-byte aligned rows, head_dim % 8 == 0: the launcher
// checks); each consumer thread copies its Q chunks into the swizzled tile with 16-byte cp.async (zero-fill past the
// chunk's rows and head_dim), issued first and waited for only after the row visibility is set up.
constexpr int BQ = 1024;
// XONE (with XSPLIT, session 6 fs6): one partial-score exchange buffer per warp instead of two (by tile parity), so
// that 64-key tiles fit (Q 64 KB + 2 stages x (K + V) 128 KB + 32 KB): the receiving warp acknowledges each
// partial it has read (a remote arrive on the sender's per-warp `free` barrier), and the sender waits for that
// before storing the next one.
constexpr int XONE = 1 << 14;
// AHEAD (with XSPLIT, session 6 fs6): S issued a tile ahead. Iteration t issues S(t + 1) and P V(t - 1), runs the
// softmax of S(t) (whose partial scores were sent to the other CTA an iteration earlier, so the exchange has had a
// whole iteration to land) while the tensor cores work, then sends S(t + 1)'s partials: the cross-SM exchange
// leaves the path between S and the softmax (a second S in registers: N / 2 more a thread).
constexpr int AHEAD = 1 << 15;
// TMA (session 7): the producer fetches K and V by bulk tensor copy (cp.async.bulk.tensor, the Tensor Memory
// Accelerator) instead of the cp.async gather, one thread issuing every copy, each completing its bytes on the tile's
// full barrier (complete_tx): the producer never waits for a copy and never fences (the copies write through the async
// proxy the wgmma reads through). Session 9 (NOTES.md version 7): one box is a 16-key run of one page x the CTA's
// 256 columns, a 4-D box of the pool seen as [slots / 8][8][columns / 64][64] (TritonAttention encodes the map once per
// buffer, cuTensorMapEncodeTiled, 128-byte swizzle): it lands as [2 key octets][4 column blocks][8 keys][64] bf16, so a
// stage is [N / 8 key octets][4 column blocks][8][64], every 1 KB atom (8 keys x one 64-column block) in place for
// the wgmma descriptors (K: stride 4 KB between key octets, column block k at 1 KB k; V: leading offset 1 KB between
// column blocks, stride 4 KB between key octets). Session 7's boxes of 16 keys x 64 columns took 4 copies where this
// takes one, and the copy engine's cost is per box more than per byte: the data path alone went 548 -> 754
// TFLOP/s-equivalent at head dim 512, the kernels 397 -> 468 (hd 512) and 452 -> 553 (hd 256). Needs pages of a
// multiple of 16 slots (a box never straddles a page), head_dim == HD and 256 columns a CTA; TritonAttention keeps the
// gather kernel otherwise. Tiles start at lo rounded down to 16 (the keys below lo are outside every row's window:
// masked, and written: the page holds lo); boxes past the range end or without a page are read out of bounds, which
// fills zeros. The box that holds the range end brings its page's slots past hi, whatever a released page left there:
// the consumers zero those V rows before the last P V (clear_tail_values) and mask those keys.
constexpr int TMA = 1 << 16;
// KD (with TMA and XSPLIT, session 9): K stored once (k_eq_v layers, jemma.kv-store-k-eq-v-once; NOTES.md "K=V stored
// once"): the cache holds V only and K = rope(V * k_w) at the key's position. Only the first 64 columns of each half
// of the head rotate (TritonAttention takes this kernel only when every nonzero RoPE frequency is among the first 64
// pairs: 31B / 26B-A4B's proportional RoPE has 64); in the other columns K = V * k_w, so the consumers scale Q by k_w
// there and S reads those three 64-column blocks straight from the V stage. The rotating block is derived: the
// producer copies V and, into a third ring, the other half's rotating block (each CTA holds one half; a pair (d,
// d + HD / 2) straddles the two), and its warps 1 to 3 derive the K block from both (jemma_key_from_value's rotation)
// into the K stage, which is one 64-column block here (N x 64). A V stage now lives from S(t) to P V(t): three stages.
constexpr int KD = 1 << 13;

// ROWS query rows per block, CSPLIT consumer warpgroups per 64 rows (1: each owns 64 rows and every
// column; 2: both take the same 64 rows, each half of the head dim of S's contraction and of O's
// columns, the partial scores summed through shared memory), N keys per tile, STAGES-deep K and V rings.
template <int HD, int ROWS, int CSPLIT, int N, int STAGES, int FLAGS>
struct Cfg {
    static_assert(STAGES >= 2, "one stage in use, one loading");
    static constexpr bool XS = (FLAGS & XSPLIT) != 0;
    static constexpr int HDL = XS ? HD / 2 : HD;         // head-dim columns this CTA holds
    static constexpr int DW = HDL / CSPLIT;              // a consumer's contraction range and O columns
    static constexpr int Q_BYTES = ROWS * HDL * 2;
    static constexpr int TILE_BYTES = N * HDL * 2;
    // KD: the K stage is the derived 64-column block, and the other half's rotating block rides with each V stage.
    static constexpr bool KD_ = (FLAGS & KD) != 0;
    static constexpr int K_TILE_BYTES = KD_ ? N * 128 : TILE_BYTES;
    static constexpr int PEER_BYTES = KD_ ? N * 128 : 0;
    // Partial S, double-buffered: [parity][warpgroup][warp][float4][lane] (XONE: one buffer, [warpgroup][warp]...).
    static constexpr int X_BYTES = (FLAGS & XONE) != 0 ? 2 * 64 * N * 4 : CSPLIT > 1 || XS ? 2 * 2 * 64 * N * 4 : 0;
    static constexpr int BAR_BYTES = 8 * 4 * STAGES + (XS ? 8 * 16 : 0);   // full / empty, K / V, per stage; exchange
    // Must match TritonAttention's SM90_* shared bytes: 1024 bytes of slack to align the base.
    static constexpr int SMEM = 1024 + Q_BYTES + STAGES * (K_TILE_BYTES + TILE_BYTES + PEER_BYTES) + X_BYTES + BAR_BYTES;
    static_assert(!KD_ || ((FLAGS & TMA) != 0 && XS && HD == 512 && N <= 48), "K from V: the split head dim 512 TMA kernel");
    static_assert(DW == 256, "a consumer warpgroup holds 64 rows x 256 columns of O");
    static_assert(ROWS * CSPLIT == 128, "two consumer warpgroups");
    static_assert(N == 32 || N == 48 || N == 64 || N == 80, "key tiles of 32, 48, 64 or 80");
    // Registers a thread: producer (address arithmetic) and consumers (O alone: 128).
    static constexpr int PRODUCER_REGS = 40;
    static constexpr int CONSUMER_REGS = 232;
};

}  // namespace jfa3

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
namespace jfa3 {

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}

__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}

__device__ __forceinline__ void cp_async_wait_one() {
    asm volatile("cp.async.wait_group 1;\n" ::: "memory");
}

__device__ __forceinline__ void cp_async_wait_all() {
    asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}

// Arrives on the mbarrier once every earlier cp.async of this thread has landed (the arrival counts
// toward the barrier's expected count: .noinc).
__device__ __forceinline__ void cp_async_arrive(uint32_t bar) {
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}

// Orders this thread's generic-proxy shared-memory writes before later async-proxy reads (wgmma).
__device__ __forceinline__ void fence_proxy_async() {
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}

__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
    asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0];\n}\n" ::"r"(bar) : "memory");
}

__device__ __forceinline__ void mbar_wait(uint32_t bar, int parity) {
    asm volatile(
        "{\n.reg .pred done;\n"
        "WAIT:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra WAIT;\n"
        "}\n" ::"r"(bar), "r"(parity) : "memory");
}

// mbar_wait that traps after 5 seconds: a protocol error in the persistent kernel fails the launch
// instead of hanging the process.
__device__ __forceinline__ void mbar_wait_bounded(uint32_t bar, int parity) {
    uint64_t start = 0;
    for (;;) {
        uint32_t done;
        asm volatile(
            "{\n.reg .pred p;\n"
            "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
            "selp.u32 %0, 1, 0, p;\n"
            "}\n" : "=r"(done) : "r"(bar), "r"(parity) : "memory");
        if (done) {
            return;
        }
        uint64_t now;
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
        if (start == 0) {
            start = now;
        } else if (now - start > 5000000000ull) {
            __trap();
        }
    }
}

// mbar_wait, then the generic -> async proxy fence (copies by plain cp.async that wgmma reads next).
__device__ __forceinline__ void mbar_wait_fenced(uint32_t bar, int parity) {
    asm volatile(
        "{\n.reg .pred done;\n"
        "WAIT:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra WAIT;\n"
        "fence.proxy.async.shared::cta;\n"
        "}\n" ::"r"(bar), "r"(parity) : "memory");
}

// Cluster helpers (CLUSTER kernels).
__device__ __forceinline__ uint32_t cluster_rank() {
    uint32_t r;
    asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
    return r;
}

// The shared::cluster address of the same shared-memory offset in CTA `rank` of the cluster.
__device__ __forceinline__ uint32_t map_to(uint32_t addr, uint32_t rank) {
    uint32_t r;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(r) : "r"(addr), "r"(rank));
    return r;
}

// Every thread of both CTAs: release this CTA's earlier writes (barrier inits included), acquire the other's.
__device__ __forceinline__ void cluster_sync() {
    asm volatile("barrier.cluster.arrive.release;\nbarrier.cluster.wait.acquire;\n" ::: "memory");
}

__device__ __forceinline__ void fence_mbar_init_cluster() {
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

// Arrives `count` times on a barrier of this CTA.
__device__ __forceinline__ void mbar_arrive_count(uint32_t bar, int count) {
    asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0], %1;\n}\n" ::"r"(bar), "r"(count) : "memory");
}

// Arrives on a barrier of another CTA of the cluster (shared::cluster address; CUTLASS's ClusterBarrier form).
__device__ __forceinline__ void mbar_arrive_remote(uint32_t cluster_bar) {
    asm volatile("mbarrier.arrive.shared::cluster.b64 _, [%0];\n" ::"r"(cluster_bar) : "memory");
}

// mbar_arrive_remote releasing at cluster scope (XONE: this warp's reads of the exchange buffer come before the
// other CTA's next stores into it).
__device__ __forceinline__ void mbar_arrive_remote_release(uint32_t cluster_bar) {
    asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];\n" ::"r"(cluster_bar) : "memory");
}

// Arrives on a barrier of this CTA and expects `bytes` more of asynchronous (complete_tx) data in this phase.
__device__ __forceinline__ void mbar_arrive_expect(uint32_t bar, int bytes) {
    asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.expect_tx.shared::cta.b64 state, [%0], %1;\n}\n" ::"r"(bar), "r"(bytes) : "memory");
}

// mbar_wait acquiring at cluster scope (XONE: the other CTA's acknowledgement that it read this warp's partial scores,
// before this warp stores the next ones; the partial scores themselves are waited for at CTA scope, see x_recv).
__device__ __forceinline__ void mbar_wait_cluster(uint32_t bar, int parity) {
    asm volatile(
        "{\n.reg .pred done;\n"
        "WAIT:\n"
        "mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra WAIT;\n"
        "}\n" ::"r"(bar), "r"(parity) : "memory");
}

// 16 bytes into another CTA's shared memory (shared::cluster addresses), completing 16 bytes on its barrier.
__device__ __forceinline__ void st_async4(uint32_t addr, float4 v, uint32_t bar) {
    asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.v4.f32 [%0], {%1, %2, %3, %4}, [%5];\n"
                 ::"r"(addr), "f"(v.x), "f"(v.y), "f"(v.z), "f"(v.w), "r"(bar) : "memory");
}

// Bulk copy of `bytes` (a multiple of 16) from this CTA's shared memory to another CTA's (shared::cluster
// addresses dst and bar); the bytes complete_tx on that CTA's barrier `bar` when they land.
__device__ __forceinline__ void bulk_copy_to_peer(uint32_t dst, uint32_t src, int bytes, uint32_t bar) {
    asm volatile("cp.async.bulk.shared::cluster.shared::cta.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n"
                 ::"r"(dst), "r"(src), "r"(bytes), "r"(bar) : "memory");
}

// One box of a 4-D tensor map (coordinates c0 innermost; boxes out of bounds fill zeros) into this CTA's shared
// memory at dst, completing its bytes on the barrier bar. The TMA kernels' box: 16 keys x 256 columns (see TMA).
__device__ __forceinline__ void tma_load_4d(uint32_t dst, const JemmaTensorMap* map, int c0, int c1, int c2, int c3,
                                            uint32_t bar) {
    asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
                 " [%0], [%1, {%2, %3, %4, %5}], [%6];\n"
                 ::"r"(dst), "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)
                 : "memory");
}

__device__ __forceinline__ void named_barrier(int id, int threads) {
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

__device__ __forceinline__ void named_arrive(int id, int threads) {
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

__device__ __forceinline__ void wgmma_fence() {
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}

__device__ __forceinline__ void wgmma_commit() {
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}

__device__ __forceinline__ void wgmma_wait_one() {
    asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
}

__device__ __forceinline__ void wgmma_wait_all() {
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
}

// Keeps the compiler from moving accesses to accumulator registers across the asynchronous wgmma.
template <int COUNT>
__device__ __forceinline__ void pin(float (&d)[COUNT]) {
    #pragma unroll
    for (int i = 0; i < COUNT; i++) {
        asm volatile("" : "+f"(d[i])::"memory");
    }
}

// Shared-memory matrix descriptor, 128-byte swizzle: start address, leading and stride byte offsets
// (16-byte units). K-major: stride = between 8-row groups (1024 here), leading unused. MN-major:
// leading = between 64-element column blocks, stride = between 8-row groups.
__device__ __forceinline__ uint64_t descriptor(uint32_t addr, uint32_t leading, uint32_t stride) {
    return (uint64_t) ((addr & 0x3FFFF) >> 4) | ((uint64_t) (leading >> 4) << 16) | ((uint64_t) (stride >> 4) << 32)
            | (1ull << 62);
}

// 2^x (MUFU; 2^-inf = 0).
__device__ __forceinline__ float ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

// d[64 x 32] (+)= A[64 x 16] B[16 x 32]: A and B by shared-memory descriptors, both K-major; scale_d 0
// overwrites d.
__device__ __forceinline__ void wgmma_ss(float (&d)[16], uint64_t da, uint64_t db, int scale_d) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, %16, %17, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
        : "l"(da), "l"(db), "r"(scale_d));
}

// d[64 x 48] (+)= A[64 x 16] B[16 x 48]: A and B by shared-memory descriptors, both K-major; scale_d 0
// overwrites d (48-key tiles of the split kernel, session 6).
__device__ __forceinline__ void wgmma_ss(float (&d)[24], uint64_t da, uint64_t db, int scale_d) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %26, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n48k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23}, %24, %25, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23])
        : "l"(da), "l"(db), "r"(scale_d));
}

// d[64 x 64] (+)= A[64 x 16] B[16 x 64]: A and B by shared-memory descriptors, both K-major; scale_d 0
// overwrites d.
__device__ __forceinline__ void wgmma_ss(float (&d)[32], uint64_t da, uint64_t db, int scale_d) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(da), "l"(db), "r"(scale_d));
}

// d[64 x 80] (+)= A[64 x 16] B[16 x 80]: A and B by shared-memory descriptors, both K-major; scale_d 0
// overwrites d.
__device__ __forceinline__ void wgmma_ss(float (&d)[40], uint64_t da, uint64_t db, int scale_d) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %42, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n80k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39}, %40, %41, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39])
        : "l"(da), "l"(db), "r"(scale_d));
}

// d[64 x 256] += A[64 x 16] B[16 x 256]: A (bf16 pairs) from registers in the mma.sync A-fragment layout of
// each warp's 16 rows, B by a shared-memory descriptor, MN-major (transposed: V rows are keys).
__device__ __forceinline__ void wgmma_m64n256_rs(float (&d)[128], const uint32_t (&a)[4], uint64_t db, int scale_d) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %133, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, {%128, %129, %130, %131}, %132, p, 1, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(scale_d));
}

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
    __nv_bfloat16* out_bf16;      // null, or out's bf16 twin (the o_proj GEMM's operand), row stride obs
    int64_t obs;
    int items;                    // work items (PERSIST: the grid is smaller than items x kv heads)
    const JemmaTensorMap* tm_k;   // TMA: the K and V pools as 4-D tensors (the kernel's __grid_constant__ parameters;
    const JemmaTensorMap* tm_v;   // KD: tm_k maps the V pool in boxes of 16 keys x 64 columns, the other half's block)
    const float* k_w;             // KD: the k_norm weight [head_dim] and RoPE frequencies [head_dim / 2] (else null)
    const float* inv_freq;
};

template <int HD, int ROWS, int CSPLIT, int N, int STAGES, int FLAGS>
__device__ __forceinline__ void attend(const Args& a) {
    constexpr bool OVERLAP = (FLAGS & jfa3::OVERLAP) != 0;
    constexpr bool PINGPONG = (FLAGS & jfa3::PINGPONG) != 0;
    constexpr bool EARLY = (FLAGS & jfa3::EARLY) != 0;
    constexpr bool ASYNC_ARRIVE = (FLAGS & jfa3::ASYNC) != 0;
    constexpr bool PERSISTENT = (FLAGS & jfa3::PERSIST) != 0;
    static_assert(!PERSISTENT || (ASYNC_ARRIVE && !PINGPONG), "the persistent kernel's producer is the ASYNC one");
    static_assert(!PINGPONG || (OVERLAP && CSPLIT == 1), "ping-pong between warpgroups of different rows");
    constexpr bool CLUSTERED = (FLAGS & jfa3::CLUSTER) != 0;
    static_assert(!CLUSTERED || (!PERSISTENT && !ASYNC_ARRIVE && !EARLY && !PINGPONG), "the cluster kernel's producer is the default one");
    constexpr bool XS = (FLAGS & jfa3::XSPLIT) != 0;
    static_assert(!XS || (CSPLIT == 1 && ROWS == 128 && !CLUSTERED && !PERSISTENT && !ASYNC_ARRIVE && !EARLY && !PINGPONG),
                  "head-dim split across the cluster: 128 rows, the default producer");
    constexpr bool IN_CLUSTER = CLUSTERED || XS;
    constexpr bool XONE_ = (FLAGS & jfa3::XONE) != 0;
    constexpr bool AHEAD_ = (FLAGS & jfa3::AHEAD) != 0;
    static_assert(!(XONE_ || AHEAD_) || (XS && OVERLAP), "XONE and AHEAD are options of the overlapped split kernel");
    constexpr bool TMA_ = (FLAGS & jfa3::TMA) != 0;
    static_assert(!TMA_ || (OVERLAP && CSPLIT == 1 && !EARLY && !ASYNC_ARRIVE && !PERSISTENT && !CLUSTERED && N % 16 == 0),
                  "the bulk tensor copy replaces the default producer");
    static_assert(!TMA_ || HD / ((FLAGS & jfa3::XSPLIT) != 0 ? 2 : 1) == 256, "a box holds the CTA's 256 columns");
    using C = Cfg<HD, ROWS, CSPLIT, N, STAGES, FLAGS>;
    constexpr int DW = C::DW;
    extern __shared__ unsigned char smem_raw[];
    const uint32_t raw = jemma_smem_addr(smem_raw);
    unsigned char* smem = smem_raw + ((1024 - (raw & 1023)) & 1023);
    unsigned char* s_q = smem;
    unsigned char* s_k = s_q + C::Q_BYTES;
    unsigned char* s_v = s_k + STAGES * C::K_TILE_BYTES;
    unsigned char* s_peer = s_v + STAGES * C::TILE_BYTES;   // KD: the other half's rotating block of each V stage
    float4* s_x = reinterpret_cast<float4*>(s_peer + STAGES * C::PEER_BYTES);
    const uint32_t bars = jemma_smem_addr(s_peer + STAGES * C::PEER_BYTES + C::X_BYTES);
    constexpr bool KD_ = C::KD_;
    // XS: the exchange barriers, [parity][warpgroup][warp], each completing when the other CTA's warp of the same
    // rows has stored its partial scores here (complete_tx) and this CTA's warp has armed it (expect_tx).
    const uint32_t xbars = bars + 8 * 4 * STAGES;
    // K and V stages have their own barriers: K(t) is free once S(t) is done, V(t) once P V(t) is.
    auto full_k = [&](int stage) { return bars + 8 * stage; };
    auto full_v = [&](int stage) { return bars + 8 * (STAGES + stage); };
    auto empty_k = [&](int stage) { return bars + 8 * (2 * STAGES + stage); };
    auto empty_v = [&](int stage) { return bars + 8 * (3 * STAGES + stage); };
    // Tile t is use t / STAGES of its stage: the parity of the phase its full barrier completes.
    auto phase = [](int t) { return (t / STAGES) & 1; };
    auto wait = [](uint32_t bar, int parity) {
        if constexpr (PERSISTENT) {
            mbar_wait_bounded(bar, parity);
        } else {
            mbar_wait(bar, parity);
        }
    };

    const int tid = threadIdx.x;
    const int warp = tid >> 5;
    const int lane = tid & 31;
    const int wg = warp >> 2;
    const int group = a.group;
    const int hd = a.head_dim;

    // The current work item (item, kv head) and its key range (attention_general.cu's item_range): [lo, hi),
    // masking from mask_from, and below first_max for windows. Every warpgroup walks the same items:
    // PERSIST: item k of this block is launch-order index k * gridDim.x + blockIdx.x (k odd: the mirror
    // position in its round, so that a block's items do not all sit at the heavy end of their rounds),
    // kv-head-major like the non-persistent grid (items, kv heads), heaviest items first within a head.
    int item = 0, kvh = 0, row_base = 0, chunk_rows = 0, lo = 0, hi = 0, mask_from = 0, first_max = 0, n_tiles = 0;
    // CLUSTERED: the cluster's two CTAs take items blockIdx.x and blockIdx.x ^ 1 (TritonAttention pairs adjacent
    // row ranges of one chunk there). When both are of the same chunk with the same first key (causal: always),
    // their first shared_tiles tiles hold the same keys (loaded up to hi_load, the larger end; each CTA masks
    // its own) and each CTA gathers half of them; the tiles past that (the later CTA's last diagonal tile) and
    // every tile of an unshared pair the CTA loads whole, alone.
    int shared_tiles = 0, hi_load = 0;
    const uint32_t rank = IN_CLUSTER ? cluster_rank() : 0;
    const uint32_t peer = rank ^ 1;
    const int col_off = XS ? (int) rank * C::HDL : 0;     // XS: the first head-dim column this CTA holds
    JemmaChunk c{};
    auto load_work = [&](int k) -> bool {
        if constexpr (PERSISTENT) {
            const int g = gridDim.x;
            const int index = k * g + ((k & 1) ? g - 1 - (int) blockIdx.x : (int) blockIdx.x);
            if (index >= a.items * a.kv_heads) {
                return false;
            }
            kvh = index / a.items;
            item = index - kvh * a.items;
        } else {
            if (k > 0) {
                return false;
            }
            item = XS ? blockIdx.x >> 1 : blockIdx.x;     // XS: a cluster (2 CTAs) per item
            kvh = blockIdx.y;
            if (IN_CLUSTER && item >= a.items) {
                return false;                    // the grid's padding to whole clusters
            }
        }
        const int2 w = a.work[item];
        c = jemma_meta_chunk(a.meta, w.x);
        row_base = w.y;
        chunk_rows = c.tokens * group;
        const int t_first = row_base / group;
        const int t_last = (min(row_base + ROWS, chunk_rows) - 1) / group;
        const int p_low = c.tree ? c.start : c.start + t_first;
        lo = a.window > 0 ? max(0, p_low - a.window + 1) : 0;
        if constexpr (TMA_) {
            lo &= ~15;                           // whole boxes: the keys below lo are masked (kv0 < first_max)
        }
        hi = c.start + t_last + 1;
        mask_from = c.tree ? c.start : c.start + t_first + 1;
        first_max = a.window > 0 ? max(0, c.start + t_last - a.window + 1) : 0;
        n_tiles = (hi - lo + N - 1) / N;
        shared_tiles = 0;
        hi_load = hi;
        if constexpr (CLUSTERED && !(FLAGS & SOLO)) {
            const int other = item ^ 1;
            if (other < a.items) {
                const int2 ow = a.work[other];
                if (ow.x == w.x) {
                    const int o_last = (min(ow.y + ROWS, chunk_rows) - 1) / group;
                    const int o_low = c.tree ? c.start : c.start + ow.y / group;
                    const int o_lo = a.window > 0 ? max(0, o_low - a.window + 1) : 0;
                    const int o_hi = c.start + o_last + 1;
                    if (o_lo == lo) {
                        shared_tiles = min(n_tiles, (o_hi - o_lo + N - 1) / N);
                        hi_load = max(hi, o_hi);
                    }
                }
            }
        }
        return true;
    };

    if (tid == 0) {
        for (int s = 0; s < STAGES; s++) {
            // Not clustered: every producer thread, once its copies landed; every consumer warp, once its wgmma
            // finished. Clustered: every producer warp once its copies landed, expecting a quarter of the other
            // CTA's half (complete_tx); every consumer warp of both CTAs (a tile this CTA alone uses: each of its
            // warps twice).
            mbar_init(full_k(s), KD_ ? 3 : TMA_ ? 1 : CLUSTERED ? 4 : 128);   // KD: the three deriving warps
            mbar_init(full_v(s), TMA_ ? 1 : CLUSTERED ? 4 : 128);
            mbar_init(empty_k(s), CLUSTERED ? 16 : 8);
            mbar_init(empty_v(s), CLUSTERED ? 16 : 8);
        }
        if constexpr (XS) {
            for (int i = 0; i < 16; i++) {
                mbar_init(xbars + 8 * i, 1);
            }
        }
    }
    if constexpr (IN_CLUSTER) {
        if (tid == 0) {
            fence_mbar_init_cluster();
        }
        cluster_sync();                          // the other CTA's barriers exist before anything reaches them
    } else {
        __syncthreads();
    }

    if (wg == 0) {
        // Producer.
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(C::PRODUCER_REGS));
        int base = 0;                                    // tiles of the earlier items (ring positions)
        for (int k = 0; load_work(k); k++) {
            const int* table = jemma_meta_table(a.meta, a.sliding, c.table_row);
            const int page_size = jemma_meta_page_size(a.meta);
            const int64_t kv_row = (int64_t) a.kv_heads * hd;
            const __nv_bfloat16* k_head = a.k_cache + (int64_t) kvh * hd;
            const __nv_bfloat16* v_head = a.v_cache + (int64_t) kvh * hd;
            // Round r loads K(r) and V(r - SHIFT) as one copy group: with the overlap the consumers need K(t)
            // and V(t - 1) together (S(t) and P V(t - 1) are issued back to back), without it K(t) and V(t).
            // After issuing round r the producer waits for round r - 1 (one round stays in flight), fences
            // (the tensor cores read through the async proxy) and arrives on its full barriers. EARLY: it
            // waits for round r - 1 and signals it before waiting for round r's buffers instead, so that the
            // consumers never wait for round r's issue (unmeasured on the H200 so far: see NOTES.md).
            // AHEAD: the consumers need K(t + 1) with V(t - 1), so round r loads V(r - 2).
            constexpr int SHIFT = AHEAD_ ? 2 : OVERLAP ? 1 : 0;
            constexpr int KW = N / 4;                    // warp `warp` copies keys warp * KW .. + KW - 1 of a tile
            int slot_k = -1;                             // lane l < KW: the slot of key warp * KW + l of K(r)
            int slot_v = -1;                             // ... of V(r - SHIFT)
            int slot_k2 = -1;                            // SHIFT 2: K(r - 2)'s, once K(r - 1)'s
            auto gather = [&](uint32_t dst, const __nv_bfloat16* head, int slots) {
                #pragma unroll 2
                for (int i = 0; i < KW; i++) {
                    const int key = warp * KW + i;
                    const int slot = __shfl_sync(0xffffffffu, slots, i);
                    #pragma unroll
                    for (int ch = lane; ch < C::HDL / 8; ch += 32) {
                        const bool ok = slot >= 0 && col_off + ch * 8 < hd;
                        const int64_t off = ok ? (int64_t) slot * kv_row + col_off + ch * 8 : 0;
                        const uint32_t at = (ch >> 3) * (N * 128) + key * 128 + (((ch & 7) ^ (key & 7)) << 4);
                        cp_async16(dst + at, head + off, ok ? 16 : 0);
                    }
                }
            };
            auto signal = [&](int r) {                   // round r's copies landed
                fence_proxy_async();
                if (r < n_tiles) {
                    mbar_arrive(full_k((base + r) % STAGES));
                }
                if (r - SHIFT >= 0) {
                    mbar_arrive(full_v((base + r - SHIFT) % STAGES));
                }
            };
            // TMA: the rows of tile t's boxes, box b's the slot of its first key (16 keys of one page); a box wholly
            // past the range or without a page reads out of bounds (zeros).
            constexpr int BOXES = N / 16;
            auto rows_of = [&](int t, int (&rows)[BOXES]) {
                #pragma unroll
                for (int b = 0; b < BOXES; b++) {
                    const int kb = lo + t * N + 16 * b;
                    const int64_t slot = kb < hi ? jemma_meta_slot(table, page_size, kb) : -1;
                    rows[b] = slot >= 0 ? (int) slot : -16;
                }
            };
            if constexpr (KD_) {
                // K from V (see KD). Thread 0 issues V(r) and the other half's rotating block of the same keys, one
                // round a tile, as soon as the V stage is free (block-table reads a round ahead, as below); warps 1
                // to 3 derive K(t)'s block from both once they landed and K(t)'s stage is free, and arrive on its
                // full barrier. The rotating block of this CTA's half is its first (columns col_off ..); the other
                // half's is at col_off ^ HD / 2.
                if (tid == 0) {
                    int rows_next[BOXES];
                    int rows[BOXES];
                    rows_of(0, rows_next);
                    for (int r = 0; r < n_tiles; r++) {
                        #pragma unroll
                        for (int b = 0; b < BOXES; b++) {
                            rows[b] = rows_next[b];
                        }
                        if (r + 1 < n_tiles) {
                            rows_of(r + 1, rows_next);
                        }
                        const int stage = (base + r) % STAGES;
                        if (base + r >= STAGES) {
                            wait(empty_v(stage), phase(base + r) ^ 1);
                        }
                        const uint32_t bar = full_v(stage);
                        mbar_arrive_expect(bar, C::TILE_BYTES + C::PEER_BYTES);
                        const uint32_t v_tile = jemma_smem_addr(s_v + stage * C::TILE_BYTES);
                        const uint32_t p_tile = jemma_smem_addr(s_peer + stage * C::PEER_BYTES);
                        #pragma unroll
                        for (int b = 0; b < BOXES; b++) {
                            tma_load_4d(v_tile + b * 8192, a.tm_v, 0, 0, (kvh * hd + col_off) / 64, rows[b] / 8, bar);
                            tma_load_4d(p_tile + b * 2048, a.tm_k, 0, 0, (kvh * hd + (col_off ^ C::HDL)) / 64,
                                        rows[b] / 8, bar);
                        }
                    }
                } else if (warp >= 1) {
                    // Thread dt of the 96 takes the column pair (2 cp, 2 cp + 1) of the block, cp = dt % 32, for the
                    // keys 16 (dt / 32) .. + 15 of each tile, with its two columns' weights and frequencies held in
                    // registers (the producer has 40): a warp reads and writes one 128-byte row a key, at the same
                    // swizzled place in the V stage's first block, the other half's block and K's block (the
                    // layouts of TMA, one block wide for the last two). Per pair, as jemma_key_from_value: with a =
                    // the first half's column and b the second's, k_a = a w_a cos - b w_b sin, k_b = b w_b cos +
                    // a w_a sin; this CTA computes its half's. A key's RoPE position is its sequence position,
                    // except for this step's tree tokens (stored at start + index, rotated at start + depth:
                    // attention_general.cu).
                    const int dt = tid - 32;
                    const int col = 2 * (dt & 31);
                    const int key0 = 16 * (dt >> 5);
                    const int other_off = col_off ^ (HD / 2);
                    const float w_own[2] = {__ldg(a.k_w + col_off + col), __ldg(a.k_w + col_off + col + 1)};
                    const float w_other[2] = {__ldg(a.k_w + other_off + col), __ldg(a.k_w + other_off + col + 1)};
                    const float freq[2] = {__ldg(a.inv_freq + col), __ldg(a.inv_freq + col + 1)};
                    const float sign = rank == 0 ? -1.0f : 1.0f;     // the other half's term: - b sin, or + a sin
                    for (int t = 0; t < n_tiles; t++) {
                        const int stage = (base + t) % STAGES;
                        wait(full_v(stage), phase(base + t));
                        if (base + t >= STAGES) {
                            wait(empty_k(stage), phase(base + t) ^ 1);
                        }
                        const unsigned char* vt = s_v + stage * C::TILE_BYTES;
                        const unsigned char* pt = s_peer + stage * C::PEER_BYTES;
                        unsigned char* kt = s_k + stage * C::K_TILE_BYTES;
                        #pragma unroll 2
                        for (int key = key0; key < min(key0 + 16, N); key++) {
                            const uint32_t at = (key & 7) * 128 + (((col >> 3) ^ (key & 7)) << 4) + (col & 7) * 2;
                            const float2 own = __bfloat1622float2(
                                    *reinterpret_cast<const __nv_bfloat162*>(vt + (key >> 3) * 4096 + at));
                            const float2 other = __bfloat1622float2(
                                    *reinterpret_cast<const __nv_bfloat162*>(pt + (key >> 3) * 1024 + at));
                            const int kv = lo + t * N + key;
                            const float pos = (float) (c.tree && kv >= c.start
                                    ? jemma_meta_position(a.meta, c.first_row + min(kv - c.start, c.tokens - 1)) : kv);
                            float k[2] = {own.x * w_own[0], own.y * w_own[1]};
                            const float o[2] = {other.x * w_other[0], other.y * w_other[1]};
                            #pragma unroll
                            for (int e = 0; e < 2; e++) {
                                if (freq[e] != 0.0f) {
                                    float sn, cs;
                                    jemma_rope_sincos(freq[e], pos, &sn, &cs);
                                    k[e] = fmaf(sign * o[e], sn, k[e] * cs);
                                }
                            }
                            *reinterpret_cast<uint32_t*>(kt + (key >> 3) * 1024 + at) = jemma_bf16x2_pack(k[0], k[1]);
                        }
                        fence_proxy_async();               // the generic stores, before the tensor cores read them
                        __syncwarp();
                        if (lane == 0) {
                            mbar_arrive(full_k(stage));
                        }
                    }
                }
            } else if constexpr (TMA_) {
                // One thread issues every box; the others of the warpgroup have nothing to do (see TMA). Round r
                // as the default producer's: K(r), then V(r - SHIFT), each as soon as its stage is free (rows_of: the
                // boxes' rows). The block-table reads run a round ahead:
                // tile r + 1's are in flight while round r waits for its stages, so a producer that is behind never
                // waits for a table read (reading them at issue time, after the wait, cost 435 -> 329 TFLOP/s at
                // head dim 256: NOTES.md version 5).
                if (tid == 0) {
                    // Box b: keys 16 b .. + 15 of the tile, the CTA's 4 column blocks, at [octets 2 b, 2 b + 1] of
                    // the stage; map coordinates (column, key in octet, column block, octet).
                    auto issue = [&](const JemmaTensorMap* map, uint32_t tile, uint32_t bar, const int (&rows)[BOXES]) {
                        mbar_arrive_expect(bar, C::TILE_BYTES);
                        #pragma unroll
                        for (int b = 0; b < BOXES; b++) {
                            tma_load_4d(tile + b * 8192, map, 0, 0, (kvh * hd + col_off) / 64, rows[b] / 8, bar);
                        }
                    };
                    static_assert(SHIFT >= 1, "TMA kernels overlap S(t) with P V(t - 1)");
                    int rows_next[BOXES];                 // K(r + 1)'s, read during round r
                    int rows_k[BOXES];                    // K(r)'s
                    int rows_v[BOXES];                    // V(r - SHIFT)'s
                    int rows_v2[BOXES];                   // SHIFT 2: V(r - 1)'s, a round before they are issued
                    rows_of(0, rows_next);
                    for (int r = 0; r < n_tiles + SHIFT; r++) {
                        const int tv = r - SHIFT;
                        #pragma unroll
                        for (int b = 0; b < BOXES; b++) {
                            if (SHIFT == 2) {
                                rows_v[b] = rows_v2[b];
                                rows_v2[b] = rows_k[b];
                            } else {
                                rows_v[b] = rows_k[b];
                            }
                            rows_k[b] = rows_next[b];
                        }
                        if (r + 1 < n_tiles) {
                            rows_of(r + 1, rows_next);
                        }
                        if (r < n_tiles) {
                            if (base + r >= STAGES) {
                                wait(empty_k((base + r) % STAGES), phase(base + r) ^ 1);
                            }
                            issue(a.tm_k, jemma_smem_addr(s_k + ((base + r) % STAGES) * C::TILE_BYTES),
                                  full_k((base + r) % STAGES), rows_k);
                        }
                        if (tv >= 0) {
                            if (base + tv >= STAGES) {
                                wait(empty_v((base + tv) % STAGES), phase(base + tv) ^ 1);
                            }
                            issue(a.tm_v, jemma_smem_addr(s_v + ((base + tv) % STAGES) * C::TILE_BYTES),
                                  full_v((base + tv) % STAGES), rows_v);
                        }
                    }
                }
            } else if constexpr (CLUSTERED) {
                // As the default producer below, but a shared tile gets only this CTA's half of the head dim's
                // column blocks (rank r: blocks r * HD / 128 .. + HD / 128 - 1), and once a warp's copies of a
                // round have landed (each lane waited and fenced), its lane 0 arrives on the full barrier
                // expecting a quarter of the other CTA's half and bulk-copies the warp's keys of this CTA's
                // column blocks (KW rows of 128 bytes a block) into the other CTA's stage, completing there.
                constexpr int HALF = C::TILE_BYTES / 2;
                static_assert((KW * (HD / 16)) % 32 == 0, "whole warp rounds of the gather");
                auto copy = [&](uint32_t dst, const __nv_bfloat16* head, int slots, int i, int ch) {
                    const int key = warp * KW + i;
                    const int slot = __shfl_sync(0xffffffffu, slots, i);
                    const bool ok = slot >= 0 && ch * 8 < hd;
                    const int64_t off = ok ? (int64_t) slot * kv_row + ch * 8 : 0;
                    const uint32_t at = (ch >> 3) * (N * 128) + key * 128 + (((ch & 7) ^ (key & 7)) << 4);
                    cp_async16(dst + at, head + off, ok ? 16 : 0);
                };
                auto gather_part = [&](uint32_t dst, const __nv_bfloat16* head, int slots, bool half) {
                    if (half) {
                        constexpr int CN = HD / 16;
                        const int c0 = (int) rank * CN;
                        #pragma unroll 4
                        for (int idx = lane; idx < KW * CN; idx += 32) {
                            copy(dst, head, slots, idx / CN, c0 + idx % CN);
                        }
                    } else {
                        constexpr int CN = HD / 8;
                        #pragma unroll 4
                        for (int idx = lane; idx < KW * CN; idx += 32) {
                            copy(dst, head, slots, idx / CN, idx % CN);
                        }
                    }
                };
                auto send = [&](uint32_t full, uint32_t tile, bool shared) {
                    if (shared) {
                        mbar_arrive_expect(full, HALF / 4);
                        const uint32_t peer_full = map_to(full, peer);
                        #pragma unroll
                        for (int cb = 0; cb < HD / 128; cb++) {
                            const uint32_t src = tile + rank * HALF + cb * (N * 128) + warp * (KW * 128);
                            bulk_copy_to_peer(map_to(src, peer), src, KW * 128, peer_full);
                        }
                    } else {
                        mbar_arrive(full);
                    }
                };
                auto signal_c = [&](int r) {
                    fence_proxy_async();
                    __syncwarp();
                    if (lane == 0) {
                        if (r < n_tiles) {
                            send(full_k(r % STAGES), jemma_smem_addr(s_k + (r % STAGES) * C::TILE_BYTES), r < shared_tiles);
                        }
                        if (r - SHIFT >= 0) {
                            const int tv = r - SHIFT;
                            send(full_v(tv % STAGES), jemma_smem_addr(s_v + (tv % STAGES) * C::TILE_BYTES), tv < shared_tiles);
                        }
                    }
                };
                for (int r = 0; r < n_tiles + SHIFT; r++) {
                    const int tv = r - SHIFT;
                    const int kv_lane = lo + r * N + warp * KW + lane;
                    const int prev_k = slot_k;
                    slot_k = -1;
                    if (lane < KW && r < n_tiles && kv_lane < hi_load) {
                        slot_k = (int) jemma_meta_slot(table, page_size, kv_lane);
                    }
                    slot_v = SHIFT ? prev_k : slot_k;
                    if (r < n_tiles) {
                        if (r >= STAGES) {
                            wait(empty_k(r % STAGES), phase(r) ^ 1);
                        }
                        gather_part(jemma_smem_addr(s_k + (r % STAGES) * C::TILE_BYTES), k_head, slot_k, r < shared_tiles);
                    }
                    if (tv >= 0) {
                        if (tv >= STAGES) {
                            wait(empty_v(tv % STAGES), phase(tv) ^ 1);
                        }
                        gather_part(jemma_smem_addr(s_v + (tv % STAGES) * C::TILE_BYTES), v_head, slot_v, tv < shared_tiles);
                    }
                    cp_async_commit();
                    if (r >= 1) {
                        cp_async_wait_one();
                        signal_c(r - 1);
                    }
                }
                cp_async_wait_all();
                signal_c(n_tiles + SHIFT - 1);
            } else if constexpr (ASYNC_ARRIVE) {
                // Each thread's copies of a tile arrive on the tile's full barrier (count 128) when they land;
                // the consumers fence the proxies. Round r's table entries are read during round r - 1.
                auto slots_of = [&](int r) {
                    const int kv_lane = lo + r * N + warp * KW + lane;
                    return lane < KW && r < n_tiles && kv_lane < hi ? (int) jemma_meta_slot(table, page_size, kv_lane) : -1;
                };
                int k_slots = slots_of(0);                    // K(r)'s
                int v_slots = -1;                             // V(r - SHIFT)'s
                for (int r = 0; r < n_tiles + SHIFT; r++) {
                    const int tv = r - SHIFT;
                    if (!SHIFT) {
                        v_slots = k_slots;
                    }
                    if (r < n_tiles) {
                        if (base + r >= STAGES) {
                            wait(empty_k((base + r) % STAGES), phase(base + r) ^ 1);
                        }
                        gather(jemma_smem_addr(s_k + ((base + r) % STAGES) * C::TILE_BYTES), k_head, k_slots);
                        cp_async_arrive(full_k((base + r) % STAGES));
                    }
                    const int next = slots_of(r + 1);         // in flight while V(r - SHIFT) is issued
                    if (tv >= 0) {
                        if (base + tv >= STAGES) {
                            wait(empty_v((base + tv) % STAGES), phase(base + tv) ^ 1);
                        }
                        gather(jemma_smem_addr(s_v + ((base + tv) % STAGES) * C::TILE_BYTES), v_head, v_slots);
                        cp_async_arrive(full_v((base + tv) % STAGES));
                    }
                    if (SHIFT) {
                        v_slots = k_slots;
                    }
                    k_slots = next;
                }
            } else {
                for (int r = 0; r < n_tiles + SHIFT; r++) {
                    const int tv = r - SHIFT;
                    const int kv_lane = lo + r * N + warp * KW + lane;
                    const int prev_k = slot_k;
                    slot_k = -1;
                    if (lane < KW && r < n_tiles && kv_lane < hi) {
                        slot_k = (int) jemma_meta_slot(table, page_size, kv_lane);
                    }
                    slot_v = SHIFT == 2 ? slot_k2 : SHIFT ? prev_k : slot_k;
                    slot_k2 = prev_k;
                    if constexpr (EARLY) {
                        if (r >= 1) {
                            cp_async_wait_all();             // round r - 1, the only one in flight
                            signal(r - 1);
                        }
                    }
                    if (r < n_tiles) {
                        if (base + r >= STAGES) {
                            wait(empty_k((base + r) % STAGES), phase(base + r) ^ 1);
                        }
                        gather(jemma_smem_addr(s_k + ((base + r) % STAGES) * C::TILE_BYTES), k_head, slot_k);
                    }
                    if (tv >= 0) {
                        if (base + tv >= STAGES) {
                            wait(empty_v((base + tv) % STAGES), phase(base + tv) ^ 1);
                        }
                        gather(jemma_smem_addr(s_v + ((base + tv) % STAGES) * C::TILE_BYTES), v_head, slot_v);
                    }
                    cp_async_commit();
                    if constexpr (!EARLY) {
                        if (r >= 1) {
                            cp_async_wait_one();
                            signal(r - 1);
                        }
                    }
                }
                cp_async_wait_all();
                signal(n_tiles + SHIFT - 1);
            }
            base += n_tiles;
        }
        cp_async_wait_all();                             // no copy outlives its thread
        if constexpr (IN_CLUSTER) {
            cluster_sync();                              // neither CTA leaves while the other may still reach it
        }
        return;
    }

    // Consumers.
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(C::CONSUMER_REGS));
    const int cw = wg - 1;                 // consumer warpgroup
    const int row0 = CSPLIT == 1 ? cw * 64 : 0;     // its rows row0 .. + 63
    const int col0 = CSPLIT == 1 ? 0 : cw * DW;     // its head-dim range (S terms, O columns)
    const int ctid = tid - 128 * wg;
    const int wq = warp & 3;               // warp in the warpgroup: rows row0 + wq * 16 .. + 15
    const int g = lane >> 2;
    const int tq = lane & 3;

    int base = 0;                                        // tiles of the earlier items (ring positions)
    for (int k = 0; load_work(k); k++) {
        // Q rows x columns of this warpgroup (fp32 -> bf16) into shared memory (128-byte swizzle), zeros past
        // the chunk's rows and past head_dim, 16 loads of the thread issued before the first store.
        auto q_src = [&](int r, int d) -> const float* {     // Q element (row r of the block, column d), or null
            const int f = row_base + r;
            if (f >= chunk_rows || col_off + d >= hd) {
                return nullptr;
            }
            const int token = f / group;
            const int head = kvh * group + f % group;
            return a.q + (int64_t) (c.first_row + token) * a.qs + (int64_t) head * hd + col_off + d;
        };
        const bool q_vec = ((reinterpret_cast<uintptr_t>(a.q) & 15) == 0) && (a.qs & 3) == 0 && (hd & 3) == 0;
        if constexpr ((FLAGS & BQ) != 0) {
            // bf16 Q: 8 columns (16 bytes) a copy straight into the swizzled tile, no conversion; 64 rows x DW / 8
            // chunks over the warpgroup's 128 threads, all in flight at once.
            const __nv_bfloat16* qb = reinterpret_cast<const __nv_bfloat16*>(a.q);
            #pragma unroll 4
            for (int idx = ctid; idx < 64 * (DW / 8); idx += 128) {
                const int r = row0 + idx / (DW / 8);
                const int d = col0 + (idx % (DW / 8)) * 8;
                const int f = row_base + r;
                const bool ok = f < chunk_rows && col_off + d < hd;
                const __nv_bfloat16* src = qb;
                if (ok) {
                    const int token = f / group;
                    const int head = kvh * group + f % group;
                    src = qb + (int64_t) (c.first_row + token) * a.qs + (int64_t) head * hd + col_off + d;
                }
                const int ch = d >> 3;
                const uint32_t at = (ch >> 3) * (ROWS * 128) + r * 128 + (((ch & 7) ^ (r & 7)) << 4);
                cp_async16(jemma_smem_addr(s_q) + at, src, ok ? 16 : 0);
            }
            cp_async_commit();
        } else {
        auto store = [&](int r, int d, float4 x) {
            if constexpr (KD_) {
                if (d >= 64) {                  // K = V * k_w outside the rotating block: Q takes k_w (see KD)
                    const float4 w = __ldg(reinterpret_cast<const float4*>(a.k_w + col_off + d));
                    x = make_float4(x.x * w.x, x.y * w.y, x.z * w.z, x.w * w.w);
                }
            }
            const int ch = d >> 3;
            const uint32_t at = (ch >> 3) * (ROWS * 128) + r * 128 + (((ch & 7) ^ (r & 7)) << 4) + (d & 7) * 2;
            *reinterpret_cast<uint2*>(s_q + at) = make_uint2(jemma_pack_bf16(x.x, x.y), jemma_pack_bf16(x.z, x.w));
        };
        constexpr int PER = 64 * (DW / 4) / 128;           // float4 groups a thread
        if (q_vec && !(FLAGS & QSLOW)) {
            constexpr int BATCH = 16;                       // loads in flight a thread (registers: 64 + addresses)
            #pragma unroll 1
            for (int i0 = 0; i0 < PER; i0 += BATCH) {
                float4 x[BATCH];
                #pragma unroll
                for (int i = 0; i < BATCH; i++) {
                    const int idx = ctid + 128 * (i0 + i);
                    const float* src = q_src(row0 + idx / (DW / 4), col0 + (idx % (DW / 4)) * 4);
                    x[i] = src != nullptr ? *reinterpret_cast<const float4*>(src) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                }
                #pragma unroll
                for (int i = 0; i < BATCH; i++) {
                    const int idx = ctid + 128 * (i0 + i);
                    store(row0 + idx / (DW / 4), col0 + (idx % (DW / 4)) * 4, x[i]);
                }
            }
        } else {
            for (int idx = ctid; idx < 64 * (DW / 4); idx += 128) {
                const int r = row0 + idx / (DW / 4);
                const int d = col0 + (idx % (DW / 4)) * 4;
                const float* src = q_src(r, d);
                float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                if (src != nullptr) {
                    if (q_vec) {
                        x = *reinterpret_cast<const float4*>(src);
                    } else {
                        x.x = src[0];
                        x.y = col_off + d + 1 < hd ? src[1] : 0.0f;
                        x.z = col_off + d + 2 < hd ? src[2] : 0.0f;
                        x.w = col_off + d + 3 < hd ? src[3] : 0.0f;
                    }
                }
                store(r, d, x);
            }
        }
        }   // fp32 Q
        if constexpr ((FLAGS & BQ) == 0) {
            fence_proxy_async();
            named_barrier(1 + cw, 128);
        }

        // The visibility of this thread's two rows (g, g + 8 of its warp's 16), read when a tile needs masking (a few
        // tiles an item: the diagonal, a window's start) instead of held through the loop: 8 registers fewer, which
        // at head dim 512 (O 128 + two S of 24 + P 12 a thread) removed a spill from the loop (NOTES.md version 6).
        struct RowView {
            int first, hi;          // the row's first visible key (window) and its causal end
            uint64_t mask;          // tree chunks: the row's ancestors among the chunk's tokens
        };
        auto row_view = [&](int h) {
            const int f = min(row_base + row0 + wq * 16 + g + 8 * h, chunk_rows - 1);   // padding rows copy a real one
            const int token = f / group;
            const int position = jemma_meta_position(a.meta, c.first_row + token);
            return RowView{a.window > 0 ? max(0, position - a.window + 1) : 0, c.start + token + 1,
                           c.tree ? jemma_meta_mask(a.meta, c.first_row + token) : 0};
        };

        if constexpr ((FLAGS & BQ) != 0) {
            cp_async_wait_all();                // this thread's Q copies landed (the visibility loads overlapped them)
            fence_proxy_async();
            named_barrier(1 + cw, 128);
        }

        // Descriptors at this warpgroup's rows and first column block; addresses advance in 16-byte units.
        const uint64_t q_desc = descriptor(jemma_smem_addr(s_q) + (col0 / 64) * (ROWS * 128) + row0 * 128, 16, 1024);
        // A stage's layout: the gather's [HDL / 64 column blocks][N keys][64]; TMA's [N / 8 key octets][4 column
        // blocks][8 keys][64] (see TMA). Column block cb of key octet g starts at cb * BLOCK + g * OCTET.
        constexpr uint32_t BLOCK = TMA_ ? 1024 : N * 128;
        constexpr uint32_t OCTET = TMA_ ? 4096 : 1024;
        const uint64_t k_desc = descriptor(jemma_smem_addr(s_k) + (col0 / 64) * BLOCK, 16, KD_ ? 1024 : OCTET);
        const uint64_t vk_desc = descriptor(jemma_smem_addr(s_v), 16, OCTET);      // KD: V's blocks as S's K
        const uint64_t v_desc = descriptor(jemma_smem_addr(s_v) + (col0 / 64) * BLOCK, BLOCK, OCTET);

        float o[DW / 2];
        #pragma unroll
        for (int i = 0; i < DW / 2; i++) {
            o[i] = 0.0f;
        }
        float m_run[2] = {-INFINITY, -INFINITY};
        float l_run[2] = {0.0f, 0.0f};

        float s[N / 2];                         // S(t), then P(t) in fp32
        uint32_t pa[N / 16][4];                 // P(t) as bf16 A fragments of P V
        float alpha[2];                         // the rescale of O that S(t) brought

        // S(t) = Q K(t)^T into d: 64 rows x N keys, DW / 16 k steps over this warpgroup's head-dim range (d: s, or
        // AHEAD's second array, S(t + 1) while the softmax works on S(t)).
        auto issue_s_into = [&](int t, float (&d)[N / 2]) {
            const int stage = (base + t) % STAGES;
            if constexpr (PERSISTENT) {
                mbar_wait_bounded(full_k(stage), phase(base + t));
                fence_proxy_async();              // the producer's copies landed in the generic proxy
            } else if constexpr (ASYNC_ARRIVE) {
                mbar_wait_fenced(full_k(stage), phase(base + t));   // the producer's copies landed in the generic proxy
            } else {
                mbar_wait(full_k(stage), phase(base + t));
                if constexpr (KD_) {
                    mbar_wait(full_v(stage), phase(base + t));     // S reads three blocks from the V stage
                }
            }
            #pragma unroll
            for (int ks = 0; ks < DW / 16; ks++) {
                const uint32_t qa = (ks >> 2) * (ROWS * 128) + (ks & 3) * 32;
                if (KD_ && ks >= 4) {
                    // K = V * k_w here (Q took k_w): the V stage's block ks / 4 as S's K-major operand.
                    const uint32_t va = stage * C::TILE_BYTES + (ks >> 2) * BLOCK + (ks & 3) * 32;
                    wgmma_ss(d, q_desc + (qa >> 4), vk_desc + (va >> 4), 1);
                } else {
                    // KD: the derived block, one 64-column block of N keys (key octets 1 KB apart).
                    const uint32_t ka = stage * C::K_TILE_BYTES + (ks >> 2) * BLOCK + (ks & 3) * 32;
                    wgmma_ss(d, q_desc + (qa >> 4), k_desc + (ka >> 4), ks > 0 ? 1 : 0);
                }
            }
            wgmma_commit();
        };
        auto issue_s = [&](int t) { issue_s_into(t, s); };
        // O += P(t) V(t): N / 16 k steps of 16 keys (two key octets of V).
        auto issue_pv = [&](int t) {
            const int stage = (base + t) % STAGES;
            if constexpr (PERSISTENT) {
                mbar_wait_bounded(full_v(stage), phase(base + t));
                fence_proxy_async();
            } else if constexpr (ASYNC_ARRIVE) {
                mbar_wait_fenced(full_v(stage), phase(base + t));   // the producer's copies landed in the generic proxy
            } else {
                mbar_wait(full_v(stage), phase(base + t));
            }
            #pragma unroll
            for (int kk = 0; kk < N / 16; kk++) {
                const uint32_t va = stage * C::TILE_BYTES + kk * 2 * OCTET;
                wgmma_m64n256_rs(o, pa[kk], v_desc + (va >> 4), 1);
            }
            wgmma_commit();
        };
        // Tile t's stage (barrier bar) is free here. CLUSTERED: a shared tile is free in both CTAs only once
        // both have used it (both producers write into both CTAs' stages), so the warp arrives on both CTAs'
        // barriers; a tile of this CTA alone counts twice here.
        auto release = [&](uint32_t bar, int t) {
            __syncwarp();
            if (lane == 0) {
                if constexpr (CLUSTERED) {
                    if (t < shared_tiles) {
                        mbar_arrive(bar);
                        mbar_arrive_remote(map_to(bar, peer));
                    } else {
                        mbar_arrive_count(bar, 2);
                    }
                } else {
                    mbar_arrive(bar);
                }
            }
        };
        // XS: the exchange of S(t)'s partial scores with the other CTA's warp of the same rows. Buffer and barrier
        // [parity of t][warpgroup][warp] (XONE: [warpgroup][warp], and barriers 8 + that: `free`, which the other
        // CTA's warp arrives on once it has read what this warp stored into its buffer).
        auto x_index = [&](int t) { return XONE_ ? cw * 4 + wq : ((t & 1) * 2 + cw) * 4 + wq; };
        auto x_send = [&](int t, const float (&p)[N / 2]) {
            const int xi = x_index(t);
            const uint32_t xb = xbars + 8 * xi;
            if constexpr (XONE_) {
                if (t > 0) {
                    mbar_wait_cluster(xbars + 8 * (8 + xi), (t - 1) & 1);   // the other warp read tile t - 1's
                }
            }
            if (lane == 0) {
                mbar_arrive_expect(xb, 32 * (N / 8) * 16);
            }
            const uint32_t to = map_to(jemma_smem_addr(s_x + xi * (N / 8) * 32 + lane), peer);
            const uint32_t to_bar = map_to(xb, peer);
            #pragma unroll
            for (int i = 0; i < N / 8; i++) {
                st_async4(to + i * 32 * 16, make_float4(p[4 * i], p[4 * i + 1], p[4 * i + 2], p[4 * i + 3]), to_bar);
            }
        };
        auto x_recv = [&](int t) {
            const int xi = x_index(t);
            const float4* mine = s_x + xi * (N / 8) * 32;
            // CTA scope, as CUTLASS's consumers wait for a multicast TMA's bytes: the other CTA's st.async writes land
            // in this CTA's shared memory before their complete_tx (which releases at cluster scope) can complete the
            // phase. The cluster-scope acquire invalidated L1 on every wait (CCTL.IVALL); at CTA scope the split
            // kernels run 383 -> 398 TFLOP/s (NOTES.md version 6).
            mbar_wait(xbars + 8 * xi, XONE_ ? t & 1 : (t >> 1) & 1);
            #pragma unroll
            for (int i = 0; i < N / 8; i++) {
                const float4 x = mine[i * 32 + lane];
                s[4 * i] += x.x;
                s[4 * i + 1] += x.y;
                s[4 * i + 2] += x.z;
                s[4 * i + 3] += x.w;
            }
            if constexpr (XONE_) {
                __syncwarp();
                if (lane == 0) {
                    mbar_arrive_remote_release(map_to(xbars + 8 * (8 + xi), peer));
                }
            }
        };
        // Partial-score exchange (split head dim), scale, mask, online softmax of S(t): P(t) in s, alpha.
        auto softmax = [&](int t) {
            if constexpr (CSPLIT > 1) {
                // Sum the partial scores of the two warpgroups: [parity][warpgroup][warp][float4][lane].
                float4* mine = s_x + ((((base + t) & 1) * CSPLIT + cw) * 4 + wq) * (N / 8) * 32;
                const float4* other = s_x + ((((base + t) & 1) * CSPLIT + (1 - cw)) * 4 + wq) * (N / 8) * 32;
                #pragma unroll
                for (int i = 0; i < N / 8; i++) {
                    mine[i * 32 + lane] = make_float4(s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]);
                }
                named_barrier(3, 256);
                #pragma unroll
                for (int i = 0; i < N / 8; i++) {
                    const float4 x = other[i * 32 + lane];
                    s[4 * i] += x.x;
                    s[4 * i + 1] += x.y;
                    s[4 * i + 2] += x.z;
                    s[4 * i + 3] += x.w;
                }
            } else if constexpr (XS) {
                // The other CTA's warp of the same rows holds the other half's partial scores: each sends its
                // own into the other's buffer (parity of t: the other CTA writes tile t + 2 there only after this
                // warp's partial of t + 1 reached it, so after this warp read tile t's; XONE: one buffer, see
                // x_send), then both add. AHEAD: sent an iteration earlier (x_send in the loop below).
                if constexpr (!AHEAD_) {
                    x_send(t, s);
                }
                x_recv(t);
            }
            // s[4 j + e]: row g + 8 (e >> 1), key 8 j + 2 tq + (e & 1).
            const int kv0 = lo + t * N;
            const bool need_mask = kv0 + N > mask_from || kv0 < first_max;
            // Maxima on the raw scores (scale_log2 > 0); p = 2^(s * scale_log2 - base) in one FFMA.
            if (need_mask) {
                const RowView view[2] = {row_view(0), row_view(1)};
                #pragma unroll
                for (int i = 0; i < N / 2; i++) {
                    const int h = (i >> 1) & 1;
                    const int kv = kv0 + (i >> 2) * 8 + 2 * tq + (i & 1);
                    if (!jemma_key_visible(a.meta, c, a.window, kv, view[h].first, view[h].hi, view[h].mask)) {
                        s[i] = -INFINITY;
                    }
                }
            }
            float mx[2] = {-INFINITY, -INFINITY};
            #pragma unroll
            for (int i = 0; i < N / 2; i++) {
                mx[(i >> 1) & 1] = fmaxf(mx[(i >> 1) & 1], s[i]);
            }
            float base[2];
            #pragma unroll
            for (int h = 0; h < 2; h++) {
                mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
                mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
                const float m_new = fmaxf(m_run[h], mx[h] * a.scale_log2);
                base[h] = m_new == -INFINITY ? 0.0f : m_new;
                alpha[h] = ex2(m_run[h] - base[h]);
                m_run[h] = m_new;
            }
            float sum[2] = {0.0f, 0.0f};
            #pragma unroll
            for (int i = 0; i < N / 2; i++) {
                const int h = (i >> 1) & 1;
                const float p = ex2(fmaf(s[i], a.scale_log2, -base[h]));
                s[i] = p;
                sum[h] += p;
            }
            #pragma unroll
            for (int h = 0; h < 2; h++) {
                l_run[h] = l_run[h] * alpha[h] + sum[h];
            }
        };
        // O *= alpha (once P V of the previous tile is done); P(t) as bf16 A fragments, k16 step kk: keys
        // 16 kk .. + 15 = S n8 tiles 2 kk and 2 kk + 1.
        auto rescale_and_pack = [&]() {
            // Skipped when no row of the warp got a new maximum (alpha 1, common once the first tiles are
            // in): the branch is warp-uniform.
            if (__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f)) {
                #pragma unroll
                for (int i = 0; i < DW / 2; i++) {
                    o[i] *= alpha[(i >> 1) & 1];
                }
            }
            #pragma unroll
            for (int kk = 0; kk < N / 16; kk++) {
                pa[kk][0] = jemma_pack_bf16(s[8 * kk + 0], s[8 * kk + 1]);
                pa[kk][1] = jemma_pack_bf16(s[8 * kk + 2], s[8 * kk + 3]);
                pa[kk][2] = jemma_pack_bf16(s[8 * kk + 4], s[8 * kk + 5]);
                pa[kk][3] = jemma_pack_bf16(s[8 * kk + 6], s[8 * kk + 7]);
            }
        };

        // TMA: the box holding the range end brings the slots past it from its page, which may hold anything (a
        // released page's old contents); their weights are zero, but 0 x NaN is not, so each consumer warpgroup zeroes
        // those V rows before the last P V (the other writes the same zeros; K's rows there are masked to -inf).
        auto clear_tail_values = [&]() {
            if constexpr (TMA_) {
                const int kv0 = lo + (n_tiles - 1) * N;
                const int r0 = hi - kv0;                            // the first row past the range
                const int r1 = min(N, ((hi + 15) & ~15) - kv0);     // the end of its box
                if (r0 < r1) {
                    const int stage = (base + n_tiles - 1) % STAGES;
                    mbar_wait(full_v(stage), phase(base + n_tiles - 1));
                    unsigned char* tile = s_v + stage * C::TILE_BYTES;
                    const int per_block = (r1 - r0) * 8;            // 16-byte chunks a 64-column block
                    for (int idx = ctid; idx < per_block * (C::HDL / 64); idx += 128) {
                        const int cb = idx / per_block;
                        const int rem = idx - cb * per_block;
                        const int row = r0 + rem / 8;
                        *reinterpret_cast<uint4*>(tile + cb * BLOCK + (row / 8) * OCTET + (row % 8) * 128 + (rem % 8) * 16) =
                                make_uint4(0u, 0u, 0u, 0u);
                    }
                    fence_proxy_async();                            // before the tensor cores read them
                    named_barrier(1 + cw, 128);
                }
            }
        };

        // Ping-pong: the two warpgroups take turns issuing their GEMMs (named barriers 4 and 5), so that one
        // warpgroup's softmax runs while the other's GEMMs keep the tensor cores busy.
        auto turn_wait = [&]() {
            if constexpr (PINGPONG) {
                named_barrier(4 + cw, 256);
            }
        };
        auto turn_pass = [&]() {
            if constexpr (PINGPONG) {
                named_arrive(4 + (1 - cw), 256);
            }
        };
        if constexpr (PINGPONG) {
            if (cw == 1) {
                named_arrive(4, 256);              // warpgroup 0 goes first
            }
        }

        if constexpr (AHEAD_) {
            // Iteration t issues S(t + 1) and P V(t - 1) back to back, runs the softmax of S(t) (its partial scores
            // sent an iteration ago), then sends S(t + 1)'s partials once that is done (see AHEAD). The first and
            // last iterations are peeled so that every wgmma group the loop waits for is issued unconditionally
            // (ptxas serializes the wgmma when a conditional issue leaves a wait's group unknown: C7514).
            float s2[N / 2];
            auto next_done = [&](int t) {        // S(t + 1) finished: free K(t + 1), send its partials
                pin(s2);
                release(empty_k((base + t + 1) % STAGES), t + 1);
                x_send(t + 1, s2);
            };
            auto pv_done = [&](int t) {          // P V(t - 1) finished
                pin(o);
                release(empty_v((base + t - 1) % STAGES), t - 1);
            };
            auto shift = [&]() {
                #pragma unroll
                for (int i = 0; i < N / 2; i++) {
                    s[i] = s2[i];
                }
            };
            wgmma_fence();
            issue_s(0);
            wgmma_wait_all();
            pin(s);
            release(empty_k(base % STAGES), 0);
            x_send(0, s);
            if (n_tiles > 1) {
                wgmma_fence();
                issue_s_into(1, s2);
                softmax(0);
                wgmma_wait_all();
                next_done(0);
                rescale_and_pack();
                shift();
                for (int t = 1; t < n_tiles - 1; t++) {
                    wgmma_fence();
                    issue_s_into(t + 1, s2);
                    issue_pv(t - 1);
                    softmax(t);
                    wgmma_wait_one();              // S(t + 1) done, P V(t - 1) may still run
                    next_done(t);
                    wgmma_wait_all();
                    pv_done(t);
                    rescale_and_pack();
                    shift();
                }
                wgmma_fence();
                issue_pv(n_tiles - 2);
                softmax(n_tiles - 1);
                wgmma_wait_all();
                pv_done(n_tiles - 1);
                rescale_and_pack();
            } else {
                softmax(0);
                rescale_and_pack();
            }
            clear_tail_values();
            wgmma_fence();
            issue_pv(n_tiles - 1);
            wgmma_wait_all();
            pin(o);
            release(empty_v((base + n_tiles - 1) % STAGES), n_tiles - 1);
        } else if constexpr (OVERLAP) {
            // Iteration t issues S(t) and P V(t - 1) back to back; the softmax of S(t) runs while the
            // tensor cores do P V(t - 1).
            wgmma_fence();
            turn_wait();
            issue_s(0);
            turn_pass();
            wgmma_wait_all();
            pin(s);
            release(empty_k(base % STAGES), 0);
            softmax(0);
            rescale_and_pack();
            for (int t = 1; t < n_tiles; t++) {
                wgmma_fence();
                turn_wait();
                issue_s(t);
                issue_pv(t - 1);
                turn_pass();
                wgmma_wait_one();                 // S(t) done, P V(t - 1) may still run
                pin(s);
                release(empty_k((base + t) % STAGES), t);
                softmax(t);
                wgmma_wait_all();
                pin(o);
                release(empty_v((base + t - 1) % STAGES), t - 1);
                rescale_and_pack();
            }
            clear_tail_values();
            wgmma_fence();
            turn_wait();
            issue_pv(n_tiles - 1);
            turn_pass();
            wgmma_wait_all();
            pin(o);
            release(empty_v((base + n_tiles - 1) % STAGES), n_tiles - 1);   // the next item's tiles (PERSIST) reuse it
            if constexpr (PINGPONG) {
                if (cw == 0) {
                    named_barrier(4, 256);         // warpgroup 1's last pass: no arrival left pending
                }
            }
        } else {
            for (int t = 0; t < n_tiles; t++) {
                wgmma_fence();
                issue_s(t);
                wgmma_wait_all();
                pin(s);
                release(empty_k((base + t) % STAGES), t);
                softmax(t);
                rescale_and_pack();
                pin(o);
                wgmma_fence();
                issue_pv(t);
                wgmma_wait_all();
                pin(o);
                release(empty_v((base + t) % STAGES), t);
            }
        }

        const bool out_vec = ((reinterpret_cast<uintptr_t>(a.out) & 7) == 0) && (a.os & 1) == 0 && (hd & 1) == 0;
        const bool twin_vec = ((reinterpret_cast<uintptr_t>(a.out_bf16) & 3) == 0) && (a.obs & 1) == 0 && (hd & 1) == 0;
        // Row sums over the quad, normalize, store: o[4 j + e] = row g + 8 (e >> 1), column 8 j + 2 tq + (e & 1).
        #pragma unroll
        for (int h = 0; h < 2; h++) {
            l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 1);
            l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 2);
        }
        #pragma unroll
        for (int h = 0; h < 2; h++) {
            const int f = row_base + row0 + wq * 16 + g + 8 * h;
            if (f >= chunk_rows) {
                continue;
            }
            const int token = f / group;
            const int head = kvh * group + f % group;
            float* dst = a.out + (int64_t) (c.first_row + token) * a.os + (int64_t) head * hd;
            __nv_bfloat16* twin = a.out_bf16 == nullptr ? nullptr
                    : a.out_bf16 + (int64_t) (c.first_row + token) * a.obs + (int64_t) head * hd;
            const float inv = 1.0f / l_run[h];
            #pragma unroll
            for (int j = 0; j < DW / 8; j++) {
                const int d = col_off + col0 + 8 * j + 2 * tq;
                const float x0 = o[4 * j + 2 * h] * inv;
                const float x1 = o[4 * j + 2 * h + 1] * inv;
                if (out_vec) {
                    if (d < hd) {
                        *reinterpret_cast<float2*>(dst + d) = make_float2(x0, x1);
                    }
                } else {
                    if (d < hd) {
                        dst[d] = x0;
                    }
                    if (d + 1 < hd) {
                        dst[d + 1] = x1;
                    }
                }
                if (twin != nullptr) {
                    // The same rounding as the GEMM's own conversion (nearest even).
                    if (twin_vec) {
                        if (d < hd) {
                            *reinterpret_cast<uint32_t*>(twin + d) = jemma_pack_bf16(x0, x1);
                        }
                    } else {
                        if (d < hd) {
                            twin[d] = __float2bfloat16_rn(x0);
                        }
                        if (d + 1 < hd) {
                            twin[d + 1] = __float2bfloat16_rn(x1);
                        }
                    }
                }
            }
        }
        base += n_tiles;
    }
    if constexpr (IN_CLUSTER) {
        cluster_sync();                          // the other CTA may still arrive on this one's barriers until here
    }
}

}  // namespace jfa3
#endif

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define JEMMA_FA3_BODY(HD, ROWS, CSPLIT, N, STAGES, FLAGS)                                                     \
    jfa3::Args a{q, qs, out, os, k_cache, v_cache, meta, work, kv_heads, group, head_dim, scale_log2, window, sliding, \
                 out_bf16, obs, items, &tm_k, &tm_v, k_w, inv_freq};                                                                     \
    jfa3::attend<HD, ROWS, CSPLIT, N, STAGES, FLAGS>(a);
#else
#define JEMMA_FA3_BODY(HD, ROWS, CSPLIT, N, STAGES, FLAGS)
#endif

// (kernel, head dim, rows per block, consumer warpgroups per 64 rows, keys per tile, stages, options:
// jfa3::OVERLAP ...).
#define JEMMA_FA3_KERNEL(NAME, HD, ROWS, CSPLIT, N, STAGES, FLAGS)                                              \
    extern "C" __global__ void __launch_bounds__(jfa3::THREADS, 1)                                            \
    NAME(const float* q, int64_t qs, float* out, int64_t os, const __nv_bfloat16* k_cache,                    \
         const __nv_bfloat16* v_cache, const int* meta, const int2* work, int kv_heads, int group, int head_dim, \
         float scale_log2, int window, int sliding, __nv_bfloat16* out_bf16, int64_t obs, int items,             \
         const __grid_constant__ JemmaTensorMap tm_k, const __grid_constant__ JemmaTensorMap tm_v,             \
         const float* k_w, const float* inv_freq) {                                                            \
        JEMMA_FA3_BODY(HD, ROWS, CSPLIT, N, STAGES, FLAGS)                                                     \
    }

// Every kernel once, with its configuration: the list jemma_attn_sm90_shared_bytes reports in order and
// TritonAttention.SM90_KERNELS mirrors.
#define JEMMA_FA3_KERNELS(X, XC)                                                                               \
    X(jemma_attn_extend_sm90_hd256, 256, 128, 1, 64, 2, jfa3::OVERLAP)                                        \
    X(jemma_attn_extend_sm90_hd512, 512, 64, 2, 32, 2, jfa3::OVERLAP)                                         \
    /* Alternatives (tests and timing comparisons). _base: session 3's default (Q loaded 4 columns a */       \
    /* round trip); _serial: no overlap; _pingpong: the warpgroups take turns; _early: the producer's */     \
    /* early signal; _n80: 80-key tiles; _async: copies arriving on the full barriers themselves. */        \
    X(jemma_attn_extend_sm90_hd256_base, 256, 128, 1, 64, 2, jfa3::OVERLAP | jfa3::QSLOW)                     \
    X(jemma_attn_extend_sm90_hd512_base, 512, 64, 2, 32, 2, jfa3::OVERLAP | jfa3::QSLOW)                      \
    X(jemma_attn_extend_sm90_hd256_serial, 256, 128, 1, 64, 2, 0)                                             \
    X(jemma_attn_extend_sm90_hd512_serial, 512, 64, 2, 32, 2, 0)                                              \
    X(jemma_attn_extend_sm90_hd256_pingpong, 256, 128, 1, 64, 2, jfa3::OVERLAP | jfa3::PINGPONG)              \
    X(jemma_attn_extend_sm90_hd256_early, 256, 128, 1, 64, 2, jfa3::OVERLAP | jfa3::EARLY)                    \
    X(jemma_attn_extend_sm90_hd512_early, 512, 64, 2, 32, 2, jfa3::OVERLAP | jfa3::EARLY)                     \
    X(jemma_attn_extend_sm90_hd256_n80, 256, 128, 1, 80, 2, jfa3::OVERLAP)                                    \
    X(jemma_attn_extend_sm90_hd256_async, 256, 128, 1, 64, 2, jfa3::OVERLAP | jfa3::ASYNC)                    \
    X(jemma_attn_extend_sm90_hd512_async, 512, 64, 2, 32, 2, jfa3::OVERLAP | jfa3::ASYNC)                     \
    /* _persist: one block per SM over all items (grid: the SM count), ASYNC's producer. */                  \
    X(jemma_attn_extend_sm90_hd256_persist, 256, 128, 1, 64, 2, jfa3::OVERLAP | jfa3::ASYNC | jfa3::PERSIST) \
    X(jemma_attn_extend_sm90_hd512_persist, 512, 64, 2, 32, 2, jfa3::OVERLAP | jfa3::ASYNC | jfa3::PERSIST) \
    /* _cluster: clusters of 2 CTAs on adjacent items sharing each K/V tile (grid x even, XC). */            \
    XC(jemma_attn_extend_sm90_hd512_cluster, 512, 64, 2, 32, 2, jfa3::OVERLAP | jfa3::CLUSTER)                \
    XC(jemma_attn_extend_sm90_hd256_cluster, 256, 128, 1, 64, 2, jfa3::OVERLAP | jfa3::CLUSTER)                \
    XC(jemma_attn_extend_sm90_hd512_cluster_solo, 512, 64, 2, 32, 2, jfa3::OVERLAP | jfa3::CLUSTER | jfa3::SOLO) \
    /* _split: a cluster per 128-row item, the head dim split between its 2 CTAs (XSPLIT; 4 or 2 stages). */ \
    XC(jemma_attn_extend_sm90_hd512_split, 512, 128, 1, 32, 4, jfa3::OVERLAP | jfa3::XSPLIT)                 \
    XC(jemma_attn_extend_sm90_hd512_split2, 512, 128, 1, 32, 2, jfa3::OVERLAP | jfa3::XSPLIT)                \
    /* Session 6 (fs6): _split_n48: 48-key tiles, 2 stages; _split_n64: 64-key tiles, 2 stages, one exchange */ \
    /* buffer (XONE); _split_ahead*: S issued a tile ahead of the softmax (AHEAD) at 32 / 48 / 64 keys. */    \
    XC(jemma_attn_extend_sm90_hd512_split_n48, 512, 128, 1, 48, 2, jfa3::OVERLAP | jfa3::XSPLIT)             \
    XC(jemma_attn_extend_sm90_hd512_split_n64, 512, 128, 1, 64, 2, jfa3::OVERLAP | jfa3::XSPLIT | jfa3::XONE) \
    XC(jemma_attn_extend_sm90_hd512_split_ahead, 512, 128, 1, 32, 4, jfa3::OVERLAP | jfa3::XSPLIT | jfa3::AHEAD) \
    XC(jemma_attn_extend_sm90_hd512_split_ahead_n48, 512, 128, 1, 48, 2, jfa3::OVERLAP | jfa3::XSPLIT | jfa3::AHEAD) \
    XC(jemma_attn_extend_sm90_hd512_split_ahead_n64, 512, 128, 1, 64, 2, jfa3::OVERLAP | jfa3::XSPLIT | jfa3::XONE | jfa3::AHEAD) \
    /* _bq: the defaults reading bf16 Q (BQ; TritonAttention takes them when q holds only its bf16 copy). */   \
    X(jemma_attn_extend_sm90_hd256_bq, 256, 128, 1, 64, 2, jfa3::OVERLAP | jfa3::BQ)                          \
    XC(jemma_attn_extend_sm90_hd512_split_bq, 512, 128, 1, 32, 4, jfa3::OVERLAP | jfa3::XSPLIT | jfa3::BQ)          \
    XC(jemma_attn_extend_sm90_hd512_split_n48_bq, 512, 128, 1, 48, 2, jfa3::OVERLAP | jfa3::XSPLIT | jfa3::BQ)     \
    /* Session 7: K and V by bulk tensor copy (TMA; pages of a multiple of 16 slots, head_dim == HD). */         \
    X(jemma_attn_extend_sm90_hd256_tma, 256, 128, 1, 64, 2, jfa3::OVERLAP | jfa3::TMA)                        \
    X(jemma_attn_extend_sm90_hd256_tma_bq, 256, 128, 1, 64, 2, jfa3::OVERLAP | jfa3::TMA | jfa3::BQ)          \
    XC(jemma_attn_extend_sm90_hd512_split_n48_tma, 512, 128, 1, 48, 2, jfa3::OVERLAP | jfa3::XSPLIT | jfa3::TMA) \
    XC(jemma_attn_extend_sm90_hd512_split_n48_tma_bq, 512, 128, 1, 48, 2, jfa3::OVERLAP | jfa3::XSPLIT | jfa3::TMA | jfa3::BQ) \
    X(jemma_attn_extend_sm90_hd256_tma_n80, 256, 128, 1, 80, 2, jfa3::OVERLAP | jfa3::TMA)                    \
    XC(jemma_attn_extend_sm90_hd512_split_ahead_tma, 512, 128, 1, 32, 4, jfa3::OVERLAP | jfa3::XSPLIT | jfa3::AHEAD | jfa3::TMA) \
    /* The defaults since session 7 (NOTES.md version 5), reading bf16 Q. */                                     \
    X(jemma_attn_extend_sm90_hd256_tma_n80_bq, 256, 128, 1, 80, 2, jfa3::OVERLAP | jfa3::TMA | jfa3::BQ)      \
    XC(jemma_attn_extend_sm90_hd512_split_ahead_tma_bq, 512, 128, 1, 32, 4, jfa3::OVERLAP | jfa3::XSPLIT | jfa3::AHEAD | jfa3::TMA | jfa3::BQ) \
    /* Head dim 512's default since session 7: S a tile ahead at 48 keys (ptxas: 68 bytes spilled). */            \
    XC(jemma_attn_extend_sm90_hd512_split_ahead_n48_tma, 512, 128, 1, 48, 2, jfa3::OVERLAP | jfa3::XSPLIT | jfa3::AHEAD | jfa3::TMA) \
    XC(jemma_attn_extend_sm90_hd512_split_ahead_n48_tma_bq, 512, 128, 1, 48, 2, jfa3::OVERLAP | jfa3::XSPLIT | jfa3::AHEAD | jfa3::TMA | jfa3::BQ) \
    /* Session 9: the hd 512 kernel for K stored once (KD: K derived from V; three stages, S not a tile ahead: */ \
    /* with AHEAD a V stage would live three iterations). */                                                   \
    XC(jemma_attn_extend_sm90_hd512_split_n48_tma_kd, 512, 128, 1, 48, 3, jfa3::OVERLAP | jfa3::XSPLIT | jfa3::TMA | jfa3::KD)

// The same as a cluster of 2 CTAs along x (jfa3::CLUSTER kernels; the grid's x is even). sm_80 has no
// clusters: there the kernel is an empty stub like every kernel of this file.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
#define JEMMA_FA3_PAIR_DIMS
#else
#define JEMMA_FA3_PAIR_DIMS __cluster_dims__(2, 1, 1)
#endif
#define JEMMA_FA3_KERNEL_PAIR(NAME, HD, ROWS, CSPLIT, N, STAGES, FLAGS)                                         \
    extern "C" __global__ void __launch_bounds__(jfa3::THREADS, 1) JEMMA_FA3_PAIR_DIMS                        \
    NAME(const float* q, int64_t qs, float* out, int64_t os, const __nv_bfloat16* k_cache,                    \
         const __nv_bfloat16* v_cache, const int* meta, const int2* work, int kv_heads, int group, int head_dim, \
         float scale_log2, int window, int sliding, __nv_bfloat16* out_bf16, int64_t obs, int items,             \
         const __grid_constant__ JemmaTensorMap tm_k, const __grid_constant__ JemmaTensorMap tm_v,             \
         const float* k_w, const float* inv_freq) {                                                            \
        JEMMA_FA3_BODY(HD, ROWS, CSPLIT, N, STAGES, FLAGS)                                                     \
    }

JEMMA_FA3_KERNELS(JEMMA_FA3_KERNEL, JEMMA_FA3_KERNEL_PAIR)

// The dynamic shared memory of the sm_90a kernels in JEMMA_FA3_KERNELS order, checked once against
// TritonAttention's.
#define JEMMA_FA3_SMEM(NAME, HD, ROWS, CSPLIT, N, STAGES, FLAGS) out[i++] = jfa3::Cfg<HD, ROWS, CSPLIT, N, STAGES, FLAGS>::SMEM;
extern "C" __global__ void jemma_attn_sm90_shared_bytes(int* out) {
    int i = 0;
    JEMMA_FA3_KERNELS(JEMMA_FA3_SMEM, JEMMA_FA3_SMEM)
}
