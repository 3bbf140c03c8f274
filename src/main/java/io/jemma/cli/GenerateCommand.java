package io.jemma.cli;

import io.jemma.attention.ForwardBatch;
import io.jemma.backend.cpu.CpuBackend;
import io.jemma.engine.LoadedModel;
import io.jemma.engine.sampling.Sampler;
import io.jemma.engine.sampling.SamplingParams;
import io.jemma.tokenizer.ChatTemplateException;
import io.jemma.tokenizer.IncrementalDetokenizer;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Generates text from a checkpoint directory on the CPU, streaming it to stdout.
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp ... io.jemma.cli.GenerateCommand \
 *     --model DIR --prompt "Hello" [--chat] [--max-tokens 64] [--temperature 0] [--top-k 0] [--top-p 1]
 *     [--min-p 0] [--seed 0]
 * </pre>
 */
public final class GenerateCommand {

    public static void main(String[] args) throws Exception {
        Map<String, String> opts = parse(args);
        if (opts.containsKey("help") || !opts.containsKey("model") || !opts.containsKey("prompt")) {
            System.err.println("usage: GenerateCommand --model DIR --prompt TEXT [--chat] [--max-tokens N]"
                    + " [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--seed S]");
            System.exit(opts.containsKey("help") ? 0 : 2);
        }
        var params = new SamplingParams(Double.parseDouble(opts.getOrDefault("temperature", "0")),
                Integer.parseInt(opts.getOrDefault("top-k", "0")), Double.parseDouble(opts.getOrDefault("top-p", "1")),
                Double.parseDouble(opts.getOrDefault("min-p", "0")), Long.parseLong(opts.getOrDefault("seed", "0")));
        int maxTokens = Integer.parseInt(opts.getOrDefault("max-tokens", "64"));
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        try (LoadedModel m = LoadedModel.load(Path.of(opts.get("model")), new CpuBackend(), 4096)) {
            int[] prompt = promptIds(m, opts.get("prompt"), opts.containsKey("chat"));
            if (!m.model().startSequence(0, prompt.length + maxTokens)) {
                throw new IllegalArgumentException("prompt + max tokens exceed the KV memory");
            }
            generate(m, prompt, params, maxTokens, out);
        } catch (ChatTemplateException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(1);
        }
    }

    static int[] promptIds(LoadedModel m, String prompt, boolean chat) {
        if (chat) {
            var template = m.chatTemplate().orElseThrow(
                    () -> new ChatTemplateException("this checkpoint has no chat template; run without --chat"));
            String text = template.render(List.of(Map.of("role", "user", "content", prompt)), true, Map.of());
            return m.tokenizer().encode(text); // the template writes <bos> itself
        }
        int[] ids = m.tokenizer().encode(prompt);
        int[] withBos = new int[ids.length + 1];
        withBos[0] = m.config().bosTokenId().orElse(2);
        System.arraycopy(ids, 0, withBos, 1, ids.length);
        return withBos;
    }

    static void generate(LoadedModel m, int[] prompt, SamplingParams params, int maxTokens, PrintStream out) {
        var sampler = new Sampler(params);
        var detok = new IncrementalDetokenizer(m.tokenizer());
        Set<Integer> stops = Set.copyOf(m.config().stopTokenIds());
        int vocab = m.config().vocabSize();
        float[] logits = m.model().forward(ForwardBatch.of(new int[][] {{0, 0, prompt.length}}), prompt,
                new int[] {prompt.length - 1});
        for (int i = 0; i < maxTokens; i++) {
            int next = sampler.sample(logits, 0, vocab);
            if (stops.contains(next)) {
                break;
            }
            out.print(detok.push(next));
            logits = m.model().forward(ForwardBatch.of(new int[][] {{0, prompt.length + i, 1}}), new int[] {next},
                    new int[] {0});
        }
        out.println(detok.flush());
        m.model().release(0);
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> opts = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument: " + a);
            }
            String key = a.substring(2);
            if (key.equals("chat") || key.equals("help")) {
                opts.put(key, "true");
            } else if (i + 1 < args.length) {
                opts.put(key, args[++i]);
            } else {
                throw new IllegalArgumentException("missing value for " + a);
            }
        }
        return opts;
    }
}
