package io.jemma.bench;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * The results as one JSON object with sglang bench_serving's keys (so scripts that read its JSONL read
 * ours), plus the figures it only prints or leaves out (failed, p90s, peaks). Appended as one line per run,
 * as sglang appends.
 */
public final class ResultJson {

    private ResultJson() {
    }

    public static ObjectNode of(BenchArgs args, String model, BenchMetrics m, List<RequestResult> results) {
        ObjectNode o = BenchJson.MAPPER.createObjectNode();
        o.put("backend", args.api().label());
        o.put("base_url", args.baseUrl().toString());
        o.put("model", model);
        o.put("dataset_name", args.dataset().name);
        putRate(o, "request_rate", args.requestRate());
        if (args.maxConcurrency() > 0) {
            o.put("max_concurrency", args.maxConcurrency());
        } else {
            o.putNull("max_concurrency");
        }
        o.put("num_prompts", results.size());
        o.put("seed", args.seed());
        if (args.dataset() == BenchArgs.Dataset.RANDOM) {
            o.put("random_input_len", args.randomInputLen());
            o.put("random_output_len", args.randomOutputLen());
            o.put("random_range_ratio", args.randomRangeRatio());
        } else {
            o.put("gsp_num_groups", args.gsp().groups());
            o.put("gsp_prompts_per_group", args.gsp().promptsPerGroup());
            o.put("gsp_system_prompt_len", args.gsp().systemPromptLen());
            o.put("gsp_question_len", args.gsp().questionLen());
            o.put("gsp_output_len", args.gsp().outputLen());
        }
        o.put("duration", m.durationS());
        o.put("completed", m.completed());
        o.put("failed", m.failed());
        o.put("total_input_tokens", m.totalInput());
        o.put("total_output_tokens", m.totalOutput());
        if (m.totalOutputRetokenized() >= 0) {
            o.put("total_output_tokens_retokenized", m.totalOutputRetokenized());
        } else {
            o.putNull("total_output_tokens_retokenized");
        }
        o.put("request_throughput", m.requestThroughput());
        o.put("input_throughput", m.inputThroughput());
        o.put("output_throughput", m.outputThroughput());
        o.put("total_throughput", m.totalThroughput());
        o.put("max_output_tokens_per_s", m.peakOutputThroughput());
        o.put("max_concurrent_requests", m.peakConcurrent());
        o.put("concurrency", m.concurrency());
        summary(o, "e2e_latency", m.e2eMs());
        summary(o, "ttft", m.ttftMs());
        summary(o, "tpot", m.tpotMs());
        summary(o, "itl", m.itlMs());
        return o;
    }

    /** Per-request arrays, as sglang's {@code --output-details} (failed requests have 0 lengths and times). */
    public static void addDetails(ObjectNode o, List<RequestResult> results,
            java.util.function.ToIntFunction<String> retokenize) {
        ArrayNode inputs = o.putArray("input_lens");
        ArrayNode outputs = o.putArray("output_lens");
        ArrayNode ttfts = o.putArray("ttfts");
        ArrayNode itls = o.putArray("itls");
        ArrayNode texts = o.putArray("generated_texts");
        ArrayNode errors = o.putArray("errors");
        for (RequestResult r : results) {
            var counts = r.success() ? BenchMetrics.tokens(r, retokenize) : null;
            inputs.add(counts != null ? counts.input() : r.prompt().inputLen());
            outputs.add(counts != null ? counts.output() : 0);
            ttfts.add(r.ttft());
            ArrayNode gaps = itls.addArray();
            for (double gap : r.itl()) {
                gaps.add(gap);
            }
            texts.add(r.generatedText());
            errors.add(r.error());
        }
    }

    public static void append(Path file, ObjectNode o) throws IOException {
        Files.writeString(file, o.toString() + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                StandardOpenOption.APPEND);
    }

    private static void summary(ObjectNode o, String name, Stats.Summary s) {
        o.put("mean_" + name + "_ms", s.mean());
        o.put("median_" + name + "_ms", s.median());
        o.put("std_" + name + "_ms", s.std());
        o.put("p90_" + name + "_ms", s.p90());
        o.put("p95_" + name + "_ms", s.p95());
        o.put("p99_" + name + "_ms", s.p99());
        o.put("max_" + name + "_ms", s.max());
    }

    /** JSON has no infinity; sglang's json.dumps writes Infinity, which strict readers reject, so write "inf". */
    private static void putRate(ObjectNode o, String key, double rate) {
        if (Double.isInfinite(rate)) {
            o.put(key, "inf");
        } else {
            o.put(key, rate);
        }
    }
}
