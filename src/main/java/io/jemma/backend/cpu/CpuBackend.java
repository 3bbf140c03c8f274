package io.jemma.backend.cpu;

import io.jemma.attention.AttentionBackend;
import io.jemma.attention.AttentionLayer;
import io.jemma.attention.KvGeometry;
import io.jemma.backend.Backend;
import io.jemma.backend.HostTensor;
import io.jemma.backend.Positions;
import io.jemma.backend.QkvNormMode;
import io.jemma.backend.Tensor;
import io.jemma.backend.Weight;

import java.util.Arrays;
import java.util.List;

/**
 * The pure-Java backend: weights stay memory-mapped, activations live on the heap, the matmuls use the
 * Vector API on all cores. It runs anywhere, and it is the reference the CUDA kernels are checked
 * against.
 */
public final class CpuBackend implements Backend {

    private final Matmul matmul = new Matmul();
    /**
     * Activations of the current forward, bump-allocated: steps of the same shape reuse the same memory,
     * so the garbage collector (whose pauses would land inside serving steps) sees none of it.
     */
    private float[] arena = new float[1 << 16];
    private int arenaTop;

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public Weight load(HostTensor tensor) {
        return CpuWeight.of(tensor);
    }

    @Override
    public Tensor allocate(int rows, int cols) {
        int n = Math.multiplyExact(rows, cols);
        if (n > arena.length - arenaTop) {
            // Tensors already handed out keep the old array; the next forward starts in the new one.
            arena = new float[Math.max(arena.length * 2, Math.addExact(arenaTop, n))];
            arenaTop = 0;
        }
        CpuTensor t = new CpuTensor(arena, arenaTop, rows, cols, cols);
        Arrays.fill(arena, arenaTop, arenaTop + n, 0f);
        arenaTop += n;
        return t;
    }

    @Override
    public void releaseActivations() {
        arenaTop = 0;
    }

    @Override
    public float[] toHost(Tensor t) {
        CpuTensor c = CpuTensor.of(t);
        float[] out = new float[c.rows() * c.cols()];
        for (int r = 0; r < c.rows(); r++) {
            System.arraycopy(c.data(), c.row(r), out, r * c.cols(), c.cols());
        }
        return out;
    }

    @Override
    public Tensor fromHost(float[] values, int rows, int cols) {
        if (values.length != rows * cols) {
            throw new IllegalArgumentException(values.length + " values for [" + rows + ", " + cols + "]");
        }
        return new CpuTensor(values.clone(), 0, rows, cols, cols);
    }

    @Override
    public AttentionBackend attention(List<AttentionLayer> layers, KvGeometry geometry) {
        return new CpuAttention(layers, geometry);
    }

    @Override
    public int kvBytesPerElement() {
        return Float.BYTES;
    }

    @Override
    public void embed(Weight table, int[] ids, float scale, Tensor out) {
        HostTensor t = CpuWeight.of(table).tensor();
        CpuTensor o = CpuTensor.of(out);
        long vocab = t.dim(0);
        int width = (int) t.dim(1);
        for (int r = 0; r < ids.length; r++) {
            if (ids[r] < 0 || ids[r] >= vocab) {
                throw new IllegalArgumentException("token id " + ids[r] + " outside the vocabulary of " + vocab);
            }
            long base = (long) ids[r] * width;
            int dst = o.row(r);
            for (int c = 0; c < width; c++) {
                o.data()[dst + c] = t.getFloat(base + c) * scale;
            }
        }
    }

    @Override
    public void matmul(Tensor x, Weight w, Tensor y) {
        CpuTensor cx = contiguous(x);
        CpuTensor cy = CpuTensor.of(y);
        HostTensor wt = CpuWeight.of(w).tensor();
        if (wt.dim(1) != cx.cols() || wt.dim(0) != cy.cols() || cx.rows() != cy.rows()) {
            throw new IllegalArgumentException("matmul " + shape(cx) + " x " + wt + " -> " + shape(cy));
        }
        if (cy.contiguous()) {
            matmul.matmul(cx.data(), cx.offset(), cx.rows(), cx.cols(), wt, cy.data(), cy.offset());
        } else {
            CpuTensor tmp = new CpuTensor(cy.rows(), cy.cols());
            matmul.matmul(cx.data(), cx.offset(), cx.rows(), cx.cols(), wt, tmp.data(), 0);
            copy(tmp, cy);
        }
    }

    @Override
    public void add(Tensor y, Tensor x) {
        CpuTensor cy = CpuTensor.of(y);
        CpuTensor cx = CpuTensor.of(x);
        sameShape(cx, cy);
        for (int r = 0; r < cy.rows(); r++) {
            VectorMath.add(cy.data(), cy.row(r), cx.data(), cx.row(r), cy.cols());
        }
    }

    @Override
    public void scale(Tensor y, float s) {
        CpuTensor cy = CpuTensor.of(y);
        for (int r = 0; r < cy.rows(); r++) {
            VectorMath.scale(cy.data(), cy.row(r), cy.cols(), s);
        }
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        CpuTensor s = CpuTensor.of(src);
        CpuTensor d = CpuTensor.of(dst);
        sameShape(s, d);
        for (int r = 0; r < s.rows(); r++) {
            System.arraycopy(s.data(), s.row(r), d.data(), d.row(r), s.cols());
        }
    }

    @Override
    public void gatherRows(Tensor src, int[] rows, Tensor dst) {
        CpuTensor s = CpuTensor.of(src);
        CpuTensor d = CpuTensor.of(dst);
        if (d.rows() != rows.length || d.cols() != s.cols()) {
            throw new IllegalArgumentException("gather " + rows.length + " rows of " + shape(s) + " into " + shape(d));
        }
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(s.data(), s.row(rows[i]), d.data(), d.row(i), s.cols());
        }
    }

    @Override
    public void rmsNorm(Tensor x, Weight w, float eps, Tensor out) {
        rmsNormGroups(x, x.cols(), w, eps, out);
    }

    @Override
    public void rmsNormGroups(Tensor x, int groupWidth, Weight w, float eps, Tensor out) {
        CpuTensor cx = CpuTensor.of(x);
        CpuTensor co = CpuTensor.of(out);
        sameShape(cx, co);
        if (cx.cols() % groupWidth != 0) {
            throw new IllegalArgumentException(cx.cols() + " columns in groups of " + groupWidth);
        }
        float[] weight = w == null ? null : CpuWeight.of(w).values();
        for (int r = 0; r < cx.rows(); r++) {
            for (int g = 0; g < cx.cols(); g += groupWidth) {
                Norms.rmsNorm(cx.data(), cx.row(r) + g, weight, eps, co.data(), co.row(r) + g, groupWidth);
            }
        }
    }

    @Override
    public void addRmsNorm(Tensor h, Tensor x, Weight w, float eps) {
        CpuTensor ch = CpuTensor.of(h);
        CpuTensor cx = CpuTensor.of(x);
        sameShape(ch, cx);
        float[] weight = CpuWeight.of(w).values();
        float[] tmp = new float[cx.cols()];
        for (int r = 0; r < cx.rows(); r++) {
            Norms.rmsNorm(cx.data(), cx.row(r), weight, eps, tmp, 0, cx.cols());
            VectorMath.add(ch.data(), ch.row(r), tmp, 0, cx.cols());
        }
    }

    @Override
    public void qkvNorm(QkvNormMode mode, Tensor q, Tensor k, Tensor v, int headDim, Weight qWeight,
                        Weight kWeight, float eps, Positions positions, float[] invFreq) {
        QkvNorm.apply(mode, CpuTensor.of(q), k == null ? null : CpuTensor.of(k), v == null ? null : CpuTensor.of(v),
                headDim, CpuWeight.of(qWeight).values(), kWeight == null ? null : CpuWeight.of(kWeight).values(),
                eps, positions.values(), invFreq);
    }

    @Override
    public void geluTanhMul(Tensor gate, Tensor up, Tensor out) {
        CpuTensor g = CpuTensor.of(gate);
        CpuTensor u = CpuTensor.of(up);
        CpuTensor o = CpuTensor.of(out);
        sameShape(g, u);
        sameShape(g, o);
        for (int r = 0; r < g.rows(); r++) {
            Activations.geluTanhMul(g.data(), g.row(r), u.data(), u.row(r), o.data(), o.row(r), g.cols());
        }
    }

    @Override
    public void softcap(Tensor x, float cap) {
        CpuTensor c = CpuTensor.of(x);
        for (int r = 0; r < c.rows(); r++) {
            int base = c.row(r);
            for (int i = 0; i < c.cols(); i++) {
                c.data()[base + i] = (float) (cap * Math.tanh(c.data()[base + i] / cap));
            }
        }
    }

    @Override
    public void mixtureOfExperts(Tensor x, Tensor routerLogits, int topK, Weight perExpertScale, Weight gateUp,
                                 Weight down, Tensor out) {
        mixtureOfExperts(x, routerLogits, topK, perExpertScale, gateUp, down, out, this);
    }

    /**
     * The same, with the expert GEMMs and gelu products issued to {@code gemms}, a backend over this
     * backend's tensors and weights: tests use it to reproduce another backend's operand roundings.
     */
    public void mixtureOfExperts(Tensor x, Tensor routerLogits, int topK, Weight perExpertScale, Weight gateUp,
                                 Weight down, Tensor out, Backend gemms) {
        new CpuExperts(gemms, CpuWeight.of(gateUp).tensor(), CpuWeight.of(down).tensor())
                .apply(contiguous(x), CpuTensor.of(routerLogits), topK, CpuWeight.of(perExpertScale).values(),
                        CpuTensor.of(out));
    }

    @Override
    public void close() {
        matmul.close();
    }

    /** x itself when contiguous, else a contiguous copy. */
    CpuTensor contiguous(Tensor x) {
        CpuTensor c = CpuTensor.of(x);
        if (c.contiguous()) {
            return c;
        }
        CpuTensor copy = new CpuTensor(c.rows(), c.cols());
        copy(c, copy);
        return copy;
    }

    private static void sameShape(CpuTensor a, CpuTensor b) {
        if (a.rows() != b.rows() || a.cols() != b.cols()) {
            throw new IllegalArgumentException("shapes differ: " + shape(a) + " vs " + shape(b));
        }
    }

    private static String shape(CpuTensor t) {
        return "[" + t.rows() + ", " + t.cols() + "]";
    }
}
