package io.jemma.attention;

/**
 * Where a layer's new keys and values go in an attention backend's KV cache for the current step, handed
 * out by {@link AttentionBackend#kvWriteTarget} so that the fused QKV norm can store them in its own pass
 * (the {@code qkvNorm} of {@link io.jemma.backend.Backend} that takes a target). Opaque here: only the backend whose attention made it
 * knows its layout.
 */
public interface KvWriteTarget {
}
