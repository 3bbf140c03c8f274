package io.jemma.engine;

import io.jemma.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;

/** Log-probabilities of tokens, for the API's logprobs / top_logprobs. */
final class Logprobs {
    private Logprobs() {
    }

    /** log softmax of one row of logits. */
    static float[] logSoftmax(float[] logits, int offset, int vocab) {
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
    static TokenLogprob of(Tokenizer tokenizer, float[] logSoftmax, int token, int top) {
        PriorityQueue<Integer> best = new PriorityQueue<>((a, b) -> Float.compare(logSoftmax[a], logSoftmax[b]));
        for (int i = 0; i < logSoftmax.length && top > 0; i++) {
            best.add(i);
            if (best.size() > top) {
                best.poll();
            }
        }
        List<TokenLogprob.Alternative> alternatives = new ArrayList<>();
        while (!best.isEmpty()) {
            int t = best.poll();
            alternatives.add(0, new TokenLogprob.Alternative(t, text(tokenizer, t), logSoftmax[t]));
        }
        return new TokenLogprob(token, text(tokenizer, token), logSoftmax[token], alternatives);
    }

    private static String text(Tokenizer tokenizer, int token) {
        return tokenizer.decode(new int[] {token});
    }
}
