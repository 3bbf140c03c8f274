package io.jemma.backend.cuda;

import static io.jemma.backend.cuda.GpuTests.FP32_BOUND;
import static io.jemma.backend.cuda.GpuTests.assertClose;
import static io.jemma.backend.cuda.GpuTests.cpu;
import static io.jemma.backend.cuda.GpuTests.gpu;
import static io.jemma.backend.cuda.GpuTests.pair;
import static io.jemma.backend.cuda.GpuTests.poisoned;
import static io.jemma.backend.cuda.GpuTests.tensor;
import static io.jemma.backend.cuda.GpuTests.uniform;

import io.jemma.backend.DType;
import io.jemma.backend.Tensor;
import io.jemma.backend.Weight;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** norms.cu against the CPU backend: rmsNorm, rmsNormGroups, addRmsNorm at Gemma 4's widths and odd ones. */
@Tag("gpu")
class NormsGpuTest {
    private static final float EPS = 1e-6f;

    /** A norm weight as checkpoints hold it (bf16 [n], values near 1), loaded on both backends. */
    private record NormWeight(Weight cpu, Weight gpu) {
        static NormWeight random(SplittableRandom r, int n) {
            var t = tensor("norm", DType.BF16, new long[] {n}, uniform(r, n, 0.5, 1.5));
            return new NormWeight(GpuTests.cpu().load(t), GpuTests.gpu().load(t));
        }
    }

    private static void rmsNormCase(SplittableRandom r, int rows, int width, int group, boolean weighted, String what) {
        float[] x = uniform(r, rows * width, -3, 3);
        var in = pair(x, rows, width);
        NormWeight w = weighted ? NormWeight.random(r, group) : null;
        Tensor cpuOut = cpu().allocate(rows, width);
        Tensor gpuOut = poisoned(rows, width);
        cpu().rmsNormGroups(in.cpu(), group, w == null ? null : w.cpu(), EPS, cpuOut);
        gpu().rmsNormGroups(in.gpu(), group, w == null ? null : w.gpu(), EPS, gpuOut);
        assertClose("rmsNorm", what + " [" + rows + ", " + width + "]/" + group + (weighted ? "" : " no weight"),
                gpu().toHost(gpuOut), cpu().toHost(cpuOut), FP32_BOUND);
    }

    @Test
    void rowsAtModelWidths() {
        SplittableRandom r = GpuTests.random("rmsNorm rows");
        for (int rows : new int[] {1, 3, 64}) {
            for (int width : new int[] {5376, 2816, 2560, 1536}) {
                rmsNormCase(r, rows, width, width, true, "hidden");
            }
        }
        rmsNormCase(r, 5, 5376, 5376, false, "hidden");
        rmsNormCase(r, 7, 37, 37, true, "odd width (scalar path)");
        rmsNormCase(r, 2, 1, 1, true, "width 1");
        rmsNormCase(r, 70_000, 8, 8, true, "more rows than a grid's y dimension");
    }

    @Test
    void groupsAtHeadAndPleWidths() {
        SplittableRandom r = GpuTests.random("rmsNorm groups");
        rmsNormCase(r, 7, 32 * 256, 256, true, "32 heads x 256");
        rmsNormCase(r, 5, 16 * 512, 512, true, "16 heads x 512");
        rmsNormCase(r, 3, 42 * 256, 256, true, "PLE 42 layers x 256");
        rmsNormCase(r, 4, 16 * 256, 256, false, "v norm 16 x 256");
        rmsNormCase(r, 3, 6 * 10, 10, true, "groups of 10 (scalar path)");
    }

    @Test
    void inPlaceAndColumnViews() {
        SplittableRandom r = GpuTests.random("rmsNorm views");
        int rows = 9;
        int wide = 3 * 5376 + 5;
        float[] x = uniform(r, rows * wide, -2, 2);
        var in = pair(x, rows, wide);
        NormWeight w = NormWeight.random(r, 5376);
        // In place on an aligned view, and out of place from a misaligned view (offset 5: scalar path).
        Tensor cpuView = in.cpu().columns(5376, 5376);
        Tensor gpuView = in.gpu().columns(5376, 5376);
        cpu().rmsNorm(cpuView, w.cpu(), EPS, cpuView);
        gpu().rmsNorm(gpuView, w.gpu(), EPS, gpuView);
        Tensor cpuOut = cpu().allocate(rows, 5376);
        Tensor gpuOut = poisoned(rows, 5376);
        cpu().rmsNorm(in.cpu().columns(2 * 5376 + 5, 5376), w.cpu(), EPS, cpuOut);
        gpu().rmsNorm(in.gpu().columns(2 * 5376 + 5, 5376), w.gpu(), EPS, gpuOut);
        assertClose("rmsNorm", "in place on a view [9, 5376] of [9, 16133]", gpu().toHost(in.gpu()),
                cpu().toHost(in.cpu()), FP32_BOUND);
        assertClose("rmsNorm", "from a misaligned view [9, 5376]", gpu().toHost(gpuOut), cpu().toHost(cpuOut),
                FP32_BOUND);
    }

    @Test
    void addRmsNorm() {
        SplittableRandom r = GpuTests.random("addRmsNorm");
        int[][] shapes = {{1, 5376}, {17, 2816}, {64, 5376}, {4, 37}, {2, 1536}};
        for (int[] s : shapes) {
            int rows = s[0];
            int width = s[1];
            var h = pair(uniform(r, rows * width, -4, 4), rows, width);
            var x = pair(uniform(r, rows * width, -3, 3), rows, width);
            NormWeight w = NormWeight.random(r, width);
            cpu().addRmsNorm(h.cpu(), x.cpu(), w.cpu(), EPS);
            gpu().addRmsNorm(h.gpu(), x.gpu(), w.gpu(), EPS);
            assertClose("addRmsNorm", "[" + rows + ", " + width + "]", gpu().toHost(h.gpu()), cpu().toHost(h.cpu()),
                    FP32_BOUND);
        }
    }

    /**
     * The fused residual step (h = (h + rmsNorm(x) w) s; out = rmsNorm(h) w') against the CPU's unfused ops, with
     * and without the layer scalar and the next norm (out untouched without it), one row (decode) to many, and
     * a width the kernel does not take (the unfused fallback).
     */
    @Test
    void fusedAddRmsNormNext() {
        SplittableRandom r = GpuTests.random("addRmsNorm next");
        int[][] shapes = {{1, 5376}, {3, 2816}, {64, 5376}, {300, 5376}, {2, 1536}, {4, 37}, {1, 16384}, {2, 16388}};
        for (int[] s : shapes) {
            int rows = s[0];
            int width = s[1];
            for (int variant = 0; variant < 3; variant++) {
                float scalar = variant == 1 ? 1f : 0.37f;
                boolean next = variant != 2;
                var h = pair(uniform(r, rows * width, -4, 4), rows, width);
                var x = pair(uniform(r, rows * width, -3, 3), rows, width);
                NormWeight w = NormWeight.random(r, width);
                NormWeight nw = next ? NormWeight.random(r, width) : null;
                Tensor cpuOut = cpu().allocate(rows, width);
                Tensor gpuOut = poisoned(rows, width);
                cpu().addRmsNorm(h.cpu(), x.cpu(), w.cpu(), EPS, scalar, next ? nw.cpu() : null, cpuOut);
                gpu().addRmsNorm(h.gpu(), x.gpu(), w.gpu(), EPS, scalar, next ? nw.gpu() : null, gpuOut);
                String what = "[" + rows + ", " + width + "] scalar " + scalar + (next ? " + next norm" : "");
                assertClose("addRmsNorm fused", "h " + what, gpu().toHost(h.gpu()), cpu().toHost(h.cpu()), FP32_BOUND);
                float[] out = gpu().toHost(gpuOut);
                if (next) {
                    assertClose("addRmsNorm fused", "out " + what, out, cpu().toHost(cpuOut), FP32_BOUND);
                } else {
                    int touched = 0;
                    for (float f : out) {
                        touched += Float.isNaN(f) ? 0 : 1;
                    }
                    org.junit.jupiter.api.Assertions.assertEquals(0, touched, "out written without a next norm");
                }
            }
        }
    }

    /**
     * The residual step reading x from a projection's bf16-only output (a prefill's o_proj / down_proj GEMM with bf16
     * D, CudaBackend.allocateBf16Output): h and out against the CPU on the same (bf16) values, its fp32 memory
     * poisoned;
     * at 5-8 rows the prefetching form, above the general one. Then the GEMM itself: it stores only the copy, which
     * equals bf16 of the fp32 GEMM within one rounding, and an fp32 reader (rmsNorm) widens it first.
     */
    @Test
    void fusedAddRmsNormNextFromBf16Projection() {
        SplittableRandom r = GpuTests.random("addRmsNorm next bf16 x");
        for (int[] s : new int[][] {{5, 5376}, {8, 2816}, {64, 5376}, {300, 5376}, {40, 2560}, {9, 1536}}) {
            int rows = s[0];
            int width = s[1];
            for (boolean next : new boolean[] {true, false}) {
                var h = pair(uniform(r, rows * width, -4, 4), rows, width);
                var x = GpuTests.bf16OnlyPair(uniform(r, rows * width, -3, 3), rows, width);
                NormWeight w = NormWeight.random(r, width);
                NormWeight nw = next ? NormWeight.random(r, width) : null;
                Tensor cpuOut = cpu().allocate(rows, width);
                Tensor gpuOut = poisoned(rows, width);
                cpu().addRmsNorm(h.cpu(), x.cpu(), w.cpu(), EPS, 0.37f, next ? nw.cpu() : null, cpuOut);
                gpu().addRmsNorm(h.gpu(), x.gpu(), w.gpu(), EPS, 0.37f, next ? nw.gpu() : null, gpuOut);
                String what = "[" + rows + ", " + width + "] bf16 x" + (next ? " + next norm" : "");
                assertClose("addRmsNorm fused", "h " + what, gpu().toHost(h.gpu()), cpu().toHost(h.cpu()), FP32_BOUND);
                if (next) {
                    assertClose("addRmsNorm fused", "out " + what, gpu().toHost(gpuOut), cpu().toHost(cpuOut),
                            FP32_BOUND);
                }
            }
        }
        int rows = 40;
        int in = 2816;
        int out = 1536;
        var wt = tensor("w", DType.BF16, new long[] {out, in}, uniform(r, out * in, -0.05, 0.05));
        Weight mat = gpu().load(wt);
        Tensor x = gpu().fromHost(uniform(r, rows * in, -3, 3), rows, in);
        CudaTensor y = gpu().allocateBf16Output(rows, out);
        gpu().fill(y, Float.NaN);
        gpu().matmul(x, mat, y);
        org.junit.jupiter.api.Assertions.assertTrue(y.fp32Stale() && y.onlyOperand() != 0, "GEMM stored only bf16");
        org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, () -> gpu().toHost(y));
        Tensor reference = gpu().allocate(rows, out);
        gpu().matmul(x, mat, reference);
        float[] ref = gpu().toHost(reference);
        short[] bf = new short[rows * out];
        gpu().read(y.operand().buffer(), java.lang.foreign.MemorySegment.ofArray(bf));
        float[] got = new float[bf.length];
        for (int i = 0; i < bf.length; i++) {
            got[i] = Float.intBitsToFloat((bf[i] & 0xFFFF) << 16);
        }
        assertClose("matmul bf16 output", "[" + rows + ", " + in + "] x [" + out + "]", got, ref,
                GpuTests.BF16_BOUND / 2);
        // An fp32 reader widens the copy: rmsNorm of it equals rmsNorm of the same values uploaded.
        NormWeight w = NormWeight.random(r, out);
        Tensor viaWiden = poisoned(rows, out);
        gpu().rmsNorm(y, w.gpu(), EPS, viaWiden);
        Tensor direct = poisoned(rows, out);
        gpu().rmsNorm(gpu().fromHost(got, rows, out), w.gpu(), EPS, direct);
        assertClose("rmsNorm of a bf16 output", "widened", gpu().toHost(viaWiden), gpu().toHost(direct), 0);
    }

    /**
     * The residual step at decode rows (1 to 8: the prefetching one-block form, up to width 8192; the general
     * one above) at the models' widths, through NormKernels directly so that the bf16 copy is written too: h and
     * out against the CPU, the copy exactly bf16(out), every element of the poisoned out and copy written.
     */
    @Test
    void fusedAddRmsNormNextAtDecodeRows() {
        SplittableRandom r = GpuTests.random("addRmsNorm next decode rows");
        NormKernels norms = new NormKernels(gpu().context());
        for (int width : new int[] {5376, 2816, 2560, 1536, 16384}) {
            for (int rows : new int[] {1, 2, 5, 8}) {
                var h = pair(uniform(r, rows * width, -4, 4), rows, width);
                var x = pair(uniform(r, rows * width, -3, 3), rows, width);
                NormWeight w = NormWeight.random(r, width);
                NormWeight nw = NormWeight.random(r, width);
                float scalar = 0.37f;
                Tensor cpuOut = cpu().allocate(rows, width);
                Tensor gpuOut = poisoned(rows, width);
                DeviceBuffer copy = gpu().deviceBuffer((long) rows * width * 2);
                gpu().context().fill32(copy, 0, (long) rows * width / 2, 0x7FC07FC0);
                cpu().addRmsNorm(h.cpu(), x.cpu(), w.cpu(), EPS, scalar, nw.cpu(), cpuOut);
                norms.addRmsNormNext(CudaTensor.of(h.gpu()), CudaTensor.of(x.gpu()), 0, CudaWeight.of(w.gpu()), scalar,
                        CudaWeight.of(nw.gpu()), CudaTensor.of(gpuOut), copy.address(), EPS);
                String what = "[" + rows + ", " + width + "] decode rows";
                assertClose("addRmsNorm fused", "h " + what, gpu().toHost(h.gpu()), cpu().toHost(h.cpu()), FP32_BOUND);
                float[] out = gpu().toHost(gpuOut);
                assertClose("addRmsNorm fused", "out " + what, out, cpu().toHost(cpuOut), FP32_BOUND);
                short[] bf = new short[rows * width];
                gpu().read(copy, java.lang.foreign.MemorySegment.ofArray(bf));
                int differ = 0;
                for (int i = 0; i < bf.length; i++) {
                    differ += bf[i] != DType.floatToBf16(out[i]) ? 1 : 0;
                }
                GpuReport.check("addRmsNorm fused", "bf16 copy " + what + ": elements not bf16(out)", differ, 0,
                        differ == 0);
                org.junit.jupiter.api.Assertions.assertEquals(0, differ, "bf16 copy " + what);
            }
        }
    }

    /**
     * Tensors from allocateMatmulInput: the bf16 copy their writer (rmsNorm, the fused addRmsNorm, geluTanhMul)
     * stores makes the GEMM give exactly what it gives from the same values converted by the GEMM itself (the
     * fused addRmsNorm stores only the copy at GEMM rows: its fp32 twin from a plain tensor); and a
     * later write by another op (scale) makes the GEMM convert again (no stale copy).
     */
    @Test
    void matmulInputCopies() {
        SplittableRandom r = GpuTests.random("matmul input copies");
        int rows = 40;
        int width = 2816;
        int out = 96;
        var wt = tensor("w", DType.BF16, new long[] {out, width}, uniform(r, out * width, -0.05, 0.05));
        Weight mat = gpu().load(wt);
        var h = pair(uniform(r, rows * width, -4, 4), rows, width);
        var x = pair(uniform(r, rows * width, -3, 3), rows, width);
        NormWeight w = NormWeight.random(r, width);
        NormWeight nw = NormWeight.random(r, width);
        for (int writer = 0; writer < 4; writer++) {
            CudaTensor in = (CudaTensor) gpu().allocateMatmulInput(rows, width);
            org.junit.jupiter.api.Assertions.assertNotNull(in.operand(), "a GEMM-sized input has a bf16 copy");
            gpu().fill(in, Float.NaN);
            gpu().context().fill32(in.operand().buffer(), 0, (long) rows * width / 2, 0x7FC07FC0);
            String what;
            Tensor fp32Twin = null;
            switch (writer) {
                case 0 -> {
                    gpu().rmsNorm(h.gpu(), w.gpu(), EPS, in);
                    what = "rmsNorm";
                }
                case 1 -> {
                    // At GEMM rows the step stores only the bf16 copy: the fp32 twin comes from the same step
                    // into a plain tensor, over a copy of h (the step updates h in place).
                    Tensor hAgain = gpu().allocate(rows, width);
                    gpu().copy(h.gpu(), hAgain);
                    fp32Twin = gpu().allocate(rows, width);
                    gpu().addRmsNorm(hAgain, x.gpu(), w.gpu(), EPS, 0.5f, nw.gpu(), fp32Twin);
                    gpu().addRmsNorm(h.gpu(), x.gpu(), w.gpu(), EPS, 0.5f, nw.gpu(), in);
                    what = "addRmsNorm + next";
                    org.junit.jupiter.api.Assertions.assertTrue(in.fp32Stale(), "fp32 values not written at 40 rows");
                    CudaTensor stale = in;
                    org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                            () -> gpu().toHost(stale), "reading the unwritten fp32 values");
                }
                case 2 -> {
                    gpu().copy(x.gpu(), in);
                    gpu().geluTanhMul(in, h.gpu(), in);
                    what = "geluTanhMul";
                }
                default -> {
                    gpu().rmsNorm(h.gpu(), w.gpu(), EPS, in);
                    gpu().scale(in, 3f);
                    what = "rmsNorm then scale (copy stale)";
                }
            }
            org.junit.jupiter.api.Assertions.assertEquals(writer != 3, in.currentOperand() != 0, what);
            Tensor plain = fp32Twin;
            if (plain == null) {
                plain = gpu().allocate(rows, width);
                gpu().copy(in, plain);
            }
            Tensor viaCopy = poisoned(rows, out);
            Tensor viaConversion = poisoned(rows, out);
            gpu().matmul(in, mat, viaCopy);
            gpu().matmul(plain, mat, viaConversion);
            float[] a = gpu().toHost(viaCopy);
            float[] b = gpu().toHost(viaConversion);
            int differ = 0;
            for (int i = 0; i < a.length; i++) {
                differ += Float.floatToRawIntBits(a[i]) != Float.floatToRawIntBits(b[i]) ? 1 : 0;
            }
            GpuReport.check("matmul input copy", what + " [" + rows + ", " + width + "]: GEMM outputs differing",
                    differ, 0, differ == 0);
            org.junit.jupiter.api.Assertions.assertEquals(0, differ, what + ": GEMM from the writer's bf16 copy");
        }
    }
}
