package io.jemma.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A deliberately naive BPE for cross-checking: the whole normalized text is one word; repeatedly
 * merge the adjacent pair with the lowest rank, leftmost on ties. Handles the Gemma setup only
 * (Replace " " -> U+2581, byte fallback, no added tokens in the text).
 */
final class ReferenceBpe {

    private final Map<String, Integer> vocab = new HashMap<>();
    private final Map<String, Integer> ranks = new HashMap<>();

    ReferenceBpe(String tokenizerJson) {
        JsonNode model = TokenizerJson.node(tokenizerJson).get("model");
        model.get("vocab")
                .fields()
                .forEachRemaining(e -> vocab.put(e.getKey(), e.getValue().intValue()));
        JsonNode merges = model.get("merges");
        for (int i = 0; i < merges.size(); i++) {
            ranks.put(
                    merges.get(i).get(0).textValue() + "\u0000" + merges.get(i).get(1).textValue(),
                    i);
        }
    }

    int[] encode(String text) {
        String normalized = text.replace(' ', '\u2581');
        List<String> symbols = new ArrayList<>();
        normalized
                .codePoints()
                .forEach(
                        cp -> {
                            String c = Character.toString(cp);
                            if (vocab.containsKey(c)) {
                                symbols.add(c);
                            } else {
                                for (byte b : c.getBytes(java.nio.charset.StandardCharsets.UTF_8)) {
                                    symbols.add(String.format("<0x%02X>", b & 0xFF));
                                }
                            }
                        });
        while (true) {
            int best = -1;
            int bestRank = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < symbols.size(); i++) {
                Integer rank = ranks.get(symbols.get(i) + "\u0000" + symbols.get(i + 1));
                if (rank != null && rank < bestRank) {
                    bestRank = rank;
                    best = i;
                }
            }
            if (best < 0) {
                break;
            }
            symbols.set(best, symbols.get(best) + symbols.remove(best + 1));
        }
        return symbols.stream().mapToInt(vocab::get).toArray();
    }
}
