package io.jemma.speculative;

import io.jemma.attention.AttentionBackend;
import io.jemma.attention.AttentionLayer;
import io.jemma.attention.KvGeometry;
import io.jemma.backend.Backend;
import io.jemma.backend.DType;
import io.jemma.backend.Graph;
import io.jemma.backend.HostTensor;
import io.jemma.backend.Positions;
import io.jemma.backend.QkvNormMode;
import io.jemma.backend.Tensor;
import io.jemma.backend.Weight;
import io.jemma.engine.sampling.SampleResult;
import io.jemma.engine.sampling.SamplingBatch;

import java.util.ArrayList;
import java.util.List;

/**
 * A backend that does what {@code inner} does and records the shape {@code [rows, cols]} of every tensor the
 * model code copies to the host ({@link #toHost}) and the rows of every {@link #sample} call. What the inner
 * backend does inside its own operations (the CPU's {@code sample} reads its logits on the host) is its own
 * business, as on the GPU, where the sample kernel reads them in place.
 */
final class HostCopyRecordingBackend implements Backend {

    private final Backend inner;
    final List<int[]> copies = new ArrayList<>();
    final List<Integer> sampled = new ArrayList<>();

    HostCopyRecordingBackend(Backend inner) {
        this.inner = inner;
    }

    /** Forgets what was recorded so far. */
    void clear() {
        copies.clear();
        sampled.clear();
    }

    /** The recorded host copies with {@code cols} columns, as {@code [rows, cols]}. */
    List<int[]> copiesOfWidth(int cols) {
        return copies.stream().filter(s -> s[1] == cols).toList();
    }

    @Override
    public float[] toHost(Tensor t) {
        copies.add(new int[] {t.rows(), t.cols()});
        return inner.toHost(t);
    }

    @Override
    public SampleResult sample(Tensor logits, SamplingBatch batch) {
        sampled.add(batch.size());
        return inner.sample(logits, batch);
    }

    // ---- everything else as the inner backend does it ----

    @Override
    public String name() {
        return inner.name();
    }

    @Override
    public Weight load(HostTensor tensor) {
        return inner.load(tensor);
    }

    @Override
    public Tensor allocate(int rows, int cols) {
        return inner.allocate(rows, cols);
    }

    @Override
    public Tensor allocateScratch(int rows, int cols) {
        return inner.allocateScratch(rows, cols);
    }

    @Override
    public void releaseActivations() {
        inner.releaseActivations();
    }

    @Override
    public long activationMark() {
        return inner.activationMark();
    }

    @Override
    public void releaseActivationsTo(long mark) {
        inner.releaseActivationsTo(mark);
    }

    @Override
    public Weight dummyWeight(String name, long[] shape, DType dtype, long seed) {
        return inner.dummyWeight(name, shape, dtype, seed);
    }

    @Override
    public Tensor fromHost(float[] values, int rows, int cols) {
        return inner.fromHost(values, rows, cols);
    }

    @Override
    public AttentionBackend attention(List<AttentionLayer> layers, KvGeometry geometry) {
        return inner.attention(layers, geometry);
    }

    @Override
    public int kvBytesPerElement() {
        return inner.kvBytesPerElement();
    }

    @Override
    public void embed(Weight table, int[] ids, float scale, Tensor out) {
        inner.embed(table, ids, scale, out);
    }

    @Override
    public void matmul(Tensor x, Weight w, Tensor y) {
        inner.matmul(x, w, y);
    }

    @Override
    public void matmul(Tensor x, Weight[] ws, Tensor[] ys) {
        inner.matmul(x, ws, ys);
    }

    @Override
    public void add(Tensor y, Tensor x) {
        inner.add(y, x);
    }

    @Override
    public void scale(Tensor y, float s) {
        inner.scale(y, s);
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        inner.copy(src, dst);
    }

    @Override
    public void gatherRows(Tensor src, int[] rows, Tensor dst) {
        inner.gatherRows(src, rows, dst);
    }

    @Override
    public void rmsNorm(Tensor x, Weight w, float eps, Tensor out) {
        inner.rmsNorm(x, w, eps, out);
    }

    @Override
    public void rmsNormGroups(Tensor x, int groupWidth, Weight w, float eps, Tensor out) {
        inner.rmsNormGroups(x, groupWidth, w, eps, out);
    }

    @Override
    public void addRmsNorm(Tensor h, Tensor x, Weight w, float eps) {
        inner.addRmsNorm(h, x, w, eps);
    }

    @Override
    public void qkvNorm(QkvNormMode mode, Tensor q, Tensor k, Tensor v, int headDim, Weight qWeight, Weight kWeight,
                        float eps, Positions positions, float[] invFreq) {
        inner.qkvNorm(mode, q, k, v, headDim, qWeight, kWeight, eps, positions, invFreq);
    }

    @Override
    public void geluTanhMul(Tensor gate, Tensor up, Tensor out) {
        inner.geluTanhMul(gate, up, out);
    }

    @Override
    public void softcap(Tensor x, float cap) {
        inner.softcap(x, cap);
    }

    @Override
    public void mixtureOfExperts(Tensor x, Tensor routerLogits, int topK, Weight perExpertScale, Weight gateUp,
                                 Weight down, Tensor out) {
        inner.mixtureOfExperts(x, routerLogits, topK, perExpertScale, gateUp, down, out);
    }

    @Override
    public void beginStep(int[] ids, int[] positions, int[] logitRows) {
        inner.beginStep(ids, positions, logitRows);
    }

    @Override
    public boolean supportsGraphs() {
        return inner.supportsGraphs();
    }

    @Override
    public Graph captureGraph(Runnable work) {
        return inner.captureGraph(work);
    }

    @Override
    public void close() {
        inner.close();
    }
}
