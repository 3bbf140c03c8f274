package io.jemma.attention;

import io.jemma.speculative.SpeculativeLimits;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Which attention backend serves a model (sglang's --attention-backend): the specialized trtllm_mha
 * kernels where every layer's shape, the speculative settings and the page size are within what they
 * were compiled for ({@link TrtllmMhaLimits#COMPILED}), the general triton kernels otherwise. Decided
 * once at startup, so no request ever meets a missing kernel: {@code auto} falls back to triton and says
 * why; an explicit {@code trtllm_mha} outside its limits is a startup error naming the limit.
 */
public final class AttentionDispatch {
    public static final String AUTO = "auto";
    public static final String TRITON = "triton";
    public static final String TRTLLM_MHA = "trtllm_mha";
    public static final String CPU = "cpu";

    private AttentionDispatch() {
    }

    /** The answer: the backend's name and one line saying why. */
    public record Choice(String backend, String reason) {
        @Override
        public String toString() {
            return reason;
        }
    }

    /** The attention shape of one decoder layer. */
    public record LayerShape(int layer, int headDim, int groupSize, int slidingWindow) {
        public static LayerShape of(AttentionLayer l) {
            return new LayerShape(l.layer(), l.headDim(), l.groupSize(), l.slidingWindow());
        }

        public static List<LayerShape> of(List<AttentionLayer> layers) {
            List<LayerShape> out = new ArrayList<>(layers.size());
            for (AttentionLayer l : layers) {
                out.add(of(l));
            }
            return List.copyOf(out);
        }
    }

    /** The dispatch with the compiled trtllm_mha limits. */
    public static Choice choose(String requested, boolean gpu, List<LayerShape> layers, SpeculativeLimits speculative,
                                int pageSize) {
        return choose(requested, gpu, layers, speculative, pageSize, TrtllmMhaLimits.COMPILED);
    }

    /**
     * @param requested   jemma.attention-backend: auto, triton or trtllm_mha
     * @param gpu         whether the model runs on the GPU (the CPU backend has one attention)
     * @param layers      every decoder layer's shape
     * @param speculative what a verify pass asks (NONE without speculation)
     * @param pageSize    jemma.page-size
     * @throws IllegalArgumentException for an unknown name, or an explicit trtllm_mha outside its limits
     */
    public static Choice choose(String requested, boolean gpu, List<LayerShape> layers, SpeculativeLimits speculative,
                                int pageSize, TrtllmMhaLimits limits) {
        String name = requested == null ? AUTO : requested.trim().toLowerCase(Locale.ROOT);
        if (!name.equals(AUTO) && !name.equals(TRITON) && !name.equals(TRTLLM_MHA)) {
            throw new IllegalArgumentException("jemma.attention-backend must be auto, triton or trtllm_mha, not '"
                    + requested + "'");
        }
        if (!gpu) {
            return new Choice(CPU, "cpu: the CPU backend has one attention implementation"
                    + (name.equals(AUTO) ? "" : " (jemma.attention-backend=" + name + " applies to the GPU)"));
        }
        if (name.equals(TRITON)) {
            return new Choice(TRITON, "triton: requested (jemma.attention-backend=triton)");
        }
        String exceeded = firstLimitExceeded(layers, speculative, pageSize, limits);
        if (exceeded == null) {
            String within = "page size " + pageSize + ", head dims " + headDims(layers) + ", "
                    + tokens(speculative) + " within its compiled limits";
            return new Choice(TRTLLM_MHA, "trtllm_mha: " + (name.equals(AUTO) ? "" : "requested; ") + within);
        }
        if (name.equals(TRTLLM_MHA)) {
            throw new IllegalArgumentException("jemma.attention-backend=trtllm_mha cannot serve this configuration: "
                    + exceeded + " (use auto or triton)");
        }
        return new Choice(TRITON, "triton: " + exceeded);
    }

    /** The first of trtllm_mha's limits the settings exceed, in words, or null when all are met. */
    static String firstLimitExceeded(List<LayerShape> layers, SpeculativeLimits speculative, int pageSize,
                                     TrtllmMhaLimits limits) {
        if (!limits.pageSize(pageSize)) {
            return "page size " + pageSize + " is not one of trtllm_mha's " + limits.pageSizeList();
        }
        if (speculative.enabled() && speculative.tree()) {
            return "speculative-eagle-topk " + speculative.topK() + " drafts a tree, and trtllm_mha has no tree masks"
                    + " (chains only: topk 1)";
        }
        int tokens = speculative.queryTokensPerRequest();
        for (LayerShape l : layers) {
            if (!limits.headDim(l.headDim())) {
                return "head dim " + l.headDim() + " (layer " + l.layer() + ") is not one of trtllm_mha's "
                        + limits.headDimList();
            }
            int byHeadDim = limits.maxQueryTokens().get(l.headDim());
            if (tokens > byHeadDim) {
                return tokensSetting(speculative) + " > trtllm_mha's " + byHeadDim + " query tokens at head dim "
                        + l.headDim();
            }
            if ((long) tokens * l.groupSize() > limits.maxQueryRows()) {
                return tokensSetting(speculative) + " x group size " + l.groupSize() + " (layer " + l.layer() + ") = "
                        + (long) tokens * l.groupSize() + " query rows per KV head > trtllm_mha's "
                        + limits.maxQueryRows();
            }
        }
        return null;
    }

    private static String tokensSetting(SpeculativeLimits s) {
        return s.enabled() ? "speculative-num-draft-tokens " + s.numDraftTokens() : "1 query token";
    }

    private static String tokens(SpeculativeLimits s) {
        return s.enabled() ? "speculative " + s + " (" + s.numDraftTokens() + " query tokens per request)"
                : "1 query token per request (no speculation)";
    }

    private static String headDims(List<LayerShape> layers) {
        return layers.stream().map(LayerShape::headDim).distinct().sorted().map(String::valueOf)
                .reduce((a, b) -> a + "/" + b).orElse("none");
    }
}
