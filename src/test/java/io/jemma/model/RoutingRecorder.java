package io.jemma.model;

import io.jemma.backend.Backend;
import io.jemma.backend.DelegatingBackend;
import io.jemma.backend.Tensor;
import io.jemma.backend.Weight;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A backend that records the router logits of every routed-experts call of the current forward (host
 * copies, in layer order; a forward starts at {@link #beginStep}) and can make its model follow another
 * model's expert choices where they differ by a near tie only ({@link #follow}).
 *
 * <p>Why: a tiny random router (golden tiny-moe: 4 experts, top 2, router logits within +-0.6) has
 * near ties, top-k margins down to 1e-5 in logit, while bf16 roundings upstream move a router logit
 * difference by up to 2.9e-2 (measured on the CPU: fp32 against {@link Bf16RoundingBackend}). A backend
 * with bf16 operands therefore picks other experts than transformers' fp32 at some tokens, which moves that
 * token's logits by up to half their range: a rounding, not a bug. A model that follows the GPU's choice
 * at such a tie (and only there) computes what transformers would have with that choice, so the GPU can
 * be held to it at the usual bound; a different choice at a clear margin still fails.
 *
 * <p>Everything else, the interface's default methods included, goes to the delegate, so a recorded
 * backend runs its own code paths (scratch activations, fused matmuls, step buffers).
 */
public final class RoutingRecorder extends DelegatingBackend {
    /** One token whose expert choice this model took over from the leader. */
    public record Takeover(int layerCall, int row, int[] ours, int[] leaders, double gap) {
        @Override
        public String toString() {
            return "MoE layer call " + layerCall + " row " + row + ": experts " + Arrays.toString(ours) + " -> "
                    + Arrays.toString(leaders) + " (logit gap " + String.format("%.2e", gap) + ")";
        }
    }

    /**
     * The golden tiny-moe's near-tie bound for {@link #follow}, in router logit: the bf16 roundings of the
     * GPU (CPU fp32 against Bf16RoundingBackend, over every position of the three golden prompts and their
     * decode tokens, up to a position's first change of expert) move a difference of two router logits by up
     * to 2.9e-2 (RoutingRecorderTest checks that this bound covers it); the router logits span +-0.6 and
     * their top-2 margins reach 0.37. A GPU choosing other experts across a larger gap is a bug.
     */
    public static final double NEAR_TIE = 5e-2;

    private final List<float[]> routerLogits = new ArrayList<>();
    private final List<Takeover> takeovers = new ArrayList<>();
    private RoutingRecorder leader;
    private double maxGap;

    public RoutingRecorder(Backend delegate) {
        super(delegate);
    }

    /**
     * From now on, where this model's top k of a token differs from {@code leader}'s in the same forward
     * (the leader runs it first), take the leader's router logits for that token if the choice is a near
     * tie: {@link #gap} at most {@code maxGap}. A larger gap throws an AssertionError.
     */
    public RoutingRecorder follow(RoutingRecorder leader, double maxGap) {
        this.leader = leader;
        this.maxGap = maxGap;
        return this;
    }

    /** The router logits ({@code [tokens * experts]}) of each routed-experts call of the current forward. */
    public List<float[]> routerLogits() {
        return routerLogits;
    }

    /** The tokens whose choice was taken over from the leader in the current forward. */
    public List<Takeover> takeovers() {
        return takeovers;
    }

    /**
     * The top k of a row of router logits as the routing does it (softmax is monotone: by logit; ties to
     * the lower index, as torch.topk), in ascending expert order.
     */
    public static int[] topK(float[] logits, int row, int experts, int k) {
        int base = row * experts;
        boolean[] taken = new boolean[experts];
        int[] picked = new int[k];
        for (int s = 0; s < k; s++) {
            int best = -1;
            for (int e = 0; e < experts; e++) {
                if (!taken[e] && (best < 0 || logits[base + e] > logits[base + best])) {
                    best = e;
                }
            }
            taken[best] = true;
            picked[s] = best;
        }
        Arrays.sort(picked);
        return picked;
    }

    /**
     * How far {@code chosen} (k experts) is from being this row's top k: the largest logit among our top k
     * that {@code chosen} drops minus the smallest logit among those it adds; 0 when it is our top k. A
     * rounding can make another model choose {@code chosen} only if it moves logit differences by this much.
     */
    public static double gap(float[] logits, int row, int experts, int[] chosen) {
        int[] ours = topK(logits, row, experts, chosen.length);
        int base = row * experts;
        double dropped = Double.NEGATIVE_INFINITY;
        double added = Double.POSITIVE_INFINITY;
        for (int e = 0; e < experts; e++) {
            boolean inOurs = Arrays.binarySearch(ours, e) >= 0;
            boolean inChosen = contains(chosen, e);
            if (inOurs && !inChosen) {
                dropped = Math.max(dropped, logits[base + e]);
            } else if (inChosen && !inOurs) {
                added = Math.min(added, logits[base + e]);
            }
        }
        return dropped == Double.NEGATIVE_INFINITY ? 0 : dropped - added;
    }

    private static boolean contains(int[] values, int v) {
        for (int x : values) {
            if (x == v) {
                return true;
            }
        }
        return false;
    }

    @Override
    public void mixtureOfExperts(Tensor x, Tensor logits, int topK, Weight perExpertScale, Weight gateUp,
                                 Weight down, Tensor out) {
        int call = routerLogits.size();
        float[] ours = delegate.toHost(logits);
        routerLogits.add(ours.clone());
        Tensor used = logits;
        if (leader != null) {
            float[] followed = followLeader(call, ours, logits.rows(), logits.cols(), topK);
            if (followed != null) {
                used = delegate.fromHost(followed, logits.rows(), logits.cols());
            }
        }
        delegate.mixtureOfExperts(x, used, topK, perExpertScale, gateUp, down, out);
    }

    /** Our logits with the leader's rows where its choice differs by a near tie; null when none differs. */
    private float[] followLeader(int call, float[] ours, int tokens, int experts, int k) {
        if (call >= leader.routerLogits.size()) {
            throw new IllegalStateException("the leader ran " + leader.routerLogits.size()
                    + " routed-experts calls in this forward, we are at " + call);
        }
        float[] theirs = leader.routerLogits.get(call);
        if (theirs.length != ours.length) {
            throw new IllegalStateException("the leader routed " + theirs.length / experts + " tokens, we " + tokens);
        }
        float[] followed = null;
        for (int t = 0; t < tokens; t++) {
            int[] mine = topK(ours, t, experts, k);
            int[] leaders = topK(theirs, t, experts, k);
            if (Arrays.equals(mine, leaders)) {
                continue;
            }
            double g = gap(ours, t, experts, leaders);
            if (!(g <= maxGap)) {
                throw new AssertionError(String.format("routed-experts call %d row %d: the leader chose experts %s, "
                        + "we %s, with a logit gap of %.3g > %.3g: not a near tie", call, t, Arrays.toString(leaders),
                        Arrays.toString(mine), g, maxGap));
            }
            if (followed == null) {
                followed = ours.clone();
            }
            System.arraycopy(theirs, t * experts, followed, t * experts, experts);
            takeovers.add(new Takeover(call, t, mine, leaders, g));
        }
        return followed;
    }

    @Override
    public void beginStep(int[] ids, int[] positions, int[] logitRows) {
        routerLogits.clear();
        takeovers.clear();
        super.beginStep(ids, positions, logitRows);
    }
}
