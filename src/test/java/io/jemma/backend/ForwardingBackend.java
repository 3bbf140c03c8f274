package io.jemma.backend;

import io.jemma.attention.AttentionBackend;
import io.jemma.attention.AttentionLayer;
import io.jemma.attention.KvGeometry;

import java.util.List;

/**
 * A backend that hands every operation {@link Backend} requires, and {@code releaseActivations} and
 * {@code close}, to {@code delegate}; tests override what they change or watch. The interface's other
 * default methods are not forwarded: they keep their defaults, which call this backend's own operations
 * (a subclass forwards them too where it wants the delegate's).
 */
public abstract class ForwardingBackend implements Backend {
    protected final Backend delegate;

    protected ForwardingBackend(Backend delegate) {
        this.delegate = delegate;
    }

    @Override
    public String name() {
        return delegate.name();
    }

    @Override
    public Weight load(HostTensor tensor) {
        return delegate.load(tensor);
    }

    @Override
    public Tensor allocate(int rows, int cols) {
        return delegate.allocate(rows, cols);
    }

    @Override
    public void releaseActivations() {
        delegate.releaseActivations();
    }

    @Override
    public float[] toHost(Tensor t) {
        return delegate.toHost(t);
    }

    @Override
    public Tensor fromHost(float[] values, int rows, int cols) {
        return delegate.fromHost(values, rows, cols);
    }

    @Override
    public AttentionBackend attention(List<AttentionLayer> layers, KvGeometry geometry) {
        return delegate.attention(layers, geometry);
    }

    @Override
    public int kvBytesPerElement() {
        return delegate.kvBytesPerElement();
    }

    @Override
    public void embed(Weight table, int[] ids, float scale, Tensor out) {
        delegate.embed(table, ids, scale, out);
    }

    @Override
    public void matmul(Tensor x, Weight w, Tensor y) {
        delegate.matmul(x, w, y);
    }

    @Override
    public void add(Tensor y, Tensor x) {
        delegate.add(y, x);
    }

    @Override
    public void scale(Tensor y, float s) {
        delegate.scale(y, s);
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        delegate.copy(src, dst);
    }

    @Override
    public void gatherRows(Tensor src, int[] rows, Tensor dst) {
        delegate.gatherRows(src, rows, dst);
    }

    @Override
    public void rmsNorm(Tensor x, Weight w, float eps, Tensor out) {
        delegate.rmsNorm(x, w, eps, out);
    }

    @Override
    public void rmsNormGroups(Tensor x, int groupWidth, Weight w, float eps, Tensor out) {
        delegate.rmsNormGroups(x, groupWidth, w, eps, out);
    }

    @Override
    public void addRmsNorm(Tensor h, Tensor x, Weight w, float eps) {
        delegate.addRmsNorm(h, x, w, eps);
    }

    @Override
    public void qkvNorm(QkvNormMode mode, Tensor q, Tensor k, Tensor v, int headDim, Weight qWeight, Weight kWeight,
                        float eps, Positions positions, float[] invFreq) {
        delegate.qkvNorm(mode, q, k, v, headDim, qWeight, kWeight, eps, positions, invFreq);
    }

    @Override
    public void geluTanhMul(Tensor gate, Tensor up, Tensor out) {
        delegate.geluTanhMul(gate, up, out);
    }

    @Override
    public void softcap(Tensor x, float cap) {
        delegate.softcap(x, cap);
    }

    @Override
    public void mixtureOfExperts(Tensor x, Tensor routerLogits, int topK, Weight perExpertScale, Weight gateUp,
                                 Weight down, Tensor out) {
        delegate.mixtureOfExperts(x, routerLogits, topK, perExpertScale, gateUp, down, out);
    }

    @Override
    public void close() {
        delegate.close();
    }
}
