package io.jemma.backend.cpu;

import io.jemma.backend.Backend;
import io.jemma.backend.HostTensor;

import java.util.ArrayList;
import java.util.List;

/**
 * Gemma 4's routed experts on the CPU: route every token, then run each expert once over the tokens
 * that chose it (so its weights are read once per forward), and add the weighted results.
 */
final class CpuExperts {
    private final Backend backend;   // the expert GEMMs and gelu: the CPU backend, or one simulating another's roundings
    private final HostTensor gateUp; // [experts, 2 * inter, hidden]
    private final HostTensor down;   // [experts, hidden, inter]

    CpuExperts(Backend backend, HostTensor gateUp, HostTensor down) {
        this.backend = backend;
        this.gateUp = gateUp;
        this.down = down;
    }

    void apply(CpuTensor x, CpuTensor routerLogits, int topK, float[] perExpertScale, CpuTensor out) {
        int tokens = x.rows();
        int hidden = x.cols();
        int experts = routerLogits.cols();
        int inter = (int) gateUp.dim(1) / 2;
        Routing routing = Routing.of(routerLogits, topK, perExpertScale);
        for (int r = 0; r < tokens; r++) {
            java.util.Arrays.fill(out.data(), out.row(r), out.row(r) + hidden, 0f);
        }
        for (int e = 0; e < experts; e++) {
            List<int[]> picks = new ArrayList<>(); // (token, slot)
            for (int t = 0; t < tokens; t++) {
                for (int s = 0; s < topK; s++) {
                    if (routing.expert(t, s) == e) {
                        picks.add(new int[] {t, s});
                    }
                }
            }
            if (picks.isEmpty()) {
                continue;
            }
            int n = picks.size();
            CpuTensor xe = new CpuTensor(n, hidden);
            for (int i = 0; i < n; i++) {
                System.arraycopy(x.data(), x.row(picks.get(i)[0]), xe.data(), xe.row(i), hidden);
            }
            CpuTensor gu = new CpuTensor(n, 2 * inter);                 // [n, 2 * inter]
            backend.matmul(xe, CpuWeight.of(expert(gateUp, e)), gu);
            CpuTensor act = new CpuTensor(n, inter);                    // gelu(g) * u: [n, inter]
            backend.geluTanhMul(gu.columns(0, inter), gu.columns(inter, inter), act);
            CpuTensor y = new CpuTensor(n, hidden);                     // [n, hidden]
            backend.matmul(act, CpuWeight.of(expert(down, e)), y);
            for (int i = 0; i < n; i++) {
                int[] p = picks.get(i);
                VectorMath.axpy(routing.weight(p[0], p[1]), y.data(), y.row(i), out.data(), out.row(p[0]), hidden);
            }
        }
    }

    /** Expert e's matrix of a stacked {@code [experts, rows, cols]} tensor, as a 2-D tensor. */
    private static HostTensor expert(HostTensor stack, int e) {
        long rows = stack.dim(1);
        long cols = stack.dim(2);
        long bytes = rows * cols * stack.dtype().bytes();
        return new HostTensor(stack.name() + "[" + e + "]", stack.dtype(), new long[] {rows, cols},
                stack.data().asSlice(e * bytes, bytes));
    }

    /** The top-k experts of every token and their weights. */
    record Routing(int topK, int[] experts, float[] weights) {
        int expert(int token, int slot) {
            return experts[token * topK + slot];
        }

        float weight(int token, int slot) {
            return weights[token * topK + slot];
        }

        /** softmax, top k (ties to the lower index, as torch.topk), renormalize, per-expert scale. */
        static Routing of(CpuTensor logits, int topK, float[] perExpertScale) {
            int tokens = logits.rows();
            int n = logits.cols();
            int[] experts = new int[tokens * topK];
            float[] weights = new float[tokens * topK];
            float[] p = new float[n];
            for (int t = 0; t < tokens; t++) {
                int base = logits.row(t);
                float max = Float.NEGATIVE_INFINITY;
                for (int i = 0; i < n; i++) {
                    max = Math.max(max, logits.data()[base + i]);
                }
                float sum = 0;
                for (int i = 0; i < n; i++) {
                    p[i] = (float) Math.exp(logits.data()[base + i] - max);
                    sum += p[i];
                }
                boolean[] taken = new boolean[n];
                float picked = 0;
                for (int s = 0; s < topK; s++) {
                    int best = -1;
                    for (int i = 0; i < n; i++) {
                        if (!taken[i] && (best < 0 || p[i] > p[best])) {
                            best = i;
                        }
                    }
                    taken[best] = true;
                    experts[t * topK + s] = best;
                    weights[t * topK + s] = p[best] / sum;
                    picked += p[best] / sum;
                }
                for (int s = 0; s < topK; s++) {
                    int at = t * topK + s;
                    weights[at] = weights[at] / picked * perExpertScale[experts[at]];
                }
            }
            return new Routing(topK, experts, weights);
        }
    }
}
