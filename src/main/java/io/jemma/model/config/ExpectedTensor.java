package io.jemma.model.config;

import java.util.Arrays;

/**
 * A tensor the text decoder needs, with the shape the config implies (PyTorch layout: a Linear's weight is
 * [out_features, in_features]).
 */
public record ExpectedTensor(String name, long[] shape) {

    public ExpectedTensor {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public long numel() {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ExpectedTensor t && name.equals(t.name) && Arrays.equals(shape, t.shape);
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return name + Arrays.toString(shape);
    }
}
