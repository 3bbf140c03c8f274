package io.jemma.engine.sampling;

import java.util.PriorityQueue;

/**
 * Sampling on the host, row by row, from fp32 logits: logprobs of the raw logits first, then the row's
 * penalties and masks ({@link LogitsProcessor}), then its {@link Sampler}. The CPU backend's sampling,
 * and the CUDA backend's fallback for what its kernels do not cover.
 */
public final class HostSampling {
    private HostSampling() {
    }

    /**
     * @param logits {@code [rows, vocab]} row-major, modified in place (penalties, masks); at least
     *               {@code batch.size()} rows
     */
    public static SampleResult sample(float[] logits, int vocab, SamplingBatch batch) {
        int[] tokens = new int[batch.size()];
        SampleResult.RowLogprobs[] logprobs = new SampleResult.RowLogprobs[batch.size()];
        for (int i = 0; i < batch.size(); i++) {
            SamplingRow r = batch.row(i);
            int offset = i * vocab;
            // Logprobs describe the model's own distribution: taken before penalties and temperature.
            float[] logSoftmax = r.topLogprobs() >= 0 ? logSoftmax(logits, offset, vocab) : null;
            if (r.processor() != null) {
                r.processor().apply(logits, offset, vocab, r.endTokens());
            } else {
                for (int t : r.endTokens()) {
                    if (t >= 0 && t < vocab) {
                        logits[offset + t] = Float.NEGATIVE_INFINITY;
                    }
                }
            }
            int token = r.sampler() != null ? r.sampler().sample(logits, offset, vocab)
                    : Sampler.argmax(logits, offset, vocab);
            tokens[i] = token;
            if (logSoftmax != null) {
                logprobs[i] = top(logSoftmax, token, r.topLogprobs());
            }
        }
        return new SampleResult(tokens, logprobs);
    }

    /** log softmax of one row of logits. */
    public static float[] logSoftmax(float[] logits, int offset, int vocab) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) {
            max = Math.max(max, logits[offset + i]);
        }
        double sum = 0;
        for (int i = 0; i < vocab; i++) {
            sum += Math.exp(logits[offset + i] - max);
        }
        float logSum = (float) (max + Math.log(sum));
        float[] out = new float[vocab];
        for (int i = 0; i < vocab; i++) {
            out[i] = logits[offset + i] - logSum;
        }
        return out;
    }

    /** The chosen token's logprob and the {@code top} most likely tokens, most likely first. */
    public static SampleResult.RowLogprobs top(float[] logSoftmax, int token, int top) {
        PriorityQueue<Integer> best = new PriorityQueue<>((a, b) -> Float.compare(logSoftmax[a], logSoftmax[b]));
        for (int i = 0; i < logSoftmax.length && top > 0; i++) {
            best.add(i);
            if (best.size() > top) {
                best.poll();
            }
        }
        int n = best.size();
        int[] ids = new int[n];
        float[] values = new float[n];
        for (int k = n - 1; k >= 0; k--) {
            int t = best.poll();
            ids[k] = t;
            values[k] = logSoftmax[t];
        }
        return new SampleResult.RowLogprobs(logSoftmax[token], ids, values);
    }
}
