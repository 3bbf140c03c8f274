package io.jemma.backend.cuda;

import static io.jemma.backend.cuda.GpuTests.gpu;
import static io.jemma.backend.cuda.GpuTests.tensor;
import static io.jemma.backend.cuda.GpuTests.uniform;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.jemma.attention.AttentionLayer;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KeysFromValues;
import io.jemma.attention.KvGeometry;
import io.jemma.attention.SequenceChunk;
import io.jemma.backend.DType;
import io.jemma.backend.Positions;
import io.jemma.backend.QkvNormMode;
import io.jemma.backend.Tensor;
import io.jemma.backend.Weight;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * K stored once (jemma.kv-store-k-eq-v-once): in a k_eq_v layer the fused QKV norm (QK_EQ_V) then stores V only,
 * the same bits as with K stored, and the keys the attention kernels derive from V (jemma_key_from_value,
 * materialized by jemma_paged_keys_from_values) equal the keys the QKV norm stores with K stored, within the bf16
 * rounding of V: per element |derived - stored| <= 2^-7 (|v_a w_a| + |v_b w_b|) over its RoPE pair (a, b). At the
 * 31B full layer's shape (4 KV heads of 512, a quarter of the pairs rotating), 256, and the golden tiny-31b's (one
 * KV head of 64), positions up to 3000, a prefill chunk and decode rows in one step.
 */
@Tag("gpu")
class KeysFromValuesGpuTest {
    private static final float EPS = 1e-6f;

    @Test
    void derivedKeysEqualStoredKeys() {
        SplittableRandom r = GpuTests.random("keys from values");
        for (int[] dims : new int[][] {{32, 4, 512}, {16, 8, 256}, {4, 1, 64}}) {
            check(r, dims[0], dims[1], dims[2]);
        }
    }

    private static void check(SplittableRandom r, int heads, int kvHeads, int hd) {
        String what = heads + "/" + kvHeads + "x" + hd;
        List<AttentionLayer> layers = List.of(new AttentionLayer(0, 0, true, heads, kvHeads, hd, 0, 1f));
        KvGeometry g = new KvGeometry(16, 3100 / 16 + 80, 3100 / 16 + 80);
        float[] invFreq = KeysFromValuesTests.proportional(hd);
        float[] kw = uniform(r, hd, 0.5, 1.5);
        Weight qWeight = gpu().load(tensor("q_norm", DType.BF16, new long[] {hd}, uniform(r, hd, 0.5, 1.5)));
        Weight kWeight = gpu().load(tensor("k_norm", DType.BF16, new long[] {hd}, kw));
        for (int i = 0; i < hd; i++) {
            kw[i] = DType.bf16ToFloat(DType.floatToBf16(kw[i]));
        }
        TritonAttention stored = new TritonAttention(gpu().context(), layers, g);
        TritonAttention derived = new TritonAttention(gpu().context(), layers, g,
                gpu().keySources(layers, List.of(new KeysFromValues(0, kWeight, invFreq))));
        assertNull(derived.buffers().keysOf(0), "K stored once: no key buffer");
        assertTrue(derived.buffers().storesKeyOnce(0));

        AttentionGpuTest.Pages pages = new AttentionGpuTest.Pages(r, g);
        List<SequenceChunk> chunks = List.of(new SequenceChunk(0, 3, 37, 0), new SequenceChunk(1, 2990, 1, 37),
                new SequenceChunk(2, 0, 1, 38));
        pages.extend(0, 40);
        pages.extend(1, 2991);
        pages.extend(2, 1);
        int tokens = 39;
        ForwardBatch batch = new ForwardBatch(chunks, tokens);
        int[] positions = batch.positions();
        int width = kvHeads * hd;
        float[] q = uniform(r, tokens * heads * hd, -3, 3);
        float[] k = uniform(r, tokens * width, -3, 3);
        int[] slots = new int[tokens];
        for (SequenceChunk c : chunks) {
            for (int i = 0; i < c.tokens(); i++) {
                slots[c.firstRow() + i] = pages.slot(c.sequenceId(), false, c.startPosition() + i);
            }
        }
        short[][] caches = new short[3][];        // stored K, stored V, derived V (the new rows)
        int c = 0;
        for (TritonAttention a : new TritonAttention[] {stored, derived}) {
            a.beginStep(batch, pages);
            Tensor gq = gpu().fromHost(q, tokens, heads * hd);
            Tensor gk = gpu().fromHost(k, tokens, width);
            Tensor gv = gpu().fromHost(new float[tokens * width], tokens, width);
            boolean done = gpu().qkvNorm(QkvNormMode.QK_EQ_V, gq, gk, gv, hd, qWeight, kWeight, EPS,
                    new Positions(positions), invFreq, a.kvWriteTarget(layers.get(0), batch, pages));
            assertTrue(done, "the CUDA backend stores through its attention's target");
            if (a == stored) {
                caches[c++] = rows(a.buffers().keysOf(0), slots, width);
            }
            caches[c++] = rows(a.buffers().valuesOf(0), slots, width);
        }
        int vDiffer = 0;
        for (int i = 0; i < caches[1].length; i++) {
            vDiffer += caches[1][i] != caches[2][i] ? 1 : 0;
        }
        GpuReport.check("keysFromValues", what + ": V elements differing from V with K stored", vDiffer, 0,
                vDiffer == 0);
        assertEquals(0, vDiffer, what + ": V stored once differs from V with K stored");

        // The keys the kernels derive from the cached values.
        DeviceBuffer out = gpu().deviceBuffer((long) tokens * width * 2);
        long[] at = gpu().context().uploads().put(slots, positions);
        PagedKvBuffers.KeySource source = derived.buffers().keySource(layers.get(0));
        gpu().context().launch("jemma_paged_keys_from_values", tokens, 1, 128, new KernelArgs()
                .ptr(derived.buffers().valuesOf(0).address()).ptr(out.address()).ptr(at[0]).ptr(at[1])
                .i32(kvHeads).i32(hd).ptr(source.weight()).ptr(source.inverseFrequencies()));
        short[] keys = new short[tokens * width];
        gpu().read(out, MemorySegment.ofArray(keys));

        int half = hd / 2;
        int exact = 0;
        int outside = 0;
        double num = 0;
        double den = 0;
        double worst = 0;
        for (int t = 0; t < tokens; t++) {
            for (int h = 0; h < kvHeads; h++) {
                for (int d = 0; d < hd; d++) {
                    int i = t * width + h * hd + d;
                    int pa = t * width + h * hd + d % half;
                    float s = DType.bf16ToFloat(caches[0][i]);
                    float x = DType.bf16ToFloat(keys[i]);
                    double scale = Math.abs(DType.bf16ToFloat(caches[1][pa]) * kw[d % half])
                            + Math.abs(DType.bf16ToFloat(caches[1][pa + half]) * kw[d % half + half]);
                    double diff = Math.abs(x - s);
                    exact += diff == 0 ? 1 : 0;
                    outside += diff <= Math.scalb(scale, -7) ? 0 : 1;
                    worst = Math.max(worst, scale == 0 ? diff : diff / scale);
                    num += diff * diff;
                    den += (double) s * s;
                }
            }
        }
        double rel = Math.sqrt(num / den);
        GpuReport.check("keysFromValues", what + ": derived K vs stored K, relative L2 (exact " + exact + " of "
                + keys.length + ", worst |diff| / (|a w_a| + |b w_b|) " + String.format("%.2e", worst) + ")", rel,
                1e-2, rel <= 1e-2 && outside == 0);
        assertEquals(0, outside, what + ": derived keys outside 2^-7 of their pair's scale");
        assertTrue(rel <= 1e-2, what + ": relative L2 " + rel);
    }

    /**
     * The golden tiny-31b (k_eq_v full layer: head dim 64, one KV head, 4 of 32 pairs rotating) with K stored once
     * and with K stored, on the general backend and on trtllm_mha where the model allows it (head dim 32 sliding
     * layers: triton only): the K-once model holds no key buffer for its full layer and the property
     * jemma.kv-store-k-eq-v-once turns it on; the two give the same greedy tokens (prompts prefilled, then 24
     * greedy steps each, the golden prompts in one batch) and logits within 2e-2 of their range at every step.
     */
    @Test
    void wholeModelKeyOnceMatchesKeyStored() {
        io.jemma.model.GoldenCheckpoint golden = io.jemma.model.GoldenCheckpoint.load("tiny-31b");
        io.jemma.model.config.TextConfig config = io.jemma.model.config.TextConfig.load(golden.dir());
        KvGeometry kv = new io.jemma.model.KvBudget(config, 2).forSequences(8, 160, 4, 128);
        GpuTests.gpu();
        assertEquals(Boolean.getBoolean("jemma.kv-store-k-eq-v-once"), new CudaBackend().storesKEqVOnce(),
                "the property sets the default");
        int fullLayer = config.layers().stream().filter(l -> l.kEqV()).findFirst().orElseThrow().index();
        CudaBackend onBackend = new CudaBackend();
        onBackend.storeKEqVOnce(true);
        CudaBackend offBackend = new CudaBackend();
        offBackend.storeKEqVOnce(false);
        try (var on = new io.jemma.model.Gemma4Model(config, io.jemma.model.weights.Checkpoint.open(golden.dir()),
                onBackend, kv);
             var off = new io.jemma.model.Gemma4Model(config, io.jemma.model.weights.Checkpoint.open(golden.dir()),
                     offBackend, kv)) {
            assertTrue(((TritonAttention) on.attention()).buffers().storesKeyOnce(fullLayer), "K once in the model");
            assertTrue(!((TritonAttention) off.attention()).buffers().storesKeyOnce(fullLayer));
            assertEquals(new io.jemma.model.KvBudget(config, 2).fullBytesPerToken() / 2,
                    io.jemma.model.KvBudget.of(config, onBackend).fullBytesPerToken(), "full layers cache V only");
            List<io.jemma.model.GoldenCheckpoint.Prompt> prompts = golden.prompts();
            int vocab = config.vocabSize();
            int steps = 24;
            var batch = golden.batchedPrompts(0);
            for (int i = 0; i < prompts.size(); i++) {
                on.startSequence(i, prompts.get(i).ids().length + steps + 1);
                off.startSequence(i, prompts.get(i).ids().length + steps + 1);
            }
            float[] a = on.forward(ForwardBatch.of(batch.layout()), batch.ids(), batch.lastRows());
            float[] b = off.forward(ForwardBatch.of(batch.layout()), batch.ids(), batch.lastRows());
            int same = 0;
            int all = 0;
            double worst = 0;
            int[] length = new int[prompts.size()];
            for (int i = 0; i < prompts.size(); i++) {
                length[i] = prompts.get(i).ids().length;
            }
            for (int step = 0; step <= steps; step++) {
                int[] next = new int[prompts.size()];
                for (int i = 0; i < prompts.size(); i++) {
                    float[] la = java.util.Arrays.copyOfRange(a, i * vocab, (i + 1) * vocab);
                    float[] lb = java.util.Arrays.copyOfRange(b, i * vocab, (i + 1) * vocab);
                    var dev = io.jemma.model.GoldenCheckpoint.LogitDeviation.of(lb, la);
                    worst = Math.max(worst, dev.relative());
                    int ta = argmax(la);
                    int tb = argmax(lb);
                    same += ta == tb ? 1 : 0;
                    all++;
                    next[i] = tb;
                }
                if (step == steps) {
                    break;
                }
                int[][] decode = new int[prompts.size()][];
                for (int i = 0; i < prompts.size(); i++) {
                    decode[i] = new int[] {i, length[i]++, 1};
                }
                int[] rows = java.util.stream.IntStream.range(0, prompts.size()).toArray();
                a = on.forward(ForwardBatch.of(decode), next, rows);
                b = off.forward(ForwardBatch.of(decode), next, rows);
            }
            GpuReport.check("keysFromValues", "tiny-31b K once vs K stored: greedy " + same + "/" + all
                    + " equal, worst logit deviation (of the range)", worst, 2e-2, same == all && worst <= 2e-2);
            assertEquals(all, same, "greedy tokens with K once differ from K stored");
            assertTrue(worst <= 2e-2, "logits differ by " + worst + " of their range");
        }
    }

    private static int argmax(float[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) {
            if (x[i] > x[best]) {
                best = i;
            }
        }
        return best;
    }

    /** The given rows of a [slots, width] bf16 cache buffer. */
    private static short[] rows(DeviceBuffer cache, int[] slots, int width) {
        short[] all = new short[(int) (cache.bytes() / 2)];
        gpu().read(cache, MemorySegment.ofArray(all));
        short[] out = new short[slots.length * width];
        for (int i = 0; i < slots.length; i++) {
            System.arraycopy(all, slots[i] * width, out, i * width, width);
        }
        return out;
    }
}
