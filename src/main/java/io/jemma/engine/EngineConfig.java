package io.jemma.engine;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import io.smallrye.config.WithName;

import java.time.Duration;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * Engine settings, named after sglang's flags where one exists (application.properties keys
 * {@code jemma.<name>}, environment variables {@code JEMMA_<NAME>}, e.g. {@code JEMMA_MODEL_PATH}).
 */
@ConfigMapping(prefix = "jemma")
public interface EngineConfig {

    /** A Hugging Face Gemma 4 model directory; unset: the small model embedded in Jemma. */
    @WithName("model-path")
    Optional<String> modelPath();

    /** The model id clients send and /v1/models lists; default: the directory's name. */
    @WithName("served-model-name")
    Optional<String> servedModelName();

    /** Longest prompt + completion; default (and upper bound): the model's max_position_embeddings. */
    @WithName("context-length")
    OptionalInt contextLength();

    /** Sequences decoded together at most. */
    @WithName("max-running-requests")
    @WithDefault("64")
    int maxRunningRequests();

    /** Requests that may wait for a place; beyond this: 429 with Retry-After. */
    @WithName("max-queued-requests")
    @WithDefault("256")
    int maxQueuedRequests();

    /** Prompt tokens processed per step at most, so long prompts do not stall running decodes. */
    @WithName("chunked-prefill-size")
    @WithDefault("256")
    int chunkedPrefillSize();

    /** Tokens per KV page. */
    @WithName("page-size")
    @WithDefault("16")
    int pageSize();

    /** KV pool size in tokens (sglang's --max-total-tokens); default: max running requests x context length, within the memory budget. */
    @WithName("max-total-tokens")
    OptionalInt maxTotalTokens();

    /** KV memory budget in bytes; default: a quarter of the JVM heap on the CPU. */
    @WithName("kv-memory-bytes")
    OptionalLong kvMemoryBytes();

    /** Prompt tokens a request may have; default: the context length minus one. */
    @WithName("max-prompt-tokens")
    OptionalInt maxPromptTokens();

    /** max_tokens when a request does not say. */
    @WithName("default-max-tokens")
    @WithDefault("512")
    int defaultMaxTokens();

    /** Where the model runs: auto, cpu or cuda. */
    @WithDefault("auto")
    String device();

    /** Longest a health_generate check may take. */
    @WithName("health-generate-timeout")
    @WithDefault("30s")
    Duration healthGenerateTimeout();

    /**
     * On shutdown (SIGTERM): how long running and queued requests may take to finish, while new ones get
     * 503 and readiness is down, before the process exits anyway. 0: stop at once.
     */
    @WithName("drain-timeout")
    @WithDefault("30s")
    Duration drainTimeout();

    /**
     * Longest one request may generate for, counted from its arrival (queue time included): past it the
     * sequence ends with finish_reason "length" at its next token and its pages are freed.
     */
    @WithName("max-request-time")
    @WithDefault("10m")
    Duration maxRequestTime();

    // ---- GPU (issue 4) ----

    /**
     * How weights are loaded (sglang's --load-format): auto reads the checkpoint; dummy generates them on
     * the device from {@link #dummySeed()} at the shapes of the model's config.json (or of a bundled
     * config: 31b, 26b-a4b, e4b, e2b), so the real shapes run without downloads.
     */
    @WithName("load-format")
    @WithDefault("auto")
    String loadFormat();

    /** Seed of the dummy weights. */
    @WithName("dummy-seed")
    @WithDefault("0")
    long dummySeed();

    /** Fraction of the GPU's memory for weights and the KV pool together (sglang's --mem-fraction-static). */
    @WithName("mem-fraction-static")
    @WithDefault("0.85")
    double memFractionStatic();

    /** Replay decode steps from captured CUDA graphs (sglang: on unless --disable-cuda-graph). */
    @WithName("disable-cuda-graph")
    @WithDefault("false")
    boolean disableCudaGraph();

    // ---- attention (issue 5) ----

    /** auto, triton (general) or trtllm_mha (specialized; see io.jemma.attention.AttentionDispatch). */
    @WithName("attention-backend")
    @WithDefault("auto")
    String attentionBackend();

    /**
     * K stored once: in k_eq_v layers (the full-attention layers of 31B and 26B-A4B, where K = rope(V * k_norm)) the
     * CUDA KV cache holds V only and attention derives K from it, halving those layers' KV memory (the budget then
     * holds more tokens). The CPU backend keeps both.
     */
    @WithName("kv-store-k-eq-v-once")
    @WithDefault("false")
    boolean kvStoreKEqVOnce();

    // ---- speculative decoding (issue 6) ----

    /** NEXTN (alias FROZEN_KV_MTP); unset: no speculation, or NEXTN when a draft model is given. */
    @WithName("speculative-algorithm")
    Optional<String> speculativeAlgorithm();

    /** A gemma4_assistant checkpoint directory (the MTP drafter of the served model). */
    @WithName("speculative-draft-model-path")
    Optional<String> speculativeDraftModelPath();

    /** Draft steps per round (default 3 with a draft model). */
    @WithName("speculative-num-steps")
    OptionalInt speculativeNumSteps();

    /** Draft tokens kept per step; above 1 the draft is a tree (default 1: a chain). */
    @WithName("speculative-eagle-topk")
    OptionalInt speculativeEagleTopk();

    /** Tokens verified per round (default: steps + 1 for a chain). */
    @WithName("speculative-num-draft-tokens")
    OptionalInt speculativeNumDraftTokens();
}
