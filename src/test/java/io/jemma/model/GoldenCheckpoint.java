package io.jemma.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jemma.backend.HostTensor;
import io.jemma.model.weights.SafetensorsFile;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One tiny checkpoint under src/test/resources/golden with what transformers computed for it
 * (tools/reference/make_golden.py).
 */
public record GoldenCheckpoint(String name, Path dir, List<Prompt> prompts, int decodeLogitSteps) {

    static final List<String> NAMES = List.of("tiny-31b", "tiny-e4b", "tiny-moe");

    /** A reference prompt: its ids (BOS first), transformers' 32 greedy tokens. */
    public record Prompt(int index, String text, int[] ids, int[] greedy) {
    }

    static Path root() {
        try {
            return Path.of(GoldenCheckpoint.class.getResource("/golden").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    public static GoldenCheckpoint load(String name) {
        Path dir = root().resolve(name);
        try {
            JsonNode ref = new ObjectMapper().readTree(Files.readString(dir.resolve("reference.json")));
            List<Prompt> prompts = new ArrayList<>();
            for (JsonNode p : ref.get("prompts")) {
                prompts.add(new Prompt(prompts.size(), p.get("text").asText(), ints(p.get("ids")), ints(p.get("greedy"))));
            }
            return new GoldenCheckpoint(name, dir, prompts, ref.get("decode_logit_steps").asInt());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** transformers' logits at every prompt position {@code [T, vocab]}. */
    public float[] prefillLogits(SafetensorsFile reference, Prompt p) {
        return floats(reference.tensor("prompt" + p.index() + ".prefill"));
    }

    /** transformers' logits after 1..decodeLogitSteps greedy tokens {@code [steps, vocab]}. */
    public float[] decodeLogits(SafetensorsFile reference, Prompt p) {
        return floats(reference.tensor("prompt" + p.index() + ".decode"));
    }

    /**
     * Every prompt in one prefill step: sequence {@code firstId + i} takes prompt i whole ({@code layout} rows
     * {id, 0, length} for ForwardBatch.of), {@code ids} the prompts' tokens one after another, {@code lastRows} each
     * prompt's last row (where its next-token logits come out).
     */
    public record BatchedPrompts(int[][] layout, int[] ids, int[] lastRows) {
    }

    public BatchedPrompts batchedPrompts(int firstId) {
        List<Prompt> prompts = prompts();
        int[][] layout = new int[prompts.size()][];
        int[] ids = new int[prompts.stream().mapToInt(p -> p.ids().length).sum()];
        int[] lastRows = new int[prompts.size()];
        int row = 0;
        for (int i = 0; i < prompts.size(); i++) {
            int[] pid = prompts.get(i).ids();
            layout[i] = new int[] {firstId + i, 0, pid.length};
            System.arraycopy(pid, 0, ids, row, pid.length);
            row += pid.length;
            lastRows[i] = row - 1;
        }
        return new BatchedPrompts(layout, ids, lastRows);
    }

    public SafetensorsFile openReference() {
        return SafetensorsFile.open(dir.resolve("reference.safetensors"));
    }

    /**
     * How far transformers' own bf16 forward (sdpa) lands from its fp32 logits on this checkpoint: the worst row's max
     * |diff| as a fraction of the fp32 row's range, over every prompt position and decode step of the reference; 0
     * where reference-bf16.safetensors was not recorded (tools/reference/bf16_deviation.py writes it on the GPU host).
     */
    public double transformersBf16Deviation() {
        Path file = dir.resolve("reference-bf16.safetensors");
        if (!Files.exists(file)) {
            return 0;
        }
        double worst = 0;
        try (SafetensorsFile fp32 = openReference(); SafetensorsFile bf16 = SafetensorsFile.open(file)) {
            for (Prompt p : prompts()) {
                worst = Math.max(worst, worstRow(prefillLogits(fp32, p), prefillLogits(bf16, p), p.ids().length));
                worst = Math.max(worst, worstRow(decodeLogits(fp32, p), decodeLogits(bf16, p), decodeLogitSteps()));
            }
        }
        return worst;
    }

    private static double worstRow(float[] expected, float[] actual, int rows) {
        int vocab = expected.length / rows;
        double worst = 0;
        for (int r = 0; r < rows; r++) {
            worst = Math.max(worst, LogitDeviation.of(java.util.Arrays.copyOfRange(expected, r * vocab, (r + 1) * vocab),
                    java.util.Arrays.copyOfRange(actual, r * vocab, (r + 1) * vocab)).relative());
        }
        return worst;
    }

    private static float[] floats(HostTensor t) {
        return t.toFloatArray();
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }

    /**
     * How far logits are from a reference: the largest |expected - actual|, where it is, and the
     * reference's range (max - min), which the golden bounds are fractions of.
     */
    public record LogitDeviation(double worst, int at, double range) {
        public static LogitDeviation of(float[] expected, float[] actual) {
            if (expected.length != actual.length) {
                throw new AssertionError(actual.length + " logits, expected " + expected.length);
            }
            float min = Float.POSITIVE_INFINITY;
            float max = Float.NEGATIVE_INFINITY;
            double worst = 0;
            int at = 0;
            for (int i = 0; i < expected.length; i++) {
                min = Math.min(min, expected[i]);
                max = Math.max(max, expected[i]);
                double d = Math.abs(expected[i] - actual[i]);
                if (!(d <= worst)) { // NaN counts as the worst
                    worst = d;
                    at = i;
                }
            }
            return new LogitDeviation(worst, at, max - min);
        }

        /** worst as a fraction of the range. */
        public double relative() {
            return range > 0 ? worst / range : worst;
        }

        public boolean within(double fractionOfRange) {
            return worst <= fractionOfRange * range;
        }
    }
}
