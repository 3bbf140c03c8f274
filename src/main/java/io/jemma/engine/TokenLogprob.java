package io.jemma.engine;

import java.util.List;

/**
 * The log-probability of a generated token under the model (before penalties and temperature), and the
 * most likely alternatives at that step.
 */
public record TokenLogprob(int tokenId, String token, float logprob, List<Alternative> top) {
    public TokenLogprob {
        top = List.copyOf(top);
    }

    public record Alternative(int tokenId, String token, float logprob) {
    }
}
