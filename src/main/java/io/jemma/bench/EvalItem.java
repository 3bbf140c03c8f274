package io.jemma.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One task of the accuracy eval (a line of {@code src/test/resources/eval/test.jsonl}, written by
 * {@code tools/train/tasks.py}): a chat, and the exact answer the model must give.
 *
 * @param messages the OpenAI {@code messages} array, sent as it is
 */
public record EvalItem(String id, String task, ArrayNode messages, String answer) {

    /** The default test set, relative to the repository root. */
    public static final Path TEST_SET = Path.of("src/test/resources/eval/test.jsonl");

    /** Exact match: the reply, without surrounding whitespace, is the answer. */
    public boolean isAnsweredBy(String reply) {
        return reply != null && reply.strip().equals(answer);
    }

    /** Reads a JSONL file of items (id, task, messages, answer); blank lines are skipped. */
    public static List<EvalItem> load(Path jsonl) {
        List<String> lines;
        try {
            lines = Files.readAllLines(jsonl);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the eval set " + jsonl, e);
        }
        List<EvalItem> items = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).isBlank()) {
                continue;
            }
            String where = jsonl + ":" + (i + 1);
            JsonNode node;
            try {
                node = BenchJson.MAPPER.readTree(lines.get(i));
            } catch (IOException e) {
                throw new IllegalArgumentException(where + ": not JSON: " + e.getMessage(), e);
            }
            if (!(node.get("messages") instanceof ArrayNode messages) || messages.isEmpty()
                    || !node.path("answer").isTextual()) {
                throw new IllegalArgumentException(where + ": an item needs a messages array and an answer string");
            }
            items.add(new EvalItem(node.path("id").asText("item-" + i), node.path("task").asText("task"), messages,
                    node.get("answer").asText()));
        }
        return List.copyOf(items);
    }

    /**
     * Every {@code stride}-th item from the start, at most {@code limit} of them (0: no limit). The test set
     * interleaves its 8 tasks, so a prefix of a multiple of 8 items, or an odd stride, keeps them all in
     * proportion (an even stride would leave tasks out).
     */
    public static List<EvalItem> slice(List<EvalItem> items, int stride, int limit) {
        List<EvalItem> out = new ArrayList<>();
        for (int i = 0; i < items.size() && (limit <= 0 || out.size() < limit); i += Math.max(1, stride)) {
            out.add(items.get(i));
        }
        return List.copyOf(out);
    }
}
