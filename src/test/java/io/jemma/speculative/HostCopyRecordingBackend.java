package io.jemma.speculative;

import io.jemma.backend.Backend;
import io.jemma.backend.DelegatingBackend;
import io.jemma.backend.Tensor;
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
final class HostCopyRecordingBackend extends DelegatingBackend {

    final List<int[]> copies = new ArrayList<>();
    final List<Integer> sampled = new ArrayList<>();

    HostCopyRecordingBackend(Backend inner) {
        super(inner);
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
        return delegate.toHost(t);
    }

    @Override
    public SampleResult sample(Tensor logits, SamplingBatch batch) {
        sampled.add(batch.size());
        return delegate.sample(logits, batch);
    }
}
