// The small-kernel A/B harness (tools/bench/small_kernels/build.sh builds it): this checkout's QKV norm warp
// kernels, RoPE and decode residual step against an earlier revision's (old/, prefixed old_), in CUDA graphs of 20
// repetitions (median of 30 replays), plus correctness cross-checks; "profile" launches each variant once (for ncu).
#include "norms.cu"
#include "qkv_norm.cu"
#include "rope.cu"
#include "old/qkv_norm.cu"
#include "old/rope.cu"
#include "old/norms.cu"
#include <cuda.h>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <algorithm>
#include <functional>
#include <cmath>
#include <string>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e), __FILE__, __LINE__); exit(1); } } while (0)

static cudaStream_t st;
static bool profile_mode = false;

static float* dalloc(size_t n) { float* p; CK(cudaMalloc(&p, n * 4)); return p; }
static void upload(float* d, const std::vector<float>& h) { CK(cudaMemcpy(d, h.data(), h.size() * 4, cudaMemcpyHostToDevice)); CK(cudaDeviceSynchronize()); }   // pageable H2D may return before the DMA lands; the kernels run on a non-blocking stream
static std::vector<float> download(const float* d, size_t n) { std::vector<float> h(n); CK(cudaMemcpy(h.data(), d, n * 4, cudaMemcpyDeviceToHost)); return h; }
static std::vector<float> rnd(size_t n, float lo, float hi, unsigned seed) {
    std::vector<float> v(n); srand(seed);
    for (auto& x : v) x = lo + (hi - lo) * (rand() / (float) RAND_MAX);
    return v;
}

// us per repetition: graph of 20 reps, median of 30 replays (5 warm-ups)
static double timeGraph(std::function<void()> body) {
    if (profile_mode) { body(); CK(cudaStreamSynchronize(st)); return 0; }
    cudaGraph_t g; cudaGraphExec_t ge;
    CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    for (int i = 0; i < 20; i++) body();
    CK(cudaStreamEndCapture(st, &g));
    CK(cudaGraphInstantiate(&ge, g, 0));
    cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
    std::vector<float> ms;
    for (int r = 0; r < 35; r++) {
        cudaEventRecord(a, st); CK(cudaGraphLaunch(ge, st)); cudaEventRecord(b, st); cudaEventSynchronize(b);
        float t; cudaEventElapsedTime(&t, a, b); if (r >= 5) ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    cudaGraphExecDestroy(ge); cudaGraphDestroy(g);
    return ms[ms.size() / 2] * 1000.0 / 20;
}

static double relErr(const std::vector<float>& a, const std::vector<float>& b) {
    double d = 0, n = 0;
    for (size_t i = 0; i < a.size(); i++) { if (!std::isfinite(a[i]) && std::isfinite(b[i])) return INFINITY; d += (a[i] - b[i]) * (double) (a[i] - b[i]); n += (double) b[i] * b[i]; }
    return std::sqrt(d / std::max(n, 1e-30));
}

static int rthreads(int n, int max) { int t = (n + 31) / 32 * 32; return std::max(32, std::min(max, t)); }

static std::vector<float> invFreq(int hd, bool sliding) {
    std::vector<float> f(hd / 2, 0.0f);
    if (sliding) { for (int i = 0; i < hd / 2; i++) f[i] = (float) std::pow(10000.0, -2.0 * i / hd); }
    else { int rot = hd / 8; for (int i = 0; i < rot; i++) f[i] = (float) std::pow(1e6, -2.0 * i / hd); }   // proportional, a quarter rotating
    return f;
}

// ---------------- QKV norm ----------------
struct Qkv {
    int mode, heads, kv, hd, tokens; bool sliding;
    float *q, *k, *v, *qw, *kw, *fr; int *pos, *slots; __nv_bfloat16 *kc, *vc; int* meta;
};

static int* ialloc(const std::vector<int>& h) { int* p; CK(cudaMalloc(&p, h.size() * 4 + 256)); CK(cudaMemcpy(p, h.data(), h.size() * 4, cudaMemcpyHostToDevice)); CK(cudaDeviceSynchronize()); return p; }

// Made-up page tables: at 32 decode rows two sequences share a sliding-pool page here, so two rows write the
// same cache row and the write order decides it (the cross-check's error column means nothing for that case;
// the lookups themselves are compared by metaRows). A decode-like metadata image: `tokens` chunks of one row
// each (or, mixed: one prefill chunk of `tokens - 2` rows then two single rows), page size 16, sequences at
// about position 2000 with scattered pages.
static std::vector<int> metaImage(int tokens, bool mixed) {
    std::vector<int> chunkTokens;
    if (mixed && tokens > 2) { chunkTokens.push_back(tokens - 2); chunkTokens.push_back(1); chunkTokens.push_back(1); }
    else for (int i = 0; i < tokens; i++) chunkTokens.push_back(1);
    int n = chunkTokens.size(), page = 16;
    std::vector<int> start(n); for (int c = 0; c < n; c++) start[c] = 1990 + 7 * c;
    int stride = 0; for (int c = 0; c < n; c++) stride = std::max(stride, (start[c] + chunkTokens[c] + page - 1) / page);
    int records = 16, rowChunk = records + n * 8, rowPos = rowChunk + tokens, masks = (rowPos + tokens + 1) & ~1;
    int full = masks + 2 * tokens, sliding = full + n * stride, end = sliding + n * stride;
    std::vector<int> m(end, 0);
    m[0] = n; m[1] = tokens; m[2] = page; m[3] = stride; m[4] = records; m[5] = rowChunk; m[6] = rowPos; m[7] = masks; m[8] = full; m[9] = sliding;
    int row = 0;
    for (int c = 0; c < n; c++) {
        int* r = &m[records + 8 * c];
        r[0] = row; r[1] = chunkTokens[c]; r[2] = start[c]; r[3] = n - 1 - c; r[4] = 0; r[5] = c; r[6] = start[c] + chunkTokens[c];
        for (int i = 0; i < chunkTokens[c]; i++) { m[rowChunk + row + i] = c; m[rowPos + row + i] = start[c] + i; }
        row += chunkTokens[c];
    }
    for (int t = 0; t < n; t++) for (int p = 0; p < stride; p++) { m[full + t * stride + p] = (t * 131 + p * 7) % 997; m[sliding + t * stride + p] = (t * 17 + p * 3) % 251; }
    return m;
}

__global__ void metaRows(const int* meta, int sliding, int tokens, int64_t* a, int64_t* b) {
    int t = threadIdx.x;
    if (t < tokens) { a[t] = old_qkv_cache_row(nullptr, meta, sliding, t); b[t] = jemma_qkv_meta_row(meta, sliding, t); }
}

static Qkv makeQkv(int mode, int heads, int kv, int hd, int tokens, bool sliding, bool useMeta) {
    Qkv l{mode, heads, kv, hd, tokens, sliding};
    l.q = dalloc((size_t) tokens * heads * hd); upload(l.q, rnd((size_t) tokens * heads * hd, -2, 2, 1));
    int kvw = std::max(1, kv * hd);
    l.k = dalloc((size_t) tokens * kvw); upload(l.k, rnd((size_t) tokens * kvw, -2, 2, 2));
    l.v = dalloc((size_t) tokens * kvw); upload(l.v, rnd((size_t) tokens * kvw, -2, 2, 3));
    l.qw = dalloc(hd); upload(l.qw, rnd(hd, 0.5, 1.5, 4));
    l.kw = dalloc(hd); upload(l.kw, rnd(hd, 0.5, 1.5, 5));
    l.fr = dalloc(hd / 2); upload(l.fr, invFreq(hd, sliding));
    std::vector<int> pos(tokens), slots(tokens);
    for (int i = 0; i < tokens; i++) { pos[i] = 2000 + i; slots[i] = 3 * i + 1; }
    l.pos = ialloc(pos); l.slots = ialloc(slots);
    size_t rows = 4096; CK(cudaMalloc(&l.kc, rows * kvw * 2 * 16)); CK(cudaMalloc(&l.vc, rows * kvw * 2 * 16));
    l.meta = useMeta ? ialloc(metaImage(tokens, false)) : nullptr;
    return l;
}

static int slotsOf(const Qkv& l) { return l.mode == 0 ? l.heads : l.mode == 1 ? l.heads + l.kv : l.heads + 2 * l.kv; }

static void fusedOld(const Qkv& l, int warps) {
    int hs = slotsOf(l); int64_t items = (int64_t) l.tokens * hs; bool kvw = l.mode != 0;
    old_qkv_norm_w<<<(items + warps - 1) / warps, 32 * warps, 0, st>>>(l.mode, l.q, (int64_t) l.heads * l.hd, kvw ? l.k : nullptr, (int64_t) l.kv * l.hd,
        kvw ? l.v : nullptr, (int64_t) l.kv * l.hd, l.heads, l.kv, l.hd, hs, items, l.qw, kvw ? l.kw : nullptr, 1e-6f, l.pos, l.fr,
        kvw && !l.meta ? l.slots : nullptr, kvw ? l.meta : nullptr, l.sliding, kvw ? l.kc : nullptr, kvw ? l.vc : nullptr);
}
static void fusedNew(const Qkv& l, int warps) {
    int hs = slotsOf(l); bool kvw = l.mode != 0;
    int cache = !kvw ? 0 : l.meta ? 2 : 1;
    JemmaQkvNormArgs a{l.q, kvw ? l.k : nullptr, kvw ? l.v : nullptr, (int64_t) l.heads * l.hd, (int64_t) l.kv * l.hd, (int64_t) l.kv * l.hd,
        l.qw, kvw ? l.kw : nullptr, l.pos, l.fr, cache == 1 ? l.slots : nullptr, cache == 2 ? l.meta : nullptr, kvw ? l.kc : nullptr, kvw ? l.vc : nullptr,
        l.mode, l.heads, l.kv, l.hd, hs, 0, l.sliding, 1e-6f};
    void (*k)(JemmaQkvNormArgs) = nullptr;
    bool two = l.hd > 256;
    if (l.mode == 0) k = two ? jemma_qkv_norm_w2_m0_c0 : jemma_qkv_norm_w1_m0_c0;
    else if (l.mode == 1) k = cache == 2 ? (two ? jemma_qkv_norm_w2_m1_c2 : jemma_qkv_norm_w1_m1_c2) : (two ? jemma_qkv_norm_w2_m1_c1 : jemma_qkv_norm_w1_m1_c1);
    else k = cache == 2 ? (two ? jemma_qkv_norm_w2_m2_c2 : jemma_qkv_norm_w1_m2_c2) : (two ? jemma_qkv_norm_w2_m2_c1 : jemma_qkv_norm_w1_m2_c1);
    warps = std::min(warps, hs);
    k<<<dim3((hs + warps - 1) / warps, l.tokens), 32 * warps, 0, st>>>(a);
}
static void unfusedQ(const Qkv& l, bool oldRope) {
    int groups = l.heads, hd = l.hd;
    if (oldRope) old_rms_norm_f4<<<dim3(groups, l.tokens), rthreads(hd / 4, 512), 0, st>>>(l.q, (int64_t) l.heads * hd, l.q, (int64_t) l.heads * hd, l.qw, hd, 1e-6f);
    else jemma_rms_norm_f4<<<dim3(groups, l.tokens), rthreads(hd / 4, 512), 0, st>>>(l.q, (int64_t) l.heads * hd, l.q, (int64_t) l.heads * hd, l.qw, hd, 1e-6f);
    if (oldRope) old_rope<<<dim3(l.tokens, l.heads), rthreads(hd / 2, 1024), 0, st>>>(l.q, (int64_t) l.heads * hd, hd, l.pos, l.fr);
    else jemma_rope<<<dim3(l.tokens, l.heads), rthreads(hd / 2, 1024), 0, st>>>(l.q, (int64_t) l.heads * hd, hd, l.pos, l.fr);
}

static void qkvSection() {
    printf("\n== Q_ONLY per layer (us, graph of 20) ==\n");
    printf("%-10s %6s | %8s %8s | %8s | %8s %8s %8s %8s | %s\n", "layout", "tokens", "unf-old", "unf-new", "fus-old", "new-w1", "new-w2", "new-w4", "new-w8", "err new/old");
    for (int hd : {256, 512}) for (int tokens : {1, 2, 4, 8, 16, 32}) {
        if (profile_mode && tokens != 1 && tokens != 32) continue;
        Qkv l = makeQkv(0, 32, 0, hd, tokens, hd == 256, false);
        // correctness: new fused vs old fused vs unfused (old), same input
        std::vector<float> in = download(l.q, (size_t) tokens * 32 * hd);
        fusedOld(l, 2); CK(cudaStreamSynchronize(st)); auto a = download(l.q, in.size());
        upload(l.q, in); fusedNew(l, 2); CK(cudaStreamSynchronize(st)); auto b = download(l.q, in.size());
        upload(l.q, in); unfusedQ(l, false); CK(cudaStreamSynchronize(st)); auto c = download(l.q, in.size());
        upload(l.q, in);
        double uo = timeGraph([&] { unfusedQ(l, true); });
        double un = timeGraph([&] { unfusedQ(l, false); });
        double fo = timeGraph([&] { fusedOld(l, (int64_t) tokens * 32 >= 4096 ? 8 : 2); });
        double f1 = timeGraph([&] { fusedNew(l, 1); });
        double f2 = timeGraph([&] { fusedNew(l, 2); });
        double f4 = timeGraph([&] { fusedNew(l, 4); });
        double f8 = timeGraph([&] { fusedNew(l, 8); });
        printf("32 x %-5d %6d | %8.2f %8.2f | %8.2f | %8.2f %8.2f %8.2f %8.2f | %.1e %.1e\n", hd, tokens, uo, un, fo, f1, f2, f4, f8, relErr(b, a), relErr(c, b));
    }
    printf("\n== QKV (32/16x256 sliding) and QK_EQ_V (32/4x512 full), slots / metadata cache rows (us, graph of 20) ==\n");
    printf("%-8s %-5s %6s | %8s | %8s %8s %8s | %s\n", "mode", "rows", "tokens", "fus-old", "new-w2", "new-w4", "new-w8", "err q,k,v,kc");
    for (int mode : {2, 1}) for (int useMeta : {0, 1}) for (int tokens : {1, 8, 32}) {
        if (profile_mode && (!useMeta || tokens == 32)) continue;
        int kv = mode == 2 ? 16 : 4, hd = mode == 2 ? 256 : 512;
        Qkv l = makeQkv(mode, 32, kv, hd, tokens, mode == 2, useMeta);
        size_t nq = (size_t) tokens * 32 * hd, nk = (size_t) tokens * kv * hd;
        auto q0 = download(l.q, nq), k0 = download(l.k, nk), v0 = download(l.v, nk);
        size_t cacheN = (size_t) 4096 * kv * hd;   // bf16 elements of the rows the slots hit (first 4096 rows)
        auto cacheF = [&](__nv_bfloat16* cc) { std::vector<uint16_t> h(cacheN); CK(cudaMemcpy(h.data(), cc, cacheN * 2, cudaMemcpyDeviceToHost));
            std::vector<float> f(cacheN); for (size_t i = 0; i < cacheN; i++) { uint32_t u = (uint32_t) h[i] << 16; memcpy(&f[i], &u, 4); } return f; };
        CK(cudaMemset(l.kc, 0, cacheN * 2)); CK(cudaDeviceSynchronize()); CK(cudaMemset(l.vc, 0, cacheN * 2)); CK(cudaDeviceSynchronize());
        fusedOld(l, 2); CK(cudaStreamSynchronize(st));
        auto qa = download(l.q, nq), ka = download(l.k, nk), va = download(l.v, nk), kca = cacheF(l.kc), vca = cacheF(l.vc);
        upload(l.q, q0); upload(l.k, k0); upload(l.v, v0); CK(cudaMemset(l.kc, 0, cacheN * 2)); CK(cudaDeviceSynchronize()); CK(cudaMemset(l.vc, 0, cacheN * 2)); CK(cudaDeviceSynchronize());
        fusedNew(l, 2); CK(cudaStreamSynchronize(st));
        auto qb = download(l.q, nq), kb = download(l.k, nk), vb = download(l.v, nk), kcb = cacheF(l.kc), vcb = cacheF(l.vc);
        double e = std::max(std::max(relErr(qb, qa), relErr(kb, ka)), std::max(relErr(vb, va), std::max(relErr(kcb, kca), relErr(vcb, vca))));
        upload(l.q, q0); upload(l.k, k0); upload(l.v, v0);
        double fo = timeGraph([&] { fusedOld(l, 2); });
        double f2 = timeGraph([&] { fusedNew(l, 2); });
        double f4 = timeGraph([&] { fusedNew(l, 4); });
        double f8 = timeGraph([&] { fusedNew(l, 8); });
        printf("%-8s %-5s %6d | %8.2f | %8.2f %8.2f %8.2f | %.1e\n", mode == 2 ? "QKV" : "QK_EQ_V", useMeta ? "meta" : "slots", tokens, fo, f2, f4, f8, e);
    }
    // the metadata row lookup: old chain vs the new one, decode and mixed layouts
    int bad = 0;
    for (int tokens : {1, 3, 8, 33}) for (int mixed : {0, 1}) for (int sl : {0, 1}) {
        int* m = ialloc(metaImage(tokens, mixed)); int64_t *a, *b; CK(cudaMalloc(&a, 8 * 64)); CK(cudaMalloc(&b, 8 * 64));
        metaRows<<<1, 64, 0, st>>>(m, sl, tokens, a, b); CK(cudaStreamSynchronize(st));
        std::vector<int64_t> ha(tokens), hb(tokens); CK(cudaMemcpy(ha.data(), a, 8 * tokens, cudaMemcpyDeviceToHost)); CK(cudaMemcpy(hb.data(), b, 8 * tokens, cudaMemcpyDeviceToHost));
        for (int t = 0; t < tokens; t++) bad += ha[t] != hb[t];
    }
    printf("metadata cache rows, new lookup vs old: %d differ\n", bad);
}

// ---------------- add_rms_norm_next ----------------
static void normSection() {
    printf("\n== add_rms_norm_next_small per launch (us, graph of 20): old (two barriers per sum) vs new (one) ==\n");
    printf("%6s %5s | %8s %8s | %s\n", "width", "rows", "old", "new", "err h, out, bf16 (new vs old)");
    for (int width : {5376, 2816, 2560, 1536}) for (int rows : {1, 2, 4, 8}) {
        if (profile_mode && (width != 5376 && width != 2816 || rows != 1 && rows != 8)) continue;
        size_t n = (size_t) rows * width;
        float *h = dalloc(n), *x = dalloc(n), *w = dalloc(width), *nw = dalloc(width), *out = dalloc(n);
        __nv_bfloat16* ob; CK(cudaMalloc(&ob, n * 2));
        auto h0 = rnd(n, -4, 4, 7); upload(h, h0); upload(x, rnd(n, -3, 3, 8)); upload(w, rnd(width, 0.5, 1.5, 9)); upload(nw, rnd(width, 0.5, 1.5, 10));
        int vectors = width / 4;
        int t = rthreads((vectors + 1) / 2, 1024);
        JemmaResidualArgs ra{h, x, w, nw, out, ob, width, width, width, 1.0f, width, 1e-6f, 0};
        auto oldK = [&] { old_add_rms_norm_next_small<<<rows, t, 0, st>>>(h, width, x, width, w, 1.0f, nw, out, width, ob, width, 1e-6f); };
        auto newK = [&] { jemma_add_rms_norm_next_small<<<rows, t, 0, st>>>(ra); };
        auto bf = [&] { std::vector<uint16_t> hb(n); CK(cudaMemcpy(hb.data(), ob, n * 2, cudaMemcpyDeviceToHost)); std::vector<float> f(n);
            for (size_t i = 0; i < n; i++) { uint32_t u = (uint32_t) hb[i] << 16; memcpy(&f[i], &u, 4); } return f; };
        oldK(); CK(cudaStreamSynchronize(st)); auto ha = download(h, n), oa = download(out, n), ba = bf();
        upload(h, h0); CK(cudaMemset(out, 0xff, n * 4)); CK(cudaDeviceSynchronize()); newK(); CK(cudaStreamSynchronize(st));
        auto hb = download(h, n), obv = download(out, n), bb = bf();
        upload(h, h0);
        double to = timeGraph(oldK), tn = timeGraph(newK);
        printf("%6d %5d | %8.2f %8.2f | %.1e %.1e %.1e\n", width, rows, to, tn, relErr(hb, ha), relErr(obv, oa), relErr(bb, ba));
        cudaFree(h); cudaFree(x); cudaFree(w); cudaFree(nw); cudaFree(out); cudaFree(ob);
    }
}

int main(int argc, char** argv) {
    profile_mode = argc > 1 && std::string(argv[1]) == "profile";
    CK(cudaSetDevice(0));
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    cudaDeviceProp p; cudaGetDeviceProperties(&p, 0); printf("%s, %d SMs%s\n", p.name, p.multiProcessorCount, profile_mode ? " (profile mode: each variant once)" : "");
    normSection();
    qkvSection();
    CK(cudaDeviceSynchronize());
    return 0;
}
