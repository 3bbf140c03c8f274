package io.jemma.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.backend.cpu.CpuBackend;
import io.jemma.bench.EvalItem;
import io.jemma.engine.sampling.Sampler;
import io.jemma.model.config.TextConfig;
import io.jemma.model.weights.Checkpoint;
import io.jemma.tokenizer.ChatTemplate;
import io.jemma.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The trained embedded model (src/main/resources/embedded-model) against what transformers computed for it
 * when it was trained (tools/train/train.py wrote src/test/resources/eval/reference.json): for the first
 * test items, our chat template and tokenizer give transformers' prompt ids, and our CPU engine's greedy
 * tokens through the KV cache are transformers' greedy tokens (fp32 from the bf16 weights), one by one.
 */
class EmbeddedModelReferenceTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    static Path embeddedDir() {
        try {
            return Path.of(EmbeddedModelReferenceTest.class.getResource("/embedded-model").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void promptsAndGreedyTokensMatchTransformers() throws IOException {
        Path dir = embeddedDir();
        JsonNode reference = JSON.readTree(Files.readString(Path.of("src/test/resources/eval/reference.json")));
        Map<String, EvalItem> items = new HashMap<>();
        for (EvalItem item : EvalItem.load(EvalItem.TEST_SET)) {
            items.put(item.id(), item);
        }
        Tokenizer tokenizer = Tokenizer.load(dir);
        ChatTemplate template = ChatTemplate.requireForModel(dir);
        TextConfig config = TextConfig.load(dir);
        KvGeometry kv = new KvBudget(config, Float.BYTES).forSequences(2, 128, 16, 128);
        int checked = 0;
        try (var model = new Gemma4Model(config, Checkpoint.open(dir), new CpuBackend(), kv)) {
            int vocab = config.vocabSize();
            for (JsonNode ref : reference.get("items")) {
                EvalItem item = items.get(ref.get("id").asText());
                int[] expectedPrompt = ints(ref.get("prompt_ids"));
                int[] expectedGreedy = ints(ref.get("greedy_ids"));
                int[] prompt = tokenizer.encode(template.render(messages(item), true));
                assertArrayEquals(expectedPrompt, prompt, item.id() + ": chat template + tokenizer");

                int n = prompt.length;
                model.startSequence(1, n + expectedGreedy.length);
                float[] logits = model.forward(ForwardBatch.of(new int[][] {{1, 0, n}}), prompt, new int[] {n - 1});
                int[] greedy = new int[expectedGreedy.length];
                for (int step = 0; step < greedy.length; step++) {
                    greedy[step] = Sampler.argmax(logits, 0, vocab);
                    logits = model.forward(ForwardBatch.of(new int[][] {{1, n + step, 1}}), new int[] {greedy[step]},
                            new int[] {0});
                }
                model.release(1);
                assertArrayEquals(expectedGreedy, greedy, item.id() + " (" + item.messages() + "): greedy tokens "
                        + Arrays.toString(greedy) + " = " + tokenizer.decode(greedy));
                checked++;
            }
        }
        assertTrue(checked >= 40, "reference items checked: " + checked);
    }

    @Test
    void theTestSetIsTheOneTheReferenceWasMadeFrom() throws IOException {
        JsonNode reference = JSON.readTree(Files.readString(Path.of("src/test/resources/eval/reference.json")));
        List<String> ids = new ArrayList<>();
        reference.get("items").forEach(i -> ids.add(i.get("id").asText()));
        List<EvalItem> test = EvalItem.load(EvalItem.TEST_SET);
        assertEquals(480, test.size(), "tools/train/tasks.py writes 60 items of each of 8 tasks");
        assertEquals(test.subList(0, ids.size()).stream().map(EvalItem::id).toList(), ids);
    }

    private static List<Map<String, Object>> messages(EvalItem item) {
        List<Map<String, Object>> out = new ArrayList<>();
        for (JsonNode m : item.messages()) {
            Map<String, Object> message = new LinkedHashMap<>();
            message.put("role", m.get("role").asText());
            message.put("content", m.get("content").asText());
            out.add(message);
        }
        return out;
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }
}
