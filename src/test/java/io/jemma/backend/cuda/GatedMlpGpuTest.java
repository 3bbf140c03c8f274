package io.jemma.backend.cuda;

import static io.jemma.backend.cuda.GpuTests.BF16_BOUND;
import static io.jemma.backend.cuda.GpuTests.assertClose;
import static io.jemma.backend.cuda.GpuTests.cpu;
import static io.jemma.backend.cuda.GpuTests.gpu;
import static io.jemma.backend.cuda.GpuTests.pair;
import static io.jemma.backend.cuda.GpuTests.randomBf16;
import static io.jemma.backend.cuda.GpuTests.uniform;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.jemma.backend.DType;
import io.jemma.backend.Tensor;
import io.jemma.backend.Weight;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * {@code Backend.gatedMlpInput} on the GPU ({@code gelu_tanh(x @ gate^T) * (x @ up^T)}) against the CPU's unfused
 * sequence (fp32 matmuls over the same bf16 weights, then geluTanhMul): the fused decode form (gemv.cu's
 * jemma_gemv_gelu_bf16_T, fp32 out and the bf16 copy; the default, useGemvGelu) at 1-4 tokens, and the prefill form (bf16 GEMM outputs,
 * activations.cu's jemma_gelu_tanh_mul_bf16, only the bf16 copy written) at real and odd shapes. Outputs and
 * their bf16 copies are poisoned with NaN first. The prefill form's bound is bf16's too: gate and up are rounded to
 * bf16 before the activation, the product once after (transformers rounds each of the three), a few 2^-9 each.
 */
@Tag("gpu")
class GatedMlpGpuTest {

    private record Mlp(Weight cpuGate, Weight cpuUp, Weight gpuGate, Weight gpuUp, int width, int hidden) {
        static Mlp random(SplittableRandom r, int width, int hidden) {
            var g = randomBf16(r, "gate", width, hidden, 1 / Math.sqrt(hidden));
            var u = randomBf16(r, "up", width, hidden, 1 / Math.sqrt(hidden));
            return new Mlp(cpu().load(g), cpu().load(u), gpu().load(g), gpu().load(u), width, hidden);
        }
    }

    /** The CPU reference: the interface's default (matmuls, then geluTanhMul). */
    private static float[] reference(Mlp m, GpuTests.Pair x, int tokens) {
        Tensor out = cpu().allocate(tokens, m.width());
        cpu().gatedMlpInput(x.cpu(), m.cpuGate(), m.cpuUp(), out);
        return cpu().toHost(out);
    }

    /** An input of allocateMatmulInput with its fp32 values and (when it has one) its bf16 copy set to NaN. */
    private static CudaTensor poisonedInput(int tokens, int width) {
        CudaTensor out = (CudaTensor) gpu().allocateMatmulInput(tokens, width);
        gpu().fill(out, Float.NaN);
        if (out.operand() != null) {
            gpu().context().fill32(out.operand().buffer(), 0, Math.max(1, (long) tokens * width / 2), 0x7FC07FC0);
        }
        return out;
    }

    /** The bf16 copy of t, widened to floats. */
    private static float[] copyOf(CudaTensor t) {
        int n = t.rows() * t.cols();
        float[] values = new float[n];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bits = arena.allocate((long) n * 2, 16);
            gpu().read(t.operand().buffer().slice(0, (long) n * 2), bits);
            for (int i = 0; i < n; i++) {
                values[i] = DType.bf16ToFloat(bits.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
            }
        }
        return values;
    }

    @Test
    void decodeMatchesTheCpu() {
        SplittableRandom r = GpuTests.random("gated mlp decode");
        Mlp[] shapes = {Mlp.random(r, 21504, 5376), Mlp.random(r, 2112, 2816), Mlp.random(r, 1000, 64)};
        for (boolean fused : new boolean[] {true, false}) {
            gpu().useGemvGelu(fused);
            try {
                for (int gemvRows : new int[] {1, Gemm.GEMV_MAX_ROWS}) {
                    gpu().gemvMaxRows(gemvRows);
                    try {
                        for (Mlp m : shapes) {
                            for (int tokens = 1; tokens <= gemvRows; tokens++) {
                                var x = pair(uniform(r, tokens * m.hidden(), -2, 2), tokens, m.hidden());
                                float[] want = reference(m, x, tokens);
                                CudaTensor out = poisonedInput(tokens, m.width());
                                gpu().gatedMlpInput(x.gpu(), m.gpuGate(), m.gpuUp(), out);
                                String what = tokens + " x [" + m.width() + ", " + m.hidden() + "] (GEMV up to "
                                        + gemvRows + " rows, " + (fused ? "fused" : "GEMV + gelu") + ")";
                                float[] got = gpu().toHost(out);
                                assertClose("gated mlp", "decode " + what, got, want, BF16_BOUND);
                                if (out.operand() != null) {
                                    // The copy is the fp32 values rounded, exactly.
                                    assertTrue(out.currentOperand() != 0, "bf16 copy current after " + what);
                                    float[] copy = copyOf(out);
                                    int differ = 0;
                                    for (int i = 0; i < got.length; i++) {
                                        differ += DType.bf16ToFloat(DType.floatToBf16(got[i])) != copy[i] ? 1 : 0;
                                    }
                                    GpuReport.check("gated mlp", "decode bf16 copy " + what + ": elements differing",
                                            differ, 0, differ == 0);
                                    assertEquals(0, differ, "bf16 copy of " + what);
                                }
                            }
                        }
                    } finally {
                        gpu().gemvMaxRows(1);
                    }
                }
            } finally {
                gpu().useGemvGelu(false);
            }
        }
    }

    @Test
    void prefillMatchesTheCpu() {
        SplittableRandom r = GpuTests.random("gated mlp prefill");
        record Case(int tokens, Mlp mlp) {
        }
        Mlp real = Mlp.random(r, 21504, 5376);
        Case[] cases = {new Case(40, real), new Case(333, real), new Case(512, Mlp.random(r, 2112, 2816)),
                new Case(7, Mlp.random(r, 1032, 64))};
        Weight[] down = new Weight[2];
        for (Case c : cases) {
            Mlp m = c.mlp();
            int tokens = c.tokens();
            var x = pair(uniform(r, tokens * m.hidden(), -2, 2), tokens, m.hidden());
            float[] want = reference(m, x, tokens);
            CudaTensor out = poisonedInput(tokens, m.width());
            gpu().gatedMlpInput(x.gpu(), m.gpuGate(), m.gpuUp(), out);
            String what = tokens + " x [" + m.width() + ", " + m.hidden() + "]";
            assertTrue(out.fp32Stale(), "prefill " + what + ": only the bf16 copy written");
            assertClose("gated mlp", "prefill " + what + " (bf16 copy)", copyOf(out), want, BF16_BOUND);
            assertThrows(IllegalStateException.class, () -> gpu().toHost(out), "fp32 of a copy-only tensor");
            if (m == real) {
                // And through the down projection, which reads the copy (the model's use).
                var d = randomBf16(r, "down", 5376, 21504, 1 / Math.sqrt(21504));
                if (down[0] == null) {
                    down[0] = cpu().load(d);
                    down[1] = gpu().load(d);
                }
                Tensor cpuIn = cpu().fromHost(want, tokens, m.width());
                Tensor cpuY = cpu().allocate(tokens, 5376);
                cpu().matmul(cpuIn, down[0], cpuY);
                Tensor gpuY = GpuTests.poisoned(tokens, 5376);
                gpu().matmul(out, down[1], gpuY);
                assertClose("gated mlp", "prefill " + what + " then down_proj", gpu().toHost(gpuY),
                        cpu().toHost(cpuY), BF16_BOUND);
            }
        }
    }

    /** An output without a bf16 copy at prefill size (a plain scratch tensor): the unfused sequence, fp32 out. */
    @Test
    void withoutACopyFallsBackToTheUnfusedSequence() {
        SplittableRandom r = GpuTests.random("gated mlp fallback");
        Mlp m = Mlp.random(r, 2112, 2816);
        int tokens = 24;
        var x = pair(uniform(r, tokens * m.hidden(), -2, 2), tokens, m.hidden());
        Tensor out = GpuTests.poisoned(tokens, m.width());
        gpu().gatedMlpInput(x.gpu(), m.gpuGate(), m.gpuUp(), out);
        assertClose("gated mlp", "prefill without a copy " + tokens + " x [2112, 2816]", gpu().toHost(out),
                reference(m, x, tokens), BF16_BOUND);
    }
}
