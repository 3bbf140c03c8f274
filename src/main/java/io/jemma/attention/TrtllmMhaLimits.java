package io.jemma.attention;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * What the specialized attention kernels (attention_xqa.cu, the "trtllm_mha" backend) were compiled for:
 * outside these the general backend serves, or (when trtllm_mha was asked for explicitly) startup fails.
 *
 * @param pageSizes       KV page sizes with a kernel variant
 * @param maxQueryTokens  per head dim with a kernel variant: query tokens per request at most (a decode
 *                        token, or a draft chain verified with the last accepted token)
 * @param maxQueryRows    query rows one thread block serves: group size x query tokens per KV head
 *                        (8 rows per tensor-core tile, up to 4 tiles)
 */
public record TrtllmMhaLimits(List<Integer> pageSizes, Map<Integer, Integer> maxQueryTokens, int maxQueryRows) {

    /**
     * The variants attention_xqa.cu instantiates: head dims 64 and 128 (the embedded model), 256 and 512
     * (Gemma 4); every one up to 32 rows, so up to 8 tokens where the group allows, 4 at head dim 512.
     */
    public static final TrtllmMhaLimits COMPILED = new TrtllmMhaLimits(List.of(16, 32, 64),
            Map.of(64, 8, 128, 8, 256, 8, 512, 4), 32);

    public TrtllmMhaLimits {
        pageSizes = List.copyOf(pageSizes);
        maxQueryTokens = Map.copyOf(new TreeMap<>(maxQueryTokens));
    }

    public boolean pageSize(int pageSize) {
        return pageSizes.contains(pageSize);
    }

    public boolean headDim(int headDim) {
        return maxQueryTokens.containsKey(headDim);
    }

    /**
     * Query tokens per request a layer of this head dim and group size can take here (0: none, the head
     * dim has no variant).
     */
    public int maxTokens(int headDim, int groupSize) {
        Integer byHeadDim = maxQueryTokens.get(headDim);
        return byHeadDim == null ? 0 : Math.min(byHeadDim, maxQueryRows / groupSize);
    }

    /** "16/32/64". */
    public String pageSizeList() {
        return pageSizes.stream().map(String::valueOf).collect(Collectors.joining("/"));
    }

    /** "64/128/256/512". */
    public String headDimList() {
        return new TreeMap<>(maxQueryTokens).keySet().stream().map(String::valueOf).collect(Collectors.joining("/"));
    }
}
