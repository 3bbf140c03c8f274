package io.jemma.backend;

import io.jemma.attention.KvWriteTarget;
import io.jemma.engine.sampling.SampleResult;
import io.jemma.engine.sampling.SamplingBatch;

/**
 * A {@link ForwardingBackend} that also hands the interface's default methods to {@code delegate}: the wrapped
 * backend then runs exactly as it would alone (its arena, graphs, fused kernels, device sampling), and a test
 * watches from outside (HostCopyRecordingBackend, RoutingRecorder). A new default method of {@link Backend}
 * belongs here too, or the wrapped run silently takes the composed default instead of the backend's own.
 */
public abstract class DelegatingBackend extends ForwardingBackend {

    protected DelegatingBackend(Backend delegate) {
        super(delegate);
    }

    @Override
    public Tensor allocateScratch(int rows, int cols) {
        return delegate.allocateScratch(rows, cols);
    }

    @Override
    public Tensor allocateMatmulInput(int rows, int cols) {
        return delegate.allocateMatmulInput(rows, cols);
    }

    @Override
    public Tensor allocateMatmulOutput(int rows, int cols) {
        return delegate.allocateMatmulOutput(rows, cols);
    }

    @Override
    public long activationMark() {
        return delegate.activationMark();
    }

    @Override
    public void releaseActivationsTo(long mark) {
        delegate.releaseActivationsTo(mark);
    }

    @Override
    public Weight dummyWeight(String name, long[] shape, DType dtype, long seed) {
        return delegate.dummyWeight(name, shape, dtype, seed);
    }

    @Override
    public void matmul(Tensor x, Weight[] ws, Tensor[] ys) {
        delegate.matmul(x, ws, ys);
    }

    @Override
    public void gatedMlpInput(Tensor x, Weight gate, Weight up, Tensor out) {
        delegate.gatedMlpInput(x, gate, up, out);
    }

    @Override
    public void addRmsNorm(Tensor h, Tensor x, Weight w, float eps, float scalar, Weight nextWeight, Tensor out) {
        delegate.addRmsNorm(h, x, w, eps, scalar, nextWeight, out);
    }

    @Override
    public boolean qkvNorm(QkvNormMode mode, Tensor q, Tensor k, Tensor v, int headDim, Weight qWeight, Weight kWeight,
                           float eps, Positions positions, float[] invFreq, KvWriteTarget target) {
        return delegate.qkvNorm(mode, q, k, v, headDim, qWeight, kWeight, eps, positions, invFreq, target);
    }

    @Override
    public void beginStep(int[] ids, int[] positions, int[] logitRows) {
        delegate.beginStep(ids, positions, logitRows);
    }

    @Override
    public boolean supportsGraphs() {
        return delegate.supportsGraphs();
    }

    @Override
    public Graph captureGraph(Runnable work) {
        return delegate.captureGraph(work);
    }

    @Override
    public boolean supportsArgmaxToStepIds() {
        return delegate.supportsArgmaxToStepIds();
    }

    @Override
    public void argmaxToStepIds(Tensor logits, int rows, Tensor picked, int column) {
        delegate.argmaxToStepIds(logits, rows, picked, column);
    }

    @Override
    public SampleResult sample(Tensor logits, SamplingBatch batch) {
        return delegate.sample(logits, batch);
    }
}
