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
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** activations.cu and embed.cu against the CPU backend; and the memory round trips they rely on. */
@Tag("gpu")
class ActivationsGpuTest {

    @Test
    void geluTanhMul() {
        SplittableRandom r = GpuTests.random("geluTanhMul");
        int[][] shapes = {{1, 21504}, {7, 2112}, {130, 10240}, {3, 37}, {1, 704 * 2}};
        for (int[] s : shapes) {
            int rows = s[0];
            int cols = s[1];
            var g = pair(uniform(r, rows * cols, -6, 6), rows, cols);
            var u = pair(uniform(r, rows * cols, -3, 3), rows, cols);
            Tensor cpuOut = cpu().allocate(rows, cols);
            Tensor gpuOut = poisoned(rows, cols);
            cpu().geluTanhMul(g.cpu(), u.cpu(), cpuOut);
            gpu().geluTanhMul(g.gpu(), u.gpu(), gpuOut);
            assertClose("geluTanhMul", "[" + rows + ", " + cols + "]", gpu().toHost(gpuOut), cpu().toHost(cpuOut),
                    FP32_BOUND);
            // In place into gate, as the model calls it.
            cpu().geluTanhMul(g.cpu(), u.cpu(), g.cpu());
            gpu().geluTanhMul(g.gpu(), u.gpu(), g.gpu());
            assertClose("geluTanhMul", "in place [" + rows + ", " + cols + "]", gpu().toHost(g.gpu()),
                    cpu().toHost(g.cpu()), FP32_BOUND);
        }
        // Views: the PLE gate times one layer's slice of the per-layer inputs.
        var ple = pair(uniform(r, 5 * 42 * 256, -2, 2), 5, 42 * 256);
        var gate = pair(uniform(r, 5 * 256, -4, 4), 5, 256);
        cpu().geluTanhMul(gate.cpu(), ple.cpu().columns(7 * 256, 256), gate.cpu());
        gpu().geluTanhMul(gate.gpu(), ple.gpu().columns(7 * 256, 256), gate.gpu());
        assertClose("geluTanhMul", "PLE view [5, 256] of [5, 10752]", gpu().toHost(gate.gpu()),
                cpu().toHost(gate.cpu()), FP32_BOUND);
    }

    @Test
    void softcapScaleAdd() {
        SplittableRandom r = GpuTests.random("softcap/scale/add");
        var logits = pair(uniform(r, 2 * 262_144, -80, 80), 2, 262_144);
        cpu().softcap(logits.cpu(), 30f);
        gpu().softcap(logits.gpu(), 30f);
        assertClose("softcap", "[2, 262144] cap 30", gpu().toHost(logits.gpu()), cpu().toHost(logits.cpu()),
                FP32_BOUND);

        var h = pair(uniform(r, 9 * 5376, -5, 5), 9, 5376);
        cpu().scale(h.cpu(), 0.7071f);
        gpu().scale(h.gpu(), 0.7071f);
        assertClose("scale", "[9, 5376]", gpu().toHost(h.gpu()), cpu().toHost(h.cpu()), 0);

        var x = pair(uniform(r, 9 * 5376, -5, 5), 9, 5376);
        cpu().add(h.cpu(), x.cpu());
        gpu().add(h.gpu(), x.gpu());
        assertClose("add", "[9, 5376]", gpu().toHost(h.gpu()), cpu().toHost(h.cpu()), 0);

        // Into and from views.
        var wide = pair(uniform(r, 4 * 300, -1, 1), 4, 300);
        var narrow = pair(uniform(r, 4 * 100, -1, 1), 4, 100);
        cpu().add(wide.cpu().columns(101, 100), narrow.cpu());
        gpu().add(wide.gpu().columns(101, 100), narrow.gpu());
        cpu().scale(wide.cpu().columns(3, 50), -2f);
        gpu().scale(wide.gpu().columns(3, 50), -2f);
        assertClose("add/scale", "views of [4, 300]", gpu().toHost(wide.gpu()), cpu().toHost(wide.cpu()), 0);
    }

    @Test
    void copyGatherAndRoundTrips() {
        SplittableRandom r = GpuTests.random("copy/gather");
        var src = pair(uniform(r, 33 * 5376, -1, 1), 33, 5376);
        int[] rows = {32, 0, 5, 5, 17};
        Tensor cpuOut = cpu().allocate(rows.length, 5376);
        Tensor gpuOut = poisoned(rows.length, 5376);
        cpu().gatherRows(src.cpu(), rows, cpuOut);
        gpu().gatherRows(src.gpu(), rows, gpuOut);
        assertClose("gatherRows", "5 of [33, 5376]", gpu().toHost(gpuOut), cpu().toHost(cpuOut), 0);

        Tensor cpuCopy = cpu().allocate(33, 200);
        Tensor gpuCopy = poisoned(33, 200);
        cpu().copy(src.cpu().columns(1001, 200), cpuCopy);
        gpu().copy(src.gpu().columns(1001, 200), gpuCopy);
        assertClose("copy", "view [33, 200] to contiguous", gpu().toHost(gpuCopy), cpu().toHost(cpuCopy), 0);

        // allocate() is zeroed; toHost of a view packs its rows.
        float[] zeros = gpu().toHost(gpu().allocate(3, 1000));
        assertClose("allocate", "zeroed [3, 1000]", zeros, new float[3000], 0);
        assertClose("toHost", "view [33, 77]", gpu().toHost(src.gpu().columns(5000, 77)),
                cpu().toHost(src.cpu().columns(5000, 77)), 0);
        // A transfer larger than the pinned buffer's halves (64 MiB in two): 2 x 40 MiB.
        float[] big = uniform(r, 10 << 20, -1, 1);
        assertClose("fromHost/toHost", "[10, 1M] through the pinned halves", gpu().toHost(gpu().fromHost(big, 10, 1 << 20)),
                big, 0);
    }

    @Test
    void embed() {
        SplittableRandom r = GpuTests.random("embed");
        int[][] shapes = {{1000, 5376}, {300, 37}, {512, 256}};
        for (int[] s : shapes) {
            int vocab = s[0];
            int width = s[1];
            var table = tensor("embed", DType.BF16, new long[] {vocab, width}, uniform(r, vocab * width, -1, 1));
            var cpuTable = cpu().load(table);
            var gpuTable = gpu().load(table);
            int[] ids = new int[23];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = i == 3 ? ids[1] : r.nextInt(vocab);   // one repeated id
            }
            float scale = DType.BF16.round((float) Math.sqrt(width));
            Tensor cpuOut = cpu().allocate(ids.length, width);
            Tensor gpuOut = poisoned(ids.length, width);
            cpu().embed(cpuTable, ids, scale, cpuOut);
            gpu().embed(gpuTable, ids, scale, gpuOut);
            assertClose("embed", ids.length + " ids of [" + vocab + ", " + width + "]", gpu().toHost(gpuOut),
                    cpu().toHost(cpuOut), 0);
        }
        // f32 and f16 checkpoints: the table is rounded to bf16 on upload, so compare with a bf16 table.
        for (DType dtype : new DType[] {DType.F32, DType.F16}) {
            float[] values = uniform(r, 50 * 64, -1, 1);
            var original = tensor("embed", dtype, new long[] {50, 64}, values);
            float[] rounded = new float[values.length];
            for (int i = 0; i < values.length; i++) {
                rounded[i] = DType.BF16.round(dtype.round(values[i]));
            }
            var reference = tensor("embed", DType.F32, new long[] {50, 64}, rounded);
            int[] ids = {0, 49, 7};
            Tensor cpuOut = cpu().allocate(3, 64);
            Tensor gpuOut = poisoned(3, 64);
            cpu().embed(cpu().load(reference), ids, 2f, cpuOut);
            gpu().embed(gpu().load(original), ids, 2f, gpuOut);
            assertClose("embed", dtype + " table rounded to bf16 on upload", gpu().toHost(gpuOut),
                    cpu().toHost(cpuOut), 0);
        }
    }
}
