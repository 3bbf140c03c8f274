package io.jemma.model;

import io.jemma.attention.KvGeometry;
import io.jemma.backend.Backend;
import io.jemma.model.config.LayerSpec;
import io.jemma.model.config.TextConfig;

/**
 * Sizes the paged KV memory of a model: bytes per cached token in each pool, and how many pages a
 * budget buys. Only layers that write KV cost memory (KV-shared layers read their source's); sliding
 * layers need about one window per sequence, whatever its length.
 */
public record KvBudget(TextConfig config, int bytesPerElement, boolean kEqVOnce) {

    /** K and V both cached in every layer. */
    public KvBudget(TextConfig config, int bytesPerElement) {
        this(config, bytesPerElement, false);
    }

    /** As the backend caches: k_eq_v layers hold V only when it stores K once ({@link Backend#storesKEqVOnce}). */
    public static KvBudget of(TextConfig config, Backend backend) {
        return new KvBudget(config, backend.kvBytesPerElement(), backend.storesKEqVOnce());
    }

    /** Bytes one token position costs across all full-attention layers (keys and values; see kEqVOnce). */
    public long fullBytesPerToken() {
        return bytesPerToken(false);
    }

    /** Bytes one token position costs across all sliding-window layers. */
    public long slidingBytesPerToken() {
        return bytesPerToken(true);
    }

    /** The widest sliding window (0 when the model has no sliding layers). */
    public int slidingWindow() {
        return config.layers().stream().filter(LayerSpec::isSliding).mapToInt(LayerSpec::slidingWindow).max().orElse(0);
    }

    /** Pages for {@code sequences} sequences of up to {@code maxLength} positions, prefilled in chunks. */
    public KvGeometry forSequences(int sequences, int maxLength, int pageSize, int chunk) {
        int fullPerSequence = ceilDiv(maxLength, pageSize);
        int slidingPerSequence = slidingWindow() == 0 ? 0
                : Math.min(fullPerSequence, ceilDiv(slidingWindow() - 1 + Math.min(chunk, maxLength), pageSize) + 1);
        return new KvGeometry(pageSize, Math.multiplyExact(sequences, fullPerSequence),
                Math.multiplyExact(sequences, slidingPerSequence));
    }

    /**
     * Pages a byte budget buys: the sliding pool gets what {@code maxRunning} sequences need at once,
     * the full pool the rest.
     */
    public KvGeometry forBytes(long bytes, int maxRunning, int pageSize, int chunk) {
        long slidingPage = slidingBytesPerToken() * pageSize;
        long fullPage = fullBytesPerToken() * pageSize;
        int slidingPerSequence = slidingWindow() == 0 ? 0 : ceilDiv(slidingWindow() - 1 + chunk, pageSize) + 1;
        long slidingPages = (long) maxRunning * slidingPerSequence;
        long left = bytes - slidingPages * slidingPage;
        if (left <= 0 || fullPage == 0) {
            throw new IllegalArgumentException("a KV budget of " + bytes + " bytes does not hold the sliding windows of "
                    + maxRunning + " running requests (" + slidingPages * slidingPage + " bytes)");
        }
        return new KvGeometry(pageSize, (int) Math.min(Integer.MAX_VALUE, left / fullPage), (int) slidingPages);
    }

    /** Bytes a geometry takes. */
    public long bytes(KvGeometry g) {
        return g.fullSlots() * fullBytesPerToken() + g.slidingSlots() * slidingBytesPerToken();
    }

    private long bytesPerToken(boolean sliding) {
        long total = 0;
        for (LayerSpec s : config.layers()) {
            if (!s.kvShared() && s.isSliding() == sliding) {
                // K stored once: a k_eq_v layer caches V only (attention derives K from it).
                int tensors = kEqVOnce && s.kEqV() ? 1 : 2;
                total += (long) tensors * s.numKvHeads() * s.headDim() * bytesPerElement;
            }
        }
        return total;
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }
}
