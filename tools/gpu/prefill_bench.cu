// prefill-bench: the sm_90a prefill attention kernels (src-native-kernels/attention_prefill_sm90.cu, every 128-row
// kernel of its table) timed and spot-checked without Java, at AttentionTimingsGpuTest#prefill8kCausal's shapes: one
// 8192-token chunk, pages of 16 slots scattered at random, 32 query heads; case 0: head dim 256, 16 kv heads, causal;
// case 1: head dim 512, 4 kv heads, causal; case 2: head dim 256, 16 kv heads, window 1024. A kernel iteration takes a
// minute here to build and seconds on the H200, against minutes for the packed Java tests: this is for trying kernel
// variants; the GPU tests (tools/gpu/check.sh) stay what checks a kernel.
//
//   prefill-bench [--reps N] [--passes P] [--cases 012] [NAME_SUBSTRING ...]
//
// Per kernel: the median of N timed launches (after 3 warm-ups), TFLOP/s as the timing test counts them, and the
// largest relative error (L2 over the row) of 27 (token, head) rows against a float64 reference of the same bf16
// inputs. Exit code 1 when any row is off by more than 1e-2. tools/gpu/prefill-bench.sh builds and runs it.
// The _kd kernels (K stored once) run on case 1 with the cache's V and K = rope(V * k_w) derived from it (random k_w,
// proportional RoPE: the first 64 of 256 pairs rotate, theta 1e6), checked against that K in float64 with the kernel's
// roundings (derived_term).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "attention_prefill_sm90.cu"

#define CHECK(x)                                                                                         \
    do {                                                                                                 \
        cudaError_t e_ = (x);                                                                            \
        if (e_ != cudaSuccess) {                                                                         \
            std::printf("%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_));                      \
            std::exit(2);                                                                                \
        }                                                                                                \
    } while (0)

namespace {

using Kernel = void (*)(const float*, int64_t, float*, int64_t, const __nv_bfloat16*, const __nv_bfloat16*, const int*,
                        const int2*, int, int, int, float, int, int, __nv_bfloat16*, int64_t, int, const JemmaTensorMap,
                        const JemmaTensorMap, const float*, const float*);

struct Entry {
    const char* name;
    Kernel kernel;
    int head_dim, rows, smem;
    bool split;          // a cluster of 2 CTAs per item (XSPLIT)
};

#define PB_ENTRY(NAME, HD, ROWS, CSPLIT, N, STAGES, FLAGS) \
    {#NAME, NAME, HD, ROWS, jfa3::Cfg<HD, ROWS, CSPLIT, N, STAGES, FLAGS>::SMEM, ((FLAGS) & jfa3::XSPLIT) != 0},
const Entry ENTRIES[] = {JEMMA_FA3_KERNELS(PB_ENTRY, PB_ENTRY)};

// The driver's cuTensorMapEncodeTiled through the runtime (no link against libcuda), as TensorMaps.kvPool encodes: the
// pool [rows, cols] bf16 as [rows / 8][8][cols / 64][64], boxes of 16 rows x 256 columns (the TMA kernels' box).
JemmaTensorMap bf16_rows(void* base, uint64_t rows, uint64_t cols, uint32_t box_cols = 256) {
    using Encode = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*, const cuuint64_t*,
                                const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave, CUtensorMapSwizzle,
                                CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found;
    CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found));
    CUtensorMap map;
    const cuuint64_t dims[4] = {64, 8, cols / 64, rows / 8};
    const cuuint64_t strides[3] = {cols * 2, 128, cols * 16};
    const cuuint32_t box[4] = {64, 8, box_cols / 64, 2};
    const cuuint32_t element_strides[4] = {1, 1, 1, 1};
    const CUresult r = reinterpret_cast<Encode>(fn)(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 4, base, dims, strides, box,
            element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) {
        std::printf("cuTensorMapEncodeTiled failed: %d\n", (int) r);
        std::exit(2);
    }
    JemmaTensorMap out;
    std::memcpy(&out, &map, sizeof out);
    return out;
}

float bf16(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
T* upload(const std::vector<T>& host) {
    T* d = nullptr;
    CHECK(cudaMalloc(&d, host.size() * sizeof(T)));
    CHECK(cudaMemcpy(d, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

struct Case {
    int head_dim, kv_heads, window;
};

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IONBF, 0);
    int reps = 10, passes = 1;
    std::string cases = "012";
    std::vector<std::string> filters;
    for (int i = 1; i < argc; i++) {
        const std::string arg = argv[i];
        if (arg == "--reps" && i + 1 < argc) {
            reps = std::atoi(argv[++i]);
        } else if (arg == "--passes" && i + 1 < argc) {
            passes = std::atoi(argv[++i]);
        } else if (arg == "--cases" && i + 1 < argc) {
            cases = argv[++i];
        } else {
            filters.push_back(arg);
        }
    }
    const int n = 8192, page = 16, heads = 32;
    const Case all[3] = {{256, 16, 0}, {512, 4, 0}, {256, 16, 1024}};
    std::mt19937_64 rng(42);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    bool failed = false;
    for (int ci = 0; ci < 3; ci++) {
        if (cases.find((char) ('0' + ci)) == std::string::npos) {
            continue;
        }
        const Case cs = all[ci];
        const int hd = cs.head_dim, kvh = cs.kv_heads, group = heads / kvh, pages = n / page, slots = pages * page;
        std::vector<int> perm(pages);                    // logical page -> physical page
        for (int i = 0; i < pages; i++) {
            perm[i] = i;
        }
        std::shuffle(perm.begin(), perm.end(), rng);
        auto slot_of = [&](int pos) { return (size_t) perm[pos / page] * page + pos % page; };
        std::vector<float> q((size_t) n * heads * hd);   // [tokens, heads x head dim] fp32
        for (float& x : q) {
            x = normal(rng) * 0.5f;
        }
        std::vector<__nv_bfloat16> qb(q.size()), kc((size_t) slots * kvh * hd), vc(kc.size());
        for (size_t i = 0; i < q.size(); i++) {
            qb[i] = __float2bfloat16(q[i]);
        }
        for (auto& x : kc) {
            x = __float2bfloat16(normal(rng) * 0.5f);
        }
        for (auto& x : vc) {
            x = __float2bfloat16(normal(rng));
        }
        // The metadata image (attention_meta.cuh): header, one chunk, row chunks and positions, no tree masks, tables.
        const int o_chunks = 16, o_row_chunk = o_chunks + 8, o_row_pos = o_row_chunk + n;
        const int o_masks = (o_row_pos + n + 1) / 2 * 2, o_full = o_masks + 2 * n, o_sliding = o_full + pages;
        std::vector<int> meta(o_sliding + pages, 0);
        const int header[13] = {1, n, page, pages, o_chunks, o_row_chunk, o_row_pos, o_masks, o_full, o_sliding, n, n, 0};
        std::memcpy(meta.data(), header, sizeof header);
        const int chunk[8] = {0, n, 0, 0, 0, 0, n, 0};
        std::memcpy(&meta[o_chunks], chunk, sizeof chunk);
        for (int i = 0; i < n; i++) {
            meta[o_row_pos + i] = i;
        }
        for (int p = 0; p < pages; p++) {
            meta[o_full + p] = perm[p];
            meta[o_sliding + p] = perm[p];
        }
        std::vector<int2> work;                          // 128-row items of the chunk, heaviest first
        for (int r = 0; r < n * group; r += 128) {
            work.push_back(make_int2(0, r));
        }
        std::sort(work.begin(), work.end(), [](int2 a, int2 b) { return a.y > b.y; });
        float* d_q = upload(q);
        __nv_bfloat16* d_qb = upload(qb);
        __nv_bfloat16* d_k = upload(kc);
        __nv_bfloat16* d_v = upload(vc);
        int* d_meta = upload(meta);
        int2* d_work = upload(work);
        float* d_out = nullptr;
        CHECK(cudaMalloc(&d_out, q.size() * sizeof(float)));
        const JemmaTensorMap tm_k = bf16_rows(d_k, slots, (uint64_t) kvh * hd);
        const JemmaTensorMap tm_v = bf16_rows(d_v, slots, (uint64_t) kvh * hd);
        // K stored once (_kd): k_w and the RoPE frequencies, and the keys derived from V in float64 for the reference.
        std::vector<float> k_w(hd), inv_freq(hd / 2, 0.0f);
        std::mt19937_64 weights(7);                      // its own stream: the other inputs as before
        for (float& x : k_w) {
            x = 1.0f + 0.25f * normal(weights);
        }
        for (int i = 0; i < 64 && i < hd / 2; i++) {
            inv_freq[i] = (float) std::pow(1e6, -2.0 * i / hd);
        }
        float* d_kw = upload(k_w);
        float* d_freq = upload(inv_freq);
        const JemmaTensorMap tm_peer = bf16_rows(d_v, slots, (uint64_t) kvh * hd, 64);
        // Column d of key j (position j) at kv head kh as the _kd kernels take it, with q's column q: S's term. Where
        // the pair rotates, the key is derived (float64 here) and rounded to bf16, q stays bf16; elsewhere K = V * k_w
        // and the kernel scales q instead, rounding q * k_w to bf16: the reference rounds as the kernel does.
        auto derived_term = [&](int j, int kh, int d, float q) -> double {
            const size_t row = (slot_of(j) * kvh + kh) * hd;
            const int half = hd / 2, i = d % half;
            if (inv_freq[i] == 0.0f) {
                return (double) bf16(__float2bfloat16(q * k_w[d])) * bf16(vc[row + d]);
            }
            const int o = d < half ? d + half : d - half;
            const double mine = (double) bf16(vc[row + d]) * k_w[d];
            const double theirs = (double) bf16(vc[row + o]) * k_w[o];
            const double angle = (double) (inv_freq[i] * (float) j);
            const double key = d < half ? mine * std::cos(angle) - theirs * std::sin(angle)
                                        : mine * std::cos(angle) + theirs * std::sin(angle);
            return (double) bf16(__float2bfloat16(q)) * bf16(__float2bfloat16((float) key));
        };
        const double flops = cs.window > 0
                ? 4.0 * ((double) n * cs.window - (double) cs.window * (cs.window - 1) / 2) * hd * heads
                : 4.0 * n * n / 2 * hd * heads;

        // Float64 reference rows (bf16 q, as the kernels round it).
        std::vector<std::pair<int, int>> rows;
        for (int i = 0; i < 24; i++) {
            rows.push_back({(int) (rng() % n), (int) (rng() % heads)});
        }
        rows.push_back({n - 1, 0});
        rows.push_back({0, 1});
        rows.push_back({127, 5});
        std::vector<std::vector<double>> expected, expected_kd;
        auto reference = [&](bool kd, std::vector<std::vector<double>>& into) {
            for (auto [t, h] : rows) {
                const int kh = h / group;
                const int first = cs.window > 0 ? std::max(0, t - cs.window + 1) : 0;
                std::vector<double> s(t + 1, 0.0), o(hd, 0.0);
                double top = -1e300, sum = 0.0;
                for (int j = first; j <= t; j++) {
                    double dot = 0.0;
                    for (int d = 0; d < hd; d++) {
                        const size_t qi = ((size_t) t * heads + h) * hd + d;
                        dot += kd ? derived_term(j, kh, d, q[qi]) : (double) bf16(qb[qi]) * bf16(kc[(slot_of(j) * kvh + kh) * hd + d]);
                    }
                    s[j] = dot;
                    top = std::max(top, dot);
                }
                for (int j = first; j <= t; j++) {
                    s[j] = std::exp(s[j] - top);
                    sum += s[j];
                }
                for (int j = first; j <= t; j++) {
                    for (int d = 0; d < hd; d++) {
                        o[d] += s[j] / sum * bf16(vc[(slot_of(j) * kvh + kh) * hd + d]);
                    }
                }
                into.push_back(o);
            }
        };
        reference(false, expected);

        std::vector<float> got(q.size());
        for (int pass = 0; pass < passes; pass++) {
            for (const Entry& e : ENTRIES) {
                bool selected = filters.empty();
                for (const std::string& f : filters) {
                    selected |= std::strstr(e.name, f.c_str()) != nullptr;
                }
                const bool kd = std::strstr(e.name, "_kd") != nullptr;
                if (e.head_dim != hd || e.rows != 128 || !selected || (kd && (cs.window > 0 || hd != 512))) {
                    continue;
                }
                if (kd && expected_kd.empty()) {
                    reference(true, expected_kd);
                }
                const auto& want = kd ? expected_kd : expected;
                const bool bf16_q = std::strstr(e.name, "_bq") != nullptr;
                const int items = (int) work.size();
                const dim3 grid(e.split ? 2 * items : items, kvh);
                CHECK(cudaFuncSetAttribute(e.kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, e.smem));
                auto launch = [&]() {
                    e.kernel<<<grid, jfa3::THREADS, e.smem>>>(bf16_q ? reinterpret_cast<const float*>(d_qb) : d_q,
                            (int64_t) heads * hd, d_out, (int64_t) heads * hd, d_k, d_v, d_meta, d_work, kvh, group, hd,
                            1.4426950408889634f, cs.window, cs.window > 0 ? 1 : 0, nullptr, 0, items, kd ? tm_peer : tm_k,
                            tm_v, kd ? d_kw : nullptr, kd ? d_freq : nullptr);
                };
                CHECK(cudaMemset(d_out, 0xff, q.size() * sizeof(float)));   // NaN: rows the kernel skips show
                launch();
                CHECK(cudaGetLastError());
                CHECK(cudaDeviceSynchronize());
                CHECK(cudaMemcpy(got.data(), d_out, got.size() * sizeof(float), cudaMemcpyDeviceToHost));
                double worst = 0.0;
                for (size_t r = 0; r < rows.size(); r++) {
                    const auto [t, h] = rows[r];
                    double err = 0.0, norm = 0.0;
                    for (int d = 0; d < hd; d++) {
                        const double x = got[((size_t) t * heads + h) * hd + d] - want[r][d];
                        err += x * x;
                        norm += want[r][d] * want[r][d];
                    }
                    const double rel = std::sqrt(err / std::max(norm, 1e-30));
                    worst = std::isnan(rel) ? INFINITY : std::max(worst, rel);
                }
                for (int i = 0; i < 3; i++) {
                    launch();
                }
                cudaEvent_t start, stop;
                CHECK(cudaEventCreate(&start));
                CHECK(cudaEventCreate(&stop));
                std::vector<float> ms;
                for (int i = 0; i < reps; i++) {
                    CHECK(cudaEventRecord(start));
                    launch();
                    CHECK(cudaEventRecord(stop));
                    CHECK(cudaEventSynchronize(stop));
                    float x = 0.0f;
                    CHECK(cudaEventElapsedTime(&x, start, stop));
                    ms.push_back(x);
                }
                CHECK(cudaGetLastError());
                CHECK(cudaEventDestroy(start));
                CHECK(cudaEventDestroy(stop));
                std::sort(ms.begin(), ms.end());
                const double median = ms[ms.size() / 2];
                const bool ok = worst < 1e-2;
                failed |= !ok;
                std::printf("%-52s hd %d window %4d  %8.1f us  %6.1f TFLOP/s  rel err %.2e  %s\n", e.name, hd, cs.window,
                            median * 1e3, flops / (median * 1e-3) / 1e12, worst, ok ? "ok" : "FAIL");
            }
        }
        CHECK(cudaFree(d_q));
        CHECK(cudaFree(d_qb));
        CHECK(cudaFree(d_k));
        CHECK(cudaFree(d_v));
        CHECK(cudaFree(d_meta));
        CHECK(cudaFree(d_work));
        CHECK(cudaFree(d_out));
        CHECK(cudaFree(d_kw));
        CHECK(cudaFree(d_freq));
    }
    return failed ? 1 : 0;
}
