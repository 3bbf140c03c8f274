package io.jemma.model;

import io.jemma.attention.AttentionBackend;
import io.jemma.attention.AttentionLayer;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.attention.KvPages;
import io.jemma.backend.Backend;
import io.jemma.backend.DType;
import io.jemma.backend.HostTensor;
import io.jemma.backend.Positions;
import io.jemma.backend.QkvNormMode;
import io.jemma.backend.Tensor;
import io.jemma.backend.Weight;
import io.jemma.backend.cpu.CpuBackend;

import java.util.List;

/**
 * The CPU backend with the CUDA backend's roundings: GEMM activation operands (the experts' too), stored
 * keys and values, and the attention's queries (a bf16 tensor-core operand) go through bf16 (the
 * attention kernels' bf16 softmax weights are not simulated). A GPU result that matches this closely computes what it should; what both
 * differ from transformers' fp32 is the cost of bf16, not a bug. (On the golden tiny-31b this simulation
 * reproduced the GPU's worst deviation from transformers, 4.450e-2 of the logit range, to four digits.)
 */
public record Bf16RoundingBackend(CpuBackend cpu) implements Backend {

    @Override
    public String name() {
        return "cpu-bf16-rounding";
    }

    @Override
    public void matmul(Tensor x, Weight w, Tensor y) {
        cpu.matmul(rounded(x), w, y);
    }

    @Override
    public AttentionBackend attention(List<AttentionLayer> layers, KvGeometry geometry) {
        AttentionBackend inner = cpu.attention(layers, geometry);
        return new AttentionBackend() {
            @Override
            public void attend(AttentionLayer l, ForwardBatch b, KvPages pages, Tensor q, Tensor k, Tensor v,
                               Tensor out) {
                if (l.writesKv()) {
                    inner.attend(l, b, pages, rounded(q), rounded(k), rounded(v), out);
                } else {
                    inner.attend(l, b, pages, rounded(q), k, v, out);
                }
            }

            @Override
            public String name() {
                return "cpu-bf16-kv";
            }
        };
    }

    /** A copy of t with every value rounded to bf16 (nearest even), as the GPU stores it. */
    private Tensor rounded(Tensor t) {
        float[] values = cpu.toHost(t);
        for (int i = 0; i < values.length; i++) {
            values[i] = DType.BF16.round(values[i]);
        }
        return cpu.fromHost(values, t.rows(), t.cols());
    }

    // ---- everything else exactly as on the CPU ----

    @Override
    public Weight load(HostTensor tensor) {
        return cpu.load(tensor);
    }

    @Override
    public Tensor allocate(int rows, int cols) {
        return cpu.allocate(rows, cols);
    }

    @Override
    public void releaseActivations() {
        cpu.releaseActivations();
    }

    @Override
    public float[] toHost(Tensor t) {
        return cpu.toHost(t);
    }

    @Override
    public Tensor fromHost(float[] values, int rows, int cols) {
        return cpu.fromHost(values, rows, cols);
    }

    @Override
    public int kvBytesPerElement() {
        return cpu.kvBytesPerElement();
    }

    @Override
    public void embed(Weight table, int[] ids, float scale, Tensor out) {
        cpu.embed(table, ids, scale, out);
    }

    @Override
    public void add(Tensor y, Tensor x) {
        cpu.add(y, x);
    }

    @Override
    public void scale(Tensor y, float s) {
        cpu.scale(y, s);
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        cpu.copy(src, dst);
    }

    @Override
    public void gatherRows(Tensor src, int[] rows, Tensor dst) {
        cpu.gatherRows(src, rows, dst);
    }

    @Override
    public void rmsNorm(Tensor x, Weight w, float eps, Tensor out) {
        cpu.rmsNorm(x, w, eps, out);
    }

    @Override
    public void rmsNormGroups(Tensor x, int groupWidth, Weight w, float eps, Tensor out) {
        cpu.rmsNormGroups(x, groupWidth, w, eps, out);
    }

    @Override
    public void addRmsNorm(Tensor h, Tensor x, Weight w, float eps) {
        cpu.addRmsNorm(h, x, w, eps);
    }

    @Override
    public void qkvNorm(QkvNormMode mode, Tensor q, Tensor k, Tensor v, int headDim, Weight qWeight, Weight kWeight,
                        float eps, Positions positions, float[] invFreq) {
        cpu.qkvNorm(mode, q, k, v, headDim, qWeight, kWeight, eps, positions, invFreq);
    }

    @Override
    public void geluTanhMul(Tensor gate, Tensor up, Tensor out) {
        cpu.geluTanhMul(gate, up, out);
    }

    @Override
    public void softcap(Tensor x, float cap) {
        cpu.softcap(x, cap);
    }

    @Override
    public void mixtureOfExperts(Tensor x, Tensor routerLogits, int topK, Weight perExpertScale, Weight gateUp,
                                 Weight down, Tensor out) {
        // The expert GEMMs through this backend: their operands (x rows, gelu products) rounded, as on the GPU.
        cpu.mixtureOfExperts(x, routerLogits, topK, perExpertScale, gateUp, down, out, this);
    }

    @Override
    public void close() {
        cpu.close();
    }
}
