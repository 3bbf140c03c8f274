package io.jemma.engine;

import io.jemma.engine.sampling.SampleResult;
import io.jemma.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.List;

/** Log-probabilities of tokens, for the API's logprobs / top_logprobs: the sampler's numbers with their text. */
final class Logprobs {
    private Logprobs() {
    }

    /** The chosen token's logprob and the most likely tokens (most likely first), with their text. */
    static TokenLogprob of(Tokenizer tokenizer, SampleResult.RowLogprobs row, int token) {
        List<TokenLogprob.Alternative> alternatives = new ArrayList<>(row.topIds().length);
        for (int i = 0; i < row.topIds().length; i++) {
            int t = row.topIds()[i];
            alternatives.add(new TokenLogprob.Alternative(t, text(tokenizer, t), row.top()[i]));
        }
        return new TokenLogprob(token, text(tokenizer, token), row.chosen(), alternatives);
    }

    private static String text(Tokenizer tokenizer, int token) {
        return tokenizer.decode(new int[] {token});
    }
}
