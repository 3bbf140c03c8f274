package io.jemma.backend.cpu;

import io.jemma.backend.QkvNormMode;

/**
 * The fused Gemma QKV norm on the CPU: per (token, head) one rms, the weight, and RoPE in the
 * half-split ({@code rotate_half}) form.
 */
final class QkvNorm {
    private QkvNorm() {
    }

    static void apply(QkvNormMode mode, CpuTensor q, CpuTensor k, CpuTensor v, int headDim, float[] qw, float[] kw,
                      float eps, int[] positions, float[] invFreq) {
        float[] cos = new float[headDim / 2];
        float[] sin = new float[headDim / 2];
        for (int r = 0; r < q.rows(); r++) {
            angles(positions[r], invFreq, cos, sin);
            for (int h = 0; h < q.cols(); h += headDim) {
                int at = q.row(r) + h;
                Norms.rmsNorm(q.data(), at, qw, eps, q.data(), at, headDim);
                rotate(q.data(), at, headDim, cos, sin);
            }
            if (mode == QkvNormMode.Q_ONLY) {
                continue;
            }
            for (int h = 0; h < k.cols(); h += headDim) {
                int ka = k.row(r) + h;
                int va = v.row(r) + h;
                if (mode == QkvNormMode.QK_EQ_V) {
                    // One rms serves both: V = n, K = rope(n * k_w), from the one raw projection in k.
                    Norms.rmsNorm(k.data(), ka, null, eps, v.data(), va, headDim);
                    for (int i = 0; i < headDim; i++) {
                        k.data()[ka + i] = v.data()[va + i] * kw[i];
                    }
                } else {
                    Norms.rmsNorm(k.data(), ka, kw, eps, k.data(), ka, headDim);
                    Norms.rmsNorm(v.data(), va, null, eps, v.data(), va, headDim);
                }
                rotate(k.data(), ka, headDim, cos, sin);
            }
        }
    }

    /** cos and sin of {@code position * invFreq[i]}, computed in fp32 as transformers does. */
    static void angles(int position, float[] invFreq, float[] cos, float[] sin) {
        for (int i = 0; i < invFreq.length; i++) {
            float angle = invFreq[i] * (float) position;
            cos[i] = (float) Math.cos(angle);
            sin[i] = (float) Math.sin(angle);
        }
    }

    /** x1' = x1 cos - x2 sin, x2' = x2 cos + x1 sin, with x1, x2 the two halves of the head. */
    static void rotate(float[] x, int at, int headDim, float[] cos, float[] sin) {
        int half = headDim / 2;
        for (int i = 0; i < half; i++) {
            float x1 = x[at + i];
            float x2 = x[at + half + i];
            x[at + i] = x1 * cos[i] - x2 * sin[i];
            x[at + half + i] = x2 * cos[i] + x1 * sin[i];
        }
    }
}
