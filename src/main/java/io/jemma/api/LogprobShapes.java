package io.jemma.api;

import io.jemma.api.dto.ChatLogprobs;
import io.jemma.api.dto.CompletionLogprobs;
import io.jemma.engine.TokenLogprob;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The engine's token logprobs in OpenAI's two shapes (chat and legacy completions). */
final class LogprobShapes {
    /** What OpenAI reports for a probability of zero (JSON has no -Infinity). */
    private static final float FLOOR = -9999f;

    private LogprobShapes() {
    }

    static ChatLogprobs chat(List<TokenLogprob> logprobs) {
        List<ChatLogprobs.TokenEntry> content = new ArrayList<>(logprobs.size());
        for (TokenLogprob lp : logprobs) {
            List<ChatLogprobs.Top> top = new ArrayList<>(lp.top().size());
            for (TokenLogprob.Alternative a : lp.top()) {
                top.add(new ChatLogprobs.Top(a.token(), finite(a.logprob()), bytes(a.token())));
            }
            content.add(new ChatLogprobs.TokenEntry(lp.token(), finite(lp.logprob()), bytes(lp.token()), top));
        }
        return new ChatLogprobs(content);
    }

    /**
     * @param offsets each token's offset into the choice's text
     */
    static CompletionLogprobs completion(List<TokenLogprob> logprobs, List<Integer> offsets) {
        List<String> tokens = new ArrayList<>();
        List<Float> values = new ArrayList<>();
        List<Map<String, Float>> tops = new ArrayList<>();
        for (TokenLogprob lp : logprobs) {
            tokens.add(lp.token());
            values.add(finite(lp.logprob()));
            Map<String, Float> top = new LinkedHashMap<>();
            for (TokenLogprob.Alternative a : lp.top()) {
                top.putIfAbsent(a.token(), finite(a.logprob()));
            }
            tops.add(top);
        }
        return new CompletionLogprobs(tokens, values, tops, List.copyOf(offsets));
    }

    private static float finite(float logprob) {
        return Float.isNaN(logprob) || logprob < FLOOR ? FLOOR : logprob;
    }

    private static List<Integer> bytes(String token) {
        byte[] b = token.getBytes(StandardCharsets.UTF_8);
        List<Integer> out = new ArrayList<>(b.length);
        for (byte x : b) {
            out.add(x & 0xff);
        }
        return out;
    }
}
