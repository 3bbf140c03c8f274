package io.jemma.backend.cpu;

import io.jemma.backend.HostTensor;

import java.util.stream.IntStream;

/** Placeholder y = x @ W^T until the Vector API kernels land. */
final class NaiveMatmul {
    private NaiveMatmul() {
    }

    static void matmul(float[] x, int tokens, int inDim, HostTensor w, float[] y) {
        int outDim = (int) w.dim(0);
        IntStream.range(0, outDim).parallel().forEach(o -> {
            float[] row = new float[inDim];
            long base = (long) o * inDim;
            for (int i = 0; i < inDim; i++) {
                row[i] = w.getFloat(base + i);
            }
            for (int t = 0; t < tokens; t++) {
                float s = 0;
                int xo = t * inDim;
                for (int i = 0; i < inDim; i++) {
                    s += x[xo + i] * row[i];
                }
                y[t * outDim + o] = s;
            }
        });
    }
}
