package io.jemma.model;

import io.jemma.backend.Backend;
import io.jemma.backend.Weight;

/** A weight source that forwards every call to another: tests override {@link #load} to watch or change tensors. */
public class ForwardingWeightSource implements WeightSource {
    protected final WeightSource delegate;

    public ForwardingWeightSource(WeightSource delegate) {
        this.delegate = delegate;
    }

    @Override
    public Weight load(Backend backend, String name, long... shape) {
        return delegate.load(backend, name, shape);
    }

    @Override
    public float layerScalar(String name) {
        return delegate.layerScalar(name);
    }

    @Override
    public long[] integers(String name, long length) {
        return delegate.integers(name, length);
    }

    @Override
    public void close() {
        delegate.close();
    }
}
