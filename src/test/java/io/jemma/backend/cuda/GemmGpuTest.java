package io.jemma.backend.cuda;

import static io.jemma.backend.cuda.GpuTests.BF16_BOUND;
import static io.jemma.backend.cuda.GpuTests.assertClose;
import static io.jemma.backend.cuda.GpuTests.cpu;
import static io.jemma.backend.cuda.GpuTests.gpu;
import static io.jemma.backend.cuda.GpuTests.pair;
import static io.jemma.backend.cuda.GpuTests.poisoned;
import static io.jemma.backend.cuda.GpuTests.randomBf16;
import static io.jemma.backend.cuda.GpuTests.uniform;

import io.jemma.backend.HostTensor;
import io.jemma.backend.Tensor;
import io.jemma.backend.Weight;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * cuBLASLt GEMMs ({@code y = x @ w^T}, bf16 operands, fp32 accumulation and output) against the CPU
 * backend's fp32 matmul over the same bf16 weights, at Gemma 4 31B's projection shapes for decode
 * (1-4 tokens) and prefill (hundreds), vocabulary-wide outputs, odd shapes, and outputs into column
 * views. The bound is bf16's: the GPU rounds the activations to bf16, the CPU does not.
 */
@Tag("gpu")
class GemmGpuTest {

    private record W(Weight cpu, Weight gpu, int out, int in) {
        static W random(SplittableRandom r, int out, int in) {
            HostTensor t = randomBf16(r, "w", out, in, 1 / Math.sqrt(in));
            return new W(GpuTests.cpu().load(t), GpuTests.gpu().load(t), out, in);
        }
    }

    private static void check(SplittableRandom r, int tokens, W w, String what) {
        var x = pair(uniform(r, tokens * w.in(), -2, 2), tokens, w.in());
        Tensor cpuY = cpu().allocate(tokens, w.out());
        Tensor gpuY = poisoned(tokens, w.out());
        cpu().matmul(x.cpu(), w.cpu(), cpuY);
        gpu().matmul(x.gpu(), w.gpu(), gpuY);
        assertClose("gemm", what + " " + tokens + " x [" + w.out() + ", " + w.in() + "]", gpu().toHost(gpuY),
                cpu().toHost(cpuY), BF16_BOUND);
    }

    @Test
    void decodeShapes() {
        SplittableRandom r = GpuTests.random("gemm decode");
        W q = W.random(r, 32 * 256, 5376);
        W k = W.random(r, 16 * 256, 5376);
        W o = W.random(r, 5376, 32 * 256);
        W gate = W.random(r, 21504, 5376);
        W down = W.random(r, 5376, 21504);
        // 2 and 4 rows: on cuBLASLt by default, and on the GEMV kernel's multi-row variants (jemma.cuda.gemv-max-rows).
        for (int gemvRows : new int[] {1, Gemm.GEMV_MAX_ROWS}) {
            gpu().gemvMaxRows(gemvRows);
            try {
                for (int tokens : new int[] {1, 2, 4}) {
                    String on = " (GEMV up to " + gemvRows + " rows)";
                    check(r, tokens, q, "q_proj" + on);
                    check(r, tokens, k, "k_proj" + on);
                    check(r, tokens, o, "o_proj" + on);
                    check(r, tokens, gate, "gate_proj" + on);
                    check(r, tokens, down, "down_proj" + on);
                }
            } finally {
                gpu().gemvMaxRows(1);
            }
        }
        W vocab = W.random(r, 262_144, 128);
        check(r, 3, vocab, "vocabulary-wide");
    }

    /** q, k, v (and gate, up) of one input in one call: one GEMV launch at decode sizes, one bf16 operand else. */
    @Test
    void fusedProjectionsMatchTheCpu() {
        SplittableRandom r = GpuTests.random("gemm fused");
        W[] qkv = {W.random(r, 4096, 5376), W.random(r, 1024, 5376), W.random(r, 1024, 5376), W.random(r, 256, 5376)};
        for (int tokens : new int[] {1, 3, 4, 9}) {
            for (int n : new int[] {2, 3, 4}) {                  // 4: two launches of the GEMV
                var x = pair(uniform(r, tokens * 5376, -2, 2), tokens, 5376);
                Weight[] cw = new Weight[n];
                Weight[] gw = new Weight[n];
                Tensor[] cy = new Tensor[n];
                Tensor[] gy = new Tensor[n];
                for (int i = 0; i < n; i++) {
                    cw[i] = qkv[i].cpu();
                    gw[i] = qkv[i].gpu();
                    cy[i] = cpu().allocate(tokens, qkv[i].out());
                    gy[i] = poisoned(tokens, qkv[i].out());
                }
                cpu().matmul(x.cpu(), cw, cy);
                gpu().matmul(x.gpu(), gw, gy);
                for (int i = 0; i < n; i++) {
                    assertClose("gemm", "fused " + n + " projections, output " + i + ", " + tokens + " tokens",
                            gpu().toHost(gy[i]), cpu().toHost(cy[i]), BF16_BOUND);
                }
            }
        }
    }

    @Test
    void prefillShapes() {
        SplittableRandom r = GpuTests.random("gemm prefill");
        check(r, 128, W.random(r, 32 * 256, 5376), "q_proj");
        check(r, 333, W.random(r, 8 * 256, 2816), "26B-A4B k_proj");
        check(r, 512, W.random(r, 2112, 2816), "26B-A4B dense gate");
        check(r, 256, W.random(r, 1536, 6144), "E2B down_proj");
        // From Gemm.AUTOTUNE_FROM_ROWS the algorithm is timed per token bucket: 600 rows tune the 1024 bucket, 1000
        // rows reuse its choice (or the heuristics' first where it is not offered for them).
        W k = W.random(r, 8 * 256, 2816);
        check(r, 600, k, "26B-A4B k_proj, tuned");
        check(r, 1000, k, "26B-A4B k_proj, the tuned bucket's algorithm");
    }

    @Test
    void oddShapes() {
        SplittableRandom r = GpuTests.random("gemm odd");
        check(r, 7, W.random(r, 33, 64), "odd out");
        check(r, 5, W.random(r, 64, 40), "in a multiple of 8 only");
        check(r, 3, W.random(r, 17, 33), "odd in (2-byte aligned weight rows)");
        // One output column, over 64 rows: the error is relative to the largest |y|, and a single 16-term dot
        // product can cancel to near 0 (seen: 1.1e-2 of a tiny |y|), which says nothing about the kernel.
        check(r, 64, W.random(r, 1, 16), "one output");
    }

    @Test
    void outputsIntoColumnViews() {
        SplittableRandom r = GpuTests.random("gemm views");
        int tokens = 6;
        W k = W.random(r, 4096, 5376);
        var x = pair(uniform(r, tokens * 5376, -2, 2), tokens, 5376);
        int wide = 8192 + 2 * 4096;
        Tensor cpuWide = cpu().allocate(tokens, wide);
        Tensor gpuWide = poisoned(tokens, wide);
        // An aligned view (the k slice of a fused qkv output) and a misaligned one (offset 3 floats).
        cpu().matmul(x.cpu(), k.cpu(), cpuWide.columns(8192, 4096));
        gpu().matmul(x.gpu(), k.gpu(), gpuWide.columns(8192, 4096));
        cpu().matmul(x.cpu(), k.cpu(), cpuWide.columns(3, 4096));
        gpu().matmul(x.gpu(), k.gpu(), gpuWide.columns(3, 4096));
        assertClose("gemm", "into aligned view [6, 4096] of [6, 16384]",
                gpu().toHost(gpuWide.columns(8192, 4096)), cpu().toHost(cpuWide.columns(8192, 4096)), BF16_BOUND);
        assertClose("gemm", "into misaligned view [6, 4096] at column 3",
                gpu().toHost(gpuWide.columns(3, 4096)), cpu().toHost(cpuWide.columns(3, 4096)), BF16_BOUND);
        // And from a view: the attention output slice as GEMM input.
        var wideX = pair(uniform(r, tokens * (5376 + 5), -2, 2), tokens, 5376 + 5);
        Tensor cpuY = cpu().allocate(tokens, 4096);
        Tensor gpuY = poisoned(tokens, 4096);
        cpu().matmul(wideX.cpu().columns(5, 5376), k.cpu(), cpuY);
        gpu().matmul(wideX.gpu().columns(5, 5376), k.gpu(), gpuY);
        assertClose("gemm", "from a misaligned view [6, 5376]", gpu().toHost(gpuY), cpu().toHost(cpuY), BF16_BOUND);
    }
}
