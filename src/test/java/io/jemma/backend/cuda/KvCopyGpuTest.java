package io.jemma.backend.cuda;

import static io.jemma.backend.cuda.GpuTests.assertClose;
import static io.jemma.backend.cuda.GpuTests.cpu;
import static io.jemma.backend.cuda.GpuTests.gpu;
import static io.jemma.backend.cuda.GpuTests.poisoned;
import static io.jemma.backend.cuda.GpuTests.uniform;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.jemma.attention.AttentionBackend;
import io.jemma.attention.AttentionLayer;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.attention.SequenceChunk;
import io.jemma.backend.DType;
import io.jemma.backend.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * copyKv on the GPU (paged_kv.cu's jemma_paged_kv_copy through TritonAttention and TrtllmMhaAttention)
 * against the CPU backend's copyKv on the same inputs: both backends store the same random K/V (rounded to
 * bf16 beforehand, so the CPU's fp32 cache holds exactly what the GPU's bf16 cache holds) through the same
 * random page tables (a sliding and a full pool), both move the same entries, including moves whose
 * destination is an earlier move's source (the tree case that needs in-order copies) and a move onto
 * itself. Then (1) every stored row of every writing layer is read back from the GPU and compared bit for
 * bit with a host mirror on which the moves were applied in order, and (2) a decode query over the moved
 * entries attends through both backends, writing and shared layers, compared at bf16's bound.
 */
@Tag("gpu")
class KvCopyGpuTest {
    private static final double BOUND = 1e-2;

    @Test
    void tritonCopyMatchesCpu() {
        check("triton");
    }

    @Test
    void trtllmMhaCopyMatchesCpu() {
        check("trtllm_mha");
    }

    private static void check(String backendName) {
        SplittableRandom r = GpuTests.random("kv copy " + backendName);
        int heads = 8;
        // Head dims the XQA kernels serve (trtllm_mha), a sliding and a full pool, a shared reader of each.
        List<AttentionLayer> layers = List.of(
                new AttentionLayer(0, 0, true, heads, 4, 256, 64, (float) (1 / Math.sqrt(256))),
                new AttentionLayer(1, 1, true, heads, 1, 512, 0, (float) (1 / Math.sqrt(512))),
                new AttentionLayer(2, 0, false, heads, 4, 256, 64, (float) (1 / Math.sqrt(256))),
                new AttentionLayer(3, 1, false, heads, 1, 512, 0, (float) (1 / Math.sqrt(512))));
        // Pages of 16 (a size trtllm_mha compiles), shuffled: the sequences' pages are not contiguous.
        KvGeometry g = new KvGeometry(16, 16, 16);
        TritonAttention triton = new TritonAttention(gpu().context(), layers, g);
        AttentionBackend onGpu = backendName.equals("triton") ? triton
                : new TrtllmMhaAttention(gpu().context(), layers, g.pageSize(), triton.buffers(), triton);
        AttentionBackend onCpu = cpu().attention(layers, g);
        AttentionGpuTest.Pages pages = new AttentionGpuTest.Pages(r, g);
        Map<Integer, Map<Integer, List<float[]>>> mirror = new HashMap<>();

        // A prefill of 19 and 12 tokens, then a 6-token "verify" step written on top.
        int[] lengths = {19, 12};
        step(r, layers, pages, onGpu, onCpu, mirror, List.of(new SequenceChunk(0, 0, 19, 0),
                new SequenceChunk(1, 0, 12, 19)), false, backendName);
        step(r, layers, pages, onGpu, onCpu, mirror, List.of(new SequenceChunk(0, 19, 6, 0),
                new SequenceChunk(1, 12, 6, 6)), false, backendName);

        // Accepted tree paths: seq 0 indices 2, 3, 5 -> depths 1, 2, 3 (slot 20 <- 21 <- 22: each move's
        // destination is the next one's source); seq 1 indices 0, 1, 4 -> 0, 1, 2 (two moves onto themselves).
        int[][] from = {{21, 22, 24}, {12, 13, 16}};
        int[][] to = {{20, 21, 22}, {12, 13, 14}};
        for (int s = 0; s < 2; s++) {
            onGpu.copyKv(pages, s, from[s], to[s]);
            onCpu.copyKv(pages, s, from[s], to[s]);
            for (Map<Integer, List<float[]>> bySeq : mirror.values()) {
                List<float[]> rows = bySeq.get(s);
                for (int i = 0; i < from[s].length; i++) {
                    rows.set(to[s][i], rows.get(from[s][i]).clone());
                }
            }
        }
        lengths[0] = 23;
        lengths[1] = 15;

        // (1) the GPU cache, bit for bit, at every position written so far.
        int checked = 0;
        for (AttentionLayer l : layers) {
            if (!l.writesKv()) {
                continue;
            }
            int width = l.kvHeads() * l.headDim();
            boolean sliding = l.slidingWindow() > 0;
            for (int s = 0; s < 2; s++) {
                List<float[]> rows = mirror.get(l.layer()).get(s);
                for (int p = 0; p < rows.size(); p++) {
                    float[] got = readRow(triton.buffers().keysOf(l.layer()), pages.slot(s, sliding, p), width);
                    assertEquals(0, mismatches(got, rows.get(p)), backendName + " layer " + l.layer() + " seq " + s
                            + " position " + p + ": keys differ from the mirror after copyKv");
                    checked++;
                }
            }
        }
        System.out.println("kv copy " + backendName + ": " + checked + " key rows identical to the mirror");

        // (2) a decode query per sequence over the moved entries, both backends.
        step(r, layers, pages, onGpu, onCpu, mirror, List.of(new SequenceChunk(0, lengths[0], 1, 0),
                new SequenceChunk(1, lengths[1], 1, 1)), true, backendName);
    }

    /** One step through both backends with the same bf16-rounded K/V; compares outputs when {@code compare}. */
    private static void step(SplittableRandom r, List<AttentionLayer> layers, AttentionGpuTest.Pages pages,
                             AttentionBackend onGpu, AttentionBackend onCpu,
                             Map<Integer, Map<Integer, List<float[]>>> mirror, List<SequenceChunk> chunks,
                             boolean compare, String backendName) {
        int n = 0;
        for (SequenceChunk c : chunks) {
            n += c.tokens();
            pages.extend(c.sequenceId(), c.endPosition());
        }
        ForwardBatch b = new ForwardBatch(chunks, n);
        onGpu.beginStep(b, pages);
        onCpu.beginStep(b, pages);
        for (AttentionLayer l : layers) {
            int qw = l.heads() * l.headDim();
            int kw = l.kvHeads() * l.headDim();
            float[] q = bf16(uniform(r, n * qw, -2, 2));
            float[] k = bf16(uniform(r, n * kw, -1, 1));
            float[] v = bf16(uniform(r, n * kw, -1, 1));
            Tensor gOut = poisoned(n, qw);
            onGpu.attend(l, b, pages, gpu().fromHost(q, n, qw), gpu().fromHost(k, n, kw), gpu().fromHost(v, n, kw),
                    gOut);
            Tensor cOut = cpu().allocate(n, qw);
            onCpu.attend(l, b, pages, cpu().fromHost(q, n, qw), cpu().fromHost(k, n, kw), cpu().fromHost(v, n, kw),
                    cOut);
            if (l.writesKv()) {
                for (SequenceChunk c : chunks) {
                    List<float[]> rows = mirror.computeIfAbsent(l.layer(), x -> new HashMap<>())
                            .computeIfAbsent(c.sequenceId(), x -> new ArrayList<>());
                    for (int i = 0; i < c.tokens(); i++) {
                        float[] row = new float[kw];
                        System.arraycopy(k, (c.firstRow() + i) * kw, row, 0, kw);
                        while (rows.size() <= c.startPosition() + i) {
                            rows.add(null);
                        }
                        rows.set(c.startPosition() + i, row);
                    }
                }
            }
            if (compare) {
                assertClose("kv copy " + backendName, "decode after copyKv, layer " + l.layer()
                        + (l.writesKv() ? "" : " (shared)"), gpu().toHost(gOut), cpu().toHost(cOut), BOUND);
            }
        }
    }

    private static float[] bf16(float[] v) {
        for (int i = 0; i < v.length; i++) {
            v[i] = DType.bf16ToFloat(DType.floatToBf16(v[i]));
        }
        return v;
    }

    private static float[] readRow(DeviceBuffer buffer, int slot, int width) {
        MemorySegment host = Arena.ofAuto().allocate(2L * width, 16);
        gpu().context().synchronize();
        gpu().context().transfers().download(buffer, (long) slot * width * 2, host);
        float[] row = new float[width];
        for (int i = 0; i < width; i++) {
            row[i] = DType.bf16ToFloat(host.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
        }
        return row;
    }

    private static int mismatches(float[] got, float[] expected) {
        int bad = 0;
        for (int i = 0; i < got.length; i++) {
            if (Float.floatToRawIntBits(got[i]) != Float.floatToRawIntBits(expected[i])) {
                bad++;
            }
        }
        return bad;
    }
}
