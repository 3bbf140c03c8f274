package io.jemma.model;

import io.jemma.attention.AttentionBackend;
import io.jemma.attention.AttentionLayer;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.attention.KvPages;
import io.jemma.backend.ForwardingBackend;
import io.jemma.backend.DType;
import io.jemma.backend.HostTensor;
import io.jemma.backend.Tensor;
import io.jemma.backend.Weight;
import io.jemma.backend.cpu.CpuBackend;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;

/**
 * The CPU backend with the CUDA backend's roundings: weight matrices stored as bf16 (the CUDA backend
 * keeps vectors fp32, matrices bf16: a checkpoint stored in fp32, like the golden tiny-moe, is rounded
 * when uploaded), GEMM activation operands (the experts' too), stored
 * keys and values, and the attention's queries (a bf16 tensor-core operand) go through bf16 (the
 * attention kernels' bf16 softmax weights are not simulated). A GPU result that matches this closely computes what it should; what both
 * differ from transformers' fp32 is the cost of bf16, not a bug. (On the golden tiny-31b this simulation
 * reproduced the GPU's worst deviation from transformers, 4.450e-2 of the logit range, to four digits.)
 */
public final class Bf16RoundingBackend extends ForwardingBackend {
    private final CpuBackend cpu;

    public Bf16RoundingBackend(CpuBackend cpu) {
        super(cpu);
        this.cpu = cpu;
    }

    @Override
    public String name() {
        return "cpu-bf16-rounding";
    }

    /** Matrices (rank 2 and up) rounded to bf16 as CudaWeight stores them; vectors stay fp32. */
    @Override
    public Weight load(HostTensor tensor) {
        if (tensor.rank() < 2 || tensor.dtype() == DType.BF16) {
            return cpu.load(tensor);
        }
        float[] values = tensor.toFloatArray();
        MemorySegment rounded = Arena.ofAuto().allocate((long) Float.BYTES * values.length, Float.BYTES);
        for (int i = 0; i < values.length; i++) {
            rounded.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i, DType.BF16.round(values[i]));
        }
        return cpu.load(new HostTensor(tensor.name(), DType.F32, tensor.shape(), rounded));
    }

    /**
     * Projection outputs of the current forward that CudaBackend's GEMMs store as bf16 (more than 4 rows, columns % 8
     * == 0). By identity, emptied with the activations (the CPU's arena hands out equal records again).
     */
    private int bf16FromRows = io.jemma.backend.cuda.CudaBackend.BF16_PROJECTION_MIN_ROWS;

    /** As CudaBackend.bf16ProjectionsFromRows. */
    public Bf16RoundingBackend bf16ProjectionsFromRows(int rows) {
        bf16FromRows = Math.max(5, rows);
        return this;
    }

    private final java.util.Set<Tensor> bf16Outputs =
            java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());

    @Override
    public void releaseActivations() {
        bf16Outputs.clear();
        super.releaseActivations();
    }

    /**
     * As CudaBackend's unless -Djemma.cuda.bf16-projections=false (on by default, as there): from
     * {@link #bf16ProjectionsFromRows} rows (a prefill chunk) q, k, v, o_proj's and down_proj's outputs come out of
     * their GEMMs as bf16, which the QKV norm and the residual step read.
     */
    @Override
    public Tensor allocateMatmulOutput(int rows, int cols) {
        Tensor t = cpu.allocateScratch(rows, cols);
        if (io.jemma.backend.cuda.CudaBackend.BF16_PROJECTIONS && rows >= bf16FromRows && cols % 8 == 0) {
            bf16Outputs.add(t);
        }
        return t;
    }

    @Override
    public void matmul(Tensor x, Weight w, Tensor y) {
        cpu.matmul(rounded(x), w, y);
        if (bf16Outputs.contains(y)) {
            cpu.copy(rounded(y), y);
        }
    }

    /**
     * As CudaBackend's: from 5 rows (a prefill; up to 4 the GEMV keeps gate and up in fp32) the gate and up
     * projections come out of their GEMMs as bf16 before the activation; the product is rounded as down's operand.
     */
    @Override
    public void gatedMlpInput(Tensor x, Weight gate, Weight up, Tensor out) {
        if (x.rows() <= 4 || out.cols() % 8 != 0) {
            super.gatedMlpInput(x, gate, up, out);
            return;
        }
        Tensor g = cpu.allocate(x.rows(), out.cols());
        Tensor u = cpu.allocate(x.rows(), out.cols());
        matmul(x, gate, g);
        matmul(x, up, u);
        cpu.geluTanhMul(rounded(g), rounded(u), out);
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

    @Override
    public void mixtureOfExperts(Tensor x, Tensor routerLogits, int topK, Weight perExpertScale, Weight gateUp,
                                 Weight down, Tensor out) {
        // The expert GEMMs through this backend: their operands (x rows, gelu products) rounded, as on the GPU.
        cpu.mixtureOfExperts(x, routerLogits, topK, perExpertScale, gateUp, down, out, this);
    }
}
