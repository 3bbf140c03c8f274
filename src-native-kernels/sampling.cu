// Sampling on the device: one block per row of logits [rows, vocab] picks that row's token, so that only
// token ids (and, where asked, logprobs) go back to the host.
//
// Per row, in this order (the host path's order, io.jemma.engine.sampling.HostSampling):
//   1. logprobs of the raw logits when asked: log-sum-exp, and the top_n most likely tokens (a radix
//      select finds the n-th largest key; no sort);
//   2. penalties and end-token masks, from a per-row list of (token, flags, subtract) entries the host
//      built from the request's prompt and generated counts: repetition (divide positive / multiply
//      negative logits), then frequency + presence (subtract), then -inf for masked end tokens; the raw
//      value of every listed token is saved first (the chosen token's logprob needs it);
//   3. greedy: argmax, ties to the lowest index; or temperature sampling: p_i = exp(z_i - max z) with
//      z = logit / T, restricted by top-k (radix select of the k-th largest key: ties at the threshold
//      stay), top-p (a radix select over probability mass finds the key where the mass of the larger
//      ones reaches top_p of the top-k mass), and min-p (p_i >= min_p, the largest p being 1); then a
//      draw u * total from a counter-based generator (seed, draw index) and the token where the running
//      mass in index order passes it.
// Masses are summed in fixed point (p * 2^24 rounded, 64-bit sums): integer sums do not depend on the
// order of the atomics, so a (seed, draw) always picks the same token.
//
// Keys: a float's bits mapped so that unsigned order is float order (-inf lowest).
// Launch: grid (rows), block JEMMA_SAMPLE_THREADS; static shared memory only.
#include "jemma_common.cuh"

#define JEMMA_SAMPLE_THREADS 1024
#define JEMMA_SAMPLE_WARPS (JEMMA_SAMPLE_THREADS / 32)
#define JEMMA_SAMPLE_MAX_TOP 32
#define JEMMA_FIXED_ONE 16777216.0f

// Entry flags.
#define JEMMA_PEN_REPEAT 1
#define JEMMA_PEN_END 2
#define JEMMA_PEN_SUBTRACT 4

__device__ __forceinline__ uint32_t jemma_key(float f) {
    const uint32_t u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ uint64_t jemma_splitmix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// The unnormalized probability exp(z - zmax), z = v / T, written without contractions so that every
// pass computes the same value for the same logit (the sums and the final walk must agree exactly).
__device__ __forceinline__ float jemma_weight(float v, float inv_temp, float zmax) {
    return __expf(__fsub_rn(__fmul_rn(v, inv_temp), zmax));
}

// Calls f(i, row[i]) for this thread's elements, loading 8 at a time (a row is 1 MB: the loads of one
// thread must be in flight together, not one per loop trip).
#define JEMMA_BATCH 8
template <typename F>
__device__ __forceinline__ void jemma_for_each(const float* row, int vocab, F f) {
    const int step = blockDim.x * JEMMA_BATCH;
    for (int base = threadIdx.x; base < vocab; base += step) {
        float v[JEMMA_BATCH];
        #pragma unroll
        for (int u = 0; u < JEMMA_BATCH; u++) {
            const int i = base + u * blockDim.x;
            v[u] = i < vocab ? row[i] : 0.0f;
        }
        #pragma unroll
        for (int u = 0; u < JEMMA_BATCH; u++) {
            const int i = base + u * blockDim.x;
            if (i < vocab) {
                f(i, v[u]);
            }
        }
    }
}

// Block-wide reductions (every thread gets the result). scratch: JEMMA_SAMPLE_WARPS entries.
__device__ float jemma_block_max_f(float v, float* scratch) {
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    }
    __syncthreads();
    if ((threadIdx.x & 31) == 0) {
        scratch[threadIdx.x >> 5] = v;
    }
    __syncthreads();
    float r = scratch[0];
    for (int w = 1; w < JEMMA_SAMPLE_WARPS; w++) {
        r = fmaxf(r, scratch[w]);
    }
    return r;
}

__device__ float jemma_block_sum_f(float v, float* scratch) {
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }
    __syncthreads();
    if ((threadIdx.x & 31) == 0) {
        scratch[threadIdx.x >> 5] = v;
    }
    __syncthreads();
    float r = 0.0f;
    for (int w = 0; w < JEMMA_SAMPLE_WARPS; w++) {
        r += scratch[w];
    }
    return r;
}

__device__ unsigned long long jemma_block_sum_u64(unsigned long long v, unsigned long long* scratch) {
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }
    __syncthreads();
    if ((threadIdx.x & 31) == 0) {
        scratch[threadIdx.x >> 5] = v;
    }
    __syncthreads();
    unsigned long long r = 0;
    for (int w = 0; w < JEMMA_SAMPLE_WARPS; w++) {
        r += scratch[w];
    }
    return r;
}

// Argmax with ties to the lowest index (NaN never wins, as in the host's strict comparison).
__device__ int jemma_block_argmax(const float* row, int vocab, float* fscratch, int* iscratch) {
    float best = -INFINITY;
    int at = 0x7fffffff;
    jemma_for_each(row, vocab, [&](int i, float v) {
        if (v > best || (at == 0x7fffffff && v == v)) {   // the first non-NaN, then strictly larger
            best = v;
            at = i;
        }
    });
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float ob = __shfl_xor_sync(0xffffffffu, best, o);
        const int oa = __shfl_xor_sync(0xffffffffu, at, o);
        if (ob > best || (ob == best && oa < at)) {
            best = ob;
            at = oa;
        }
    }
    __syncthreads();
    if ((threadIdx.x & 31) == 0) {
        fscratch[threadIdx.x >> 5] = best;
        iscratch[threadIdx.x >> 5] = at;
    }
    __syncthreads();
    float b = fscratch[0];
    int a = iscratch[0];
    for (int w = 1; w < JEMMA_SAMPLE_WARPS; w++) {
        if (fscratch[w] > b || (fscratch[w] == b && iscratch[w] < a)) {
            b = fscratch[w];
            a = iscratch[w];
        }
    }
    return a == 0x7fffffff ? 0 : a;   // all NaN: index 0, as the host
}

// Adds `amount` to hist[bin] for every lane, one shared atomic per distinct bin of the warp (lanes with
// bin < 0 add nothing). All 32 lanes of the warp must call it together.
__device__ __forceinline__ void jemma_warp_hist_add(unsigned long long* hist, int bin, unsigned amount) {
    const int lane = threadIdx.x & 31;
    unsigned todo = __ballot_sync(0xffffffffu, bin >= 0);
    while (todo) {
        const int leader = __ffs(todo) - 1;
        const int b = __shfl_sync(0xffffffffu, bin, leader);
        const unsigned mine = bin == b ? amount : 0u;
        const unsigned sum = __reduce_add_sync(0xffffffffu, mine);
        if (lane == leader) {
            atomicAdd(hist + b, (unsigned long long) sum);
        }
        todo &= ~__ballot_sync(0xffffffffu, bin == b);
    }
}

// The largest key K such that the weight of the elements with key >= K (among those with key >= floor)
// reaches `target`: 4 passes of 256-bin histograms over the key bytes, most significant first.
// mode 0: weight 1 per element (K is the target-th largest key); mode 1: weight = fixed-point probability
// exp(z - zmax) with z = logit * inv_temp. If the target is never reached, the smallest key present.
__device__ uint32_t jemma_radix_select(const float* row, int vocab, uint32_t floor, int mode, float zmax,
                                       float inv_temp, unsigned long long target, unsigned long long* hist,
                                       uint32_t* shared_prefix, unsigned long long* shared_remaining) {
    uint32_t prefix = 0;
    uint32_t mask = 0;
    unsigned long long remaining = target;
    const int step = blockDim.x * JEMMA_BATCH;
    const int limit = (vocab + step - 1) / step * step;   // every warp runs every lap (warp-wide adds)
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < 256; b += blockDim.x) {
            hist[b] = 0;
        }
        __syncthreads();
        for (int base = threadIdx.x; base < limit; base += step) {
            float v[JEMMA_BATCH];
            #pragma unroll
            for (int u = 0; u < JEMMA_BATCH; u++) {
                const int i = base + u * blockDim.x;
                v[u] = i < vocab ? row[i] : 0.0f;
            }
            #pragma unroll
            for (int u = 0; u < JEMMA_BATCH; u++) {
                const int i = base + u * blockDim.x;
                int bin = -1;
                unsigned amount = 0;
                if (i < vocab) {
                    const uint32_t k = jemma_key(v[u]);
                    if (k >= floor && (k & mask) == prefix) {
                        bin = (k >> shift) & 255;
                        amount = mode == 0 ? 1u : __float2uint_rn(jemma_weight(v[u], inv_temp, zmax) * JEMMA_FIXED_ONE);
                    }
                }
                jemma_warp_hist_add(hist, bin, amount);
            }
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            unsigned long long cum = 0;
            int chosen = -1;
            int lowest = -1;
            for (int b = 255; b >= 0; b--) {
                if (hist[b] == 0) {
                    continue;
                }
                lowest = b;
                if (cum + hist[b] >= remaining) {
                    chosen = b;
                    break;
                }
                cum += hist[b];
            }
            if (chosen < 0) {
                chosen = lowest < 0 ? 0 : lowest;   // target not reached: keep everything
                remaining = 1;
            } else {
                remaining -= cum;
            }
            *shared_prefix = prefix | ((uint32_t) chosen << shift);
            *shared_remaining = remaining;
        }
        __syncthreads();
        prefix = *shared_prefix;
        remaining = *shared_remaining;
        mask |= 255u << shift;
        __syncthreads();
    }
    return prefix;
}

// fp: [rows, 4] temperature, top_p, min_p, repetition. ip: [rows, 8] top_k (0: off), top_logprobs (-1: none),
// first entry, entry count, seed lo, seed hi, draw lo, draw hi. entries: [E, 3] token, flags, subtract (float
// bits). raw: [E] scratch (the listed tokens' raw logits). out: [rows] tokens, then [rows] chosen logprob (float
// bits), then [rows, MAX_TOP] top ids, then [rows, MAX_TOP] top logprobs (float bits), then [rows] top count.
extern "C" __global__ void __launch_bounds__(JEMMA_SAMPLE_THREADS)
jemma_sample(float* logits, int64_t ls, int vocab, int rows, const float* __restrict__ fp,
             const int* __restrict__ ip, const int* __restrict__ entries, float* raw, int* out) {
    __shared__ float fscratch[JEMMA_SAMPLE_WARPS];
    __shared__ int iscratch[JEMMA_SAMPLE_WARPS];
    __shared__ unsigned long long uscratch[JEMMA_SAMPLE_WARPS];
    __shared__ unsigned long long hist[256];
    __shared__ uint32_t s_prefix;
    __shared__ unsigned long long s_remaining;
    __shared__ int s_count;
    __shared__ int s_token;

    const int r = blockIdx.x;
    float* row = logits + (int64_t) r * ls;
    const float temperature = fp[r * 4 + 0];
    const float top_p = fp[r * 4 + 1];
    const float min_p = fp[r * 4 + 2];
    const float repetition = fp[r * 4 + 3];
    const int top_k = ip[r * 8 + 0];
    const int top_n = ip[r * 8 + 1];
    const int first = ip[r * 8 + 2];
    const int count = ip[r * 8 + 3];
    const uint64_t seed = (uint64_t) (uint32_t) ip[r * 8 + 4] | ((uint64_t) (uint32_t) ip[r * 8 + 5] << 32);
    const uint64_t draw = (uint64_t) (uint32_t) ip[r * 8 + 6] | ((uint64_t) (uint32_t) ip[r * 8 + 7] << 32);
    int* out_tokens = out;
    float* out_chosen = reinterpret_cast<float*>(out + rows);
    int* out_ids = out + 2 * rows + r * JEMMA_SAMPLE_MAX_TOP;
    float* out_lp = reinterpret_cast<float*>(out + 2 * rows + rows * JEMMA_SAMPLE_MAX_TOP) + r * JEMMA_SAMPLE_MAX_TOP;
    int* out_top_count = out + 2 * rows + 2 * rows * JEMMA_SAMPLE_MAX_TOP;

    // 1. Logprobs of the raw logits.
    float lse = 0.0f;
    if (top_n >= 0) {
        float m = -INFINITY;
        jemma_for_each(row, vocab, [&](int, float v) { m = fmaxf(m, v); });
        m = jemma_block_max_f(m, fscratch);
        float s = 0.0f;
        jemma_for_each(row, vocab, [&](int, float v) { s += expf(v - m); });
        s = jemma_block_sum_f(s, fscratch);
        lse = m + logf(s);
        const int n = min(top_n, min(vocab, JEMMA_SAMPLE_MAX_TOP));
        if (n > 0) {
            const uint32_t kth = jemma_radix_select(row, vocab, 0u, 0, 0.0f, 1.0f, (unsigned long long) n, hist,
                                                    &s_prefix, &s_remaining);
            if (threadIdx.x == 0) {
                s_count = 0;
            }
            __syncthreads();
            for (int pass = 0; pass < 2; pass++) {          // the larger keys first, then ties at the n-th
                jemma_for_each(row, vocab, [&](int i, float v) {
                    const uint32_t k = jemma_key(v);
                    if (pass == 0 ? k > kth : k == kth) {
                        const int slot = atomicAdd(&s_count, 1);
                        if (slot < n) {
                            out_ids[slot] = i;
                            out_lp[slot] = v - lse;
                        }
                    }
                });
                __syncthreads();
            }
        }
        if (threadIdx.x == 0) {
            out_top_count[r] = n;
        }
    }

    // 2. Penalties and masks, the raw values saved first.
    for (int e = threadIdx.x; e < count; e += blockDim.x) {
        const int* entry = entries + 3 * (first + e);
        const int t = entry[0];
        if (t < 0 || t >= vocab) {
            continue;
        }
        const int flags = entry[1];
        float v = row[t];
        raw[first + e] = v;
        if (flags & JEMMA_PEN_REPEAT) {
            v = v > 0.0f ? v / repetition : v * repetition;
        }
        if (flags & JEMMA_PEN_SUBTRACT) {
            v -= __int_as_float(entry[2]);
        }
        if (flags & JEMMA_PEN_END) {
            v = -INFINITY;
        }
        row[t] = v;
    }
    __syncthreads();

    // 3. The token.
    int token;
    if (!(temperature > 0.0f)) {
        token = jemma_block_argmax(row, vocab, fscratch, iscratch);
    } else {
        const float inv_temp = 1.0f / temperature;
        float zmax = -INFINITY;
        jemma_for_each(row, vocab, [&](int, float v) { zmax = fmaxf(zmax, __fmul_rn(v, inv_temp)); });
        zmax = jemma_block_max_f(zmax, fscratch);
        if (zmax == -INFINITY) {
            token = 0;                                        // every token masked
        } else {
            uint32_t floor = 0;
            if (top_k > 0 && top_k < vocab) {
                floor = jemma_radix_select(row, vocab, 0u, 0, 0.0f, 1.0f, (unsigned long long) top_k, hist,
                                           &s_prefix, &s_remaining);
            }
            if (top_p < 1.0f) {
                unsigned long long kept = 0;
                jemma_for_each(row, vocab, [&](int, float v) {
                    if (jemma_key(v) >= floor) {
                        kept += __float2uint_rn(jemma_weight(v, inv_temp, zmax) * JEMMA_FIXED_ONE);
                    }
                });
                kept = jemma_block_sum_u64(kept, uscratch);
                unsigned long long target = (unsigned long long) ceil((double) top_p * (double) kept);
                if (target == 0) {
                    target = 1;
                }
                const uint32_t p_floor = jemma_radix_select(row, vocab, floor, 1, zmax, inv_temp, target, hist,
                                                            &s_prefix, &s_remaining);
                floor = max(floor, p_floor);
            }
            // Final weights: kept keys with p >= min_p, in fixed point. Warp w owns a contiguous range of
            // the vocabulary, its lanes striding by one, so index order is (warp, lap, lane).
            const int per_warp = (vocab + JEMMA_SAMPLE_WARPS - 1) / JEMMA_SAMPLE_WARPS;
            const int warp = threadIdx.x >> 5;
            const int lane = threadIdx.x & 31;
            const int lo = min(vocab, warp * per_warp);
            const int hi = min(vocab, lo + per_warp);
            unsigned long long mine = 0;
            for (int i = lo + lane; i < hi; i += 32) {
                const float v = row[i];
                const float p = jemma_weight(v, inv_temp, zmax);
                if (jemma_key(v) >= floor && p >= min_p) {
                    mine += __float2uint_rn(p * JEMMA_FIXED_ONE);
                }
            }
            #pragma unroll
            for (int o = 16; o > 0; o >>= 1) {
                mine += __shfl_xor_sync(0xffffffffu, mine, o);
            }
            __syncthreads();
            if (lane == 0) {
                uscratch[warp] = mine;
            }
            if (threadIdx.x == 0) {
                s_token = -1;
            }
            __syncthreads();
            unsigned long long total = 0;
            unsigned long long before = 0;                     // mass of the warps before this one
            for (int w = 0; w < JEMMA_SAMPLE_WARPS; w++) {
                if (w < warp) {
                    before += uscratch[w];
                }
                total += uscratch[w];
            }
            const uint64_t bits = jemma_splitmix64(seed ^ jemma_splitmix64(draw));
            const double u = (double) (bits >> 11) * 0x1.0p-53;
            unsigned long long threshold = (unsigned long long) (u * (double) total);
            if (threshold >= total) {
                threshold = total - 1;
            }
            if (total > 0 && threshold >= before && threshold < before + uscratch[warp]) {
                // This warp holds the crossing: walk its range 32 tokens at a time.
                unsigned long long cum = before;
                for (int base = lo; base < hi; base += 32) {
                    const int i = base + lane;
                    unsigned long long wgt = 0;
                    if (i < hi) {
                        const float v = row[i];
                        const float p = jemma_weight(v, inv_temp, zmax);
                        if (jemma_key(v) >= floor && p >= min_p) {
                            wgt = __float2uint_rn(p * JEMMA_FIXED_ONE);
                        }
                    }
                    unsigned long long inclusive = wgt;
                    #pragma unroll
                    for (int o = 1; o < 32; o <<= 1) {
                        const unsigned long long n = __shfl_up_sync(0xffffffffu, inclusive, o);
                        if (lane >= o) {
                            inclusive += n;
                        }
                    }
                    const unsigned passed = __ballot_sync(0xffffffffu, wgt > 0 && cum + inclusive > threshold);
                    if (passed) {
                        if (lane == __ffs(passed) - 1) {
                            s_token = i;
                        }
                        break;
                    }
                    cum += __shfl_sync(0xffffffffu, inclusive, 31);
                }
            }
            __syncthreads();
            token = s_token;
            if (token < 0) {
                token = jemma_block_argmax(row, vocab, fscratch, iscratch);   // nothing kept: cannot happen
            }
        }
    }

    if (threadIdx.x == 0) {
        out_tokens[r] = token;
        if (top_n >= 0) {
            float v = row[token];
            for (int e = 0; e < count; e++) {               // a listed token: its value before penalties
                if (entries[3 * (first + e)] == token) {
                    v = raw[first + e];
                }
            }
            out_chosen[r] = v - lse;
        }
    }
}

// Greedy drafting on the device (speculative decoding): each row's argmax of logits [rows, vocab] (ties to the
// lowest index, NaN never wins: jemma_sample's greedy rows) becomes that row's input id of the next draft step
// (ids: the step-ids buffer the embed kernel reads) and is kept at picked[r * stride + column], so a chain of
// draft steps runs without the host until its tokens are read once at the end.
// Launch: grid (rows), block JEMMA_SAMPLE_THREADS.
extern "C" __global__ void __launch_bounds__(JEMMA_SAMPLE_THREADS)
jemma_argmax_ids(const float* logits, int64_t ls, int vocab, int* ids, int* picked, int stride, int column) {
    __shared__ float fscratch[JEMMA_SAMPLE_WARPS];
    __shared__ int iscratch[JEMMA_SAMPLE_WARPS];
    const int r = blockIdx.x;
    const int token = jemma_block_argmax(logits + (int64_t) r * ls, vocab, fscratch, iscratch);
    if (threadIdx.x == 0) {
        ids[r] = token;
        picked[(int64_t) r * stride + column] = token;
    }
}
