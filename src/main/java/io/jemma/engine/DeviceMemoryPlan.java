package io.jemma.engine;

import io.jemma.model.config.ExpectedTensor;
import io.jemma.model.config.LayerSpec;
import io.jemma.model.config.TextConfig;
import io.jemma.model.config.WeightNames;

import java.util.Locale;

/**
 * How a model's GPU memory is split, sglang's way: {@code mem-fraction-static} of the device's memory
 * holds the weights and the KV pool (the KV pool gets what the weights leave), the rest is for
 * activations, CUDA graphs, cuBLASLt and the driver. Checked before anything is loaded, so that a model
 * that cannot fit fails at start-up with the numbers, not with an out-of-memory error mid-load.
 *
 * @param device          the GPU, for messages
 * @param totalBytes      the device's memory
 * @param freeBytes       free now (other processes' use counted)
 * @param weightBytes     the weights as the CUDA backend holds them (bf16 matrices, fp32 vectors)
 * @param kvBytes         the KV budget: fraction * total - weights, or jemma.kv-memory-bytes when set
 * @param activationBytes an estimate of a step's activations and the backend's workspaces
 */
public record DeviceMemoryPlan(String device, long totalBytes, long freeBytes, long weightBytes, long kvBytes,
                               long activationBytes) {

    private static final long GIB = 1L << 30;
    /** The CUDA context, cuBLASLt's workspace and handles, the graphs' own memory, sampling buffers. */
    static final long FIXED_OVERHEAD = 768L << 20;

    /**
     * The plan for {@code config} on a device with {@code totalBytes} of which {@code freeBytes} are free.
     *
     * @throws IllegalStateException when the weights do not fit the static fraction
     */
    public static DeviceMemoryPlan of(String device, long totalBytes, long freeBytes, TextConfig config,
                                      double memFractionStatic, Long kvMemoryBytes, int chunkedPrefill,
                                      int maxRunning) {
        if (!(memFractionStatic > 0 && memFractionStatic < 1)) {
            throw new IllegalArgumentException("jemma.mem-fraction-static must be in (0, 1), not " + memFractionStatic);
        }
        long weights = weightBytes(config);
        long activations = activationBytes(config, chunkedPrefill, maxRunning);
        long statics = (long) (memFractionStatic * totalBytes);
        long kv;
        if (kvMemoryBytes != null) {
            kv = kvMemoryBytes;
        } else {
            kv = statics - weights;
            if (kv <= 0) {
                throw new IllegalStateException(String.format(Locale.ROOT,
                        "jemma.mem-fraction-static=%.2f gives %s of %s's %s to weights and KV cache, but the weights"
                                + " alone need %s: raise jemma.mem-fraction-static or use a GPU with more memory",
                        memFractionStatic, gib(statics), device, gib(totalBytes), gib(weights)));
            }
        }
        return new DeviceMemoryPlan(device, totalBytes, freeBytes, weights, kv, activations);
    }

    /** Checks that weights + the KV actually taken + activations fit the free memory; returns this. */
    public DeviceMemoryPlan checkFree(long kvTaken) {
        long needed = weightBytes + kvTaken + activationBytes;
        if (needed > freeBytes) {
            throw new IllegalStateException(String.format(Locale.ROOT,
                    "not enough device memory on %s: the model needs %s (weights %s, KV cache %s, activations and"
                            + " workspaces %s) and %s of %s are free; lower jemma.mem-fraction-static,"
                            + " jemma.max-total-tokens or jemma.max-running-requests, or free the GPU",
                    device, gib(needed), gib(weightBytes), gib(kvTaken), gib(activationBytes), gib(freeBytes),
                    gib(totalBytes)));
        }
        return this;
    }

    /** Bytes of the weights on the CUDA backend: bf16 matrices (rank >= 2), fp32 vectors. */
    public static long weightBytes(TextConfig config) {
        long total = 0;
        for (ExpectedTensor t : WeightNames.expectedTensors(config)) {
            total += t.numel() * (t.shape().length >= 2 ? 2 : 4);
        }
        return total;
    }

    /**
     * A step's activations (fp32) at the largest step the scheduler makes (the running decodes plus a
     * prefill chunk): the residual stream, one decoder layer's temporaries (the model releases them per
     * layer), the per-layer inputs, the logits, the GEMMs' bf16 operand; plus {@link #FIXED_OVERHEAD}.
     */
    public static long activationBytes(TextConfig config, int chunkedPrefill, int maxRunning) {
        long rows = (long) chunkedPrefill + maxRunning;
        long hidden = config.hiddenSize();
        long widest = 0;
        long widestIn = hidden;
        for (LayerSpec s : config.layers()) {
            long q = s.qDim();
            long kv = s.kvDim();
            long layer = 3 * hidden + 2 * q + 2 * kv + 2L * s.mlpWidth();
            widest = Math.max(widest, layer);
            widestIn = Math.max(widestIn, Math.max(q, s.mlpWidth()));
        }
        long ple = config.hasPerLayerEmbeddings()
                ? 2L * config.numHiddenLayers() * config.hiddenSizePerLayerInput() : 0;
        long floats = rows * (hidden + ple + widest) + (long) maxRunning * (config.vocabSize() + hidden);
        return 4 * floats + 2 * rows * widestIn + FIXED_OVERHEAD;
    }

    static String gib(long bytes) {
        return String.format(Locale.ROOT, "%.1f GiB", bytes / (double) GIB);
    }

    @Override
    public String toString() {
        return "weights " + gib(weightBytes) + ", KV budget " + gib(kvBytes) + ", activations " + gib(activationBytes)
                + ", " + gib(freeBytes) + " free of " + gib(totalBytes);
    }
}
