package io.jemma.bench.gpu;

import io.jemma.attention.AttentionLayer;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.backend.Graph;
import io.jemma.backend.Tensor;
import io.jemma.backend.cuda.CudaAvailability;
import io.jemma.backend.cuda.CudaBackend;
import io.jemma.backend.cuda.DeviceBench;
import io.jemma.backend.cuda.EventTimer;
import io.jemma.engine.DeviceMemoryPlan;
import io.jemma.engine.sampling.SamplingBatch;
import io.jemma.model.Gemma4Model;
import io.jemma.model.KvBudget;
import io.jemma.model.WeightSource;
import io.jemma.model.config.BundledConfigs;
import io.jemma.model.config.ExpectedTensor;
import io.jemma.model.config.LayerSpec;
import io.jemma.model.config.TextConfig;
import io.jemma.model.config.WeightNames;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * The GPU benchmark of issue 4 (tools/gpu/bench.sh runs it on the H200): the device's ceilings, then the
 * 31B model with dummy weights generated on the device. Sections, in order (--sections picks some):
 * <ul>
 *   <li>copy: device-to-device copy of 2 GiB, bytes read + written / time (the bandwidth floor's divisor);
 *   <li>matmul: cuBLASLt bf16 GEMM at 8192^3 and at the 31B 8k-prefill shapes (the peak is the best);
 *   <li>gemv: the decode matmuls at 1 token, GEMV kernel against cuBLASLt;
 *   <li>decode: 31B decode steps at 2k context, batch 1 (eager and graphs), 8 and 32 (graphs): median
 *       step time against the floor (weight + KV bytes read) / copy bandwidth;
 *   <li>prefill: one 8k-token prefill of 31B: effective TFLOP/s (2 * matmul params * tokens + attention)
 *       against the measured GEMM peak;
 *   <li>spec: speculative decoding's cost side (issue 6): 31B with its dummy assistant at 2k context, batch 1,
 *       8 and 32: one round (3 assistant draft steps + one verify forward of 4 tokens per request, through the
 *       Drafter and the model calls the Scheduler makes) against one plain decode step (CUDA graphs), and the
 *       speed-up that implies at accept lengths 1 to 4.
 * </ul>
 * Other sections (other helpers' benchmarks) are added to {@link #SECTIONS}. Timings: CUDA events or
 * wall clock as each row says, median of the timed runs after warm-ups. Prints a table and writes it as
 * TSV to --out (default $OUT/bench.tsv).
 */
public final class ModelBenchmark {

    /** One result line. */
    record Row(String section, String what, String value, String note) {
    }

    /** A benchmark section. */
    interface Section {
        void run(ModelBenchmark b) throws Exception;
    }

    static final Map<String, Section> SECTIONS = new LinkedHashMap<>();

    static {
        SECTIONS.put("copy", ModelBenchmark::copy);
        SECTIONS.put("matmul", ModelBenchmark::matmul);
        SECTIONS.put("gemv", ModelBenchmark::gemv);
        SECTIONS.put("decode", ModelBenchmark::decode);
        SECTIONS.put("prefill", ModelBenchmark::prefill);
        SECTIONS.put("spec", ModelBenchmark::speculative);
        SECTIONS.put("profile", ModelBenchmark::profile);
    }

    private static final long GIB = 1L << 30;
    private static final int MAX_BATCH = 32;
    private static final int PREFILL = 8192;

    private final CudaBackend backend;
    private final Map<String, String> options;
    private final List<Row> rows = new ArrayList<>();
    private final TextConfig config;
    private double copyGBps;
    private double peakTflops;
    private Gemma4Model model;

    ModelBenchmark(CudaBackend backend, Map<String, String> options) {
        this.backend = backend;
        this.options = options;
        this.config = BundledConfigs.load(options.getOrDefault("config", BundledConfigs.GEMMA_4_31B));
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> options = new LinkedHashMap<>();
        for (String a : args) {
            if (a.startsWith("--") && a.contains("=")) {
                options.put(a.substring(2, a.indexOf('=')), a.substring(a.indexOf('=') + 1));
            } else {
                throw new IllegalArgumentException("arguments are --name=value, not " + a);
            }
        }
        CudaAvailability a = CudaBackend.available();
        if (!a.available()) {
            System.err.println(a);
            System.exit(2);
        }
        List<String> sections = Arrays.asList(options.getOrDefault("sections", String.join(",", SECTIONS.keySet()))
                .split(","));
        String out = options.getOrDefault("out", System.getenv().getOrDefault("OUT", "/tmp") + "/bench.tsv");
        try (CudaBackend backend = new CudaBackend()) {
            // The attention backend the engine's auto choice takes without speculation, unless named.
            backend.attentionBackend(options.getOrDefault("attention-backend", "trtllm_mha"));
            ModelBenchmark b = new ModelBenchmark(backend, options);
            b.row("device", backend.device().toString(), "", a.detail());
            for (String name : sections) {
                Section s = SECTIONS.get(name.strip());
                if (s == null) {
                    throw new IllegalArgumentException("no section " + name + " (known: " + SECTIONS.keySet() + ")");
                }
                long start = System.nanoTime();
                try {
                    s.run(b);
                } catch (Exception | Error e) {
                    b.row(name, "FAILED", e.toString(), "");
                    e.printStackTrace();
                }
                System.out.printf(Locale.ROOT, "[bench] section %s done in %.1f s%n", name, (System.nanoTime() - start) / 1e9);
            }
            b.print(Path.of(out));
        }
    }

    int option(String name, int fallback) {
        return Integer.parseInt(options.getOrDefault(name, String.valueOf(fallback)));
    }

    void row(String section, String what, String value, String note) {
        Row r = new Row(section, what, value, note);
        rows.add(r);
        System.out.printf(Locale.ROOT, "[bench] %-8s %-62s %16s  %s%n", section, what, value, note);
    }

    private void print(Path out) throws IOException {
        StringBuilder tsv = new StringBuilder();
        System.out.println();
        System.out.printf(Locale.ROOT, "%-8s %-62s %16s  %s%n", "section", "what", "value", "note");
        for (Row r : rows) {
            System.out.printf(Locale.ROOT, "%-8s %-62s %16s  %s%n", r.section(), r.what(), r.value(), r.note());
            tsv.append(String.join("\t", r.section(), r.what(), r.value(), r.note())).append('\n');
        }
        Files.writeString(out, tsv.toString());
    }

    private static String f(String format, Object... args) {
        return String.format(Locale.ROOT, format, args);
    }

    private double copyBandwidth() {
        if (copyGBps == 0) {
            copyGBps = DeviceBench.copyGBps(backend, 2 * GIB, option("copy-runs", 20));
        }
        return copyGBps;
    }

    // ---- sections ----

    static void copy(ModelBenchmark b) {
        b.row("copy", "device copy 2 GiB (read + write bytes / time)", f("%.0f GB/s", b.copyBandwidth()),
                "cuMemcpyDtoDAsync, CUDA events, median of " + b.option("copy-runs", 20));
    }

    /** The distinct GEMM shapes of one 31B layer type at {@code tokens} rows: name -> {out, in, layers}. */
    private Map<String, int[]> layerShapes() {
        Map<String, int[]> shapes = new LinkedHashMap<>();
        int hidden = config.hiddenSize();
        for (LayerSpec s : config.layers()) {
            String kind = s.isSliding() ? "sliding" : "full";
            add(shapes, kind + " q_proj", s.qDim(), hidden);
            if (!s.kvShared()) {
                add(shapes, kind + " k_proj", s.kvDim(), hidden);
                if (!s.kEqV()) {
                    add(shapes, kind + " v_proj", s.kvDim(), hidden);
                }
            }
            add(shapes, kind + " o_proj", hidden, s.qDim());
            add(shapes, "gate_proj", s.mlpWidth(), hidden);
            add(shapes, "up_proj", s.mlpWidth(), hidden);
            add(shapes, "down_proj", hidden, s.mlpWidth());
        }
        return shapes;
    }

    private static void add(Map<String, int[]> shapes, String name, int out, int in) {
        int[] s = shapes.computeIfAbsent(name, k -> new int[] {out, in, 0});
        s[2]++;
    }

    static void matmul(ModelBenchmark b) {
        int reps = b.option("matmul-runs", 20);
        double square = DeviceBench.gemmTflops(b.backend, 8192, 8192, 8192, reps);
        b.peakTflops = square;
        b.row("matmul", "cuBLASLt bf16 8192 x 8192 x 8192", f("%.0f TFLOP/s", square), "bf16 in, fp32 accumulate and out");
        for (var e : b.layerShapes().entrySet()) {
            int[] s = e.getValue();
            double t = DeviceBench.gemmTflops(b.backend, PREFILL, s[0], s[1], reps);
            b.peakTflops = Math.max(b.peakTflops, t);
            b.row("matmul", f("8k prefill %s [8192, %d] x [%d, %d]^T", e.getKey(), s[1], s[0], s[1]),
                    f("%.0f TFLOP/s", t), "x" + s[2] + " per forward");
        }
        b.row("matmul", "peak (best of the above)", f("%.0f TFLOP/s", b.peakTflops), "");
    }

    static void gemv(ModelBenchmark b) {
        int reps = b.option("gemv-runs", 50);
        Map<String, int[][]> shapes = new LinkedHashMap<>();
        int hidden = b.config.hiddenSize();
        for (LayerSpec s : b.config.layers()) {
            String kind = s.isSliding() ? "sliding" : "full";
            int[] qkv = s.kEqV() ? new int[] {s.qDim(), s.kvDim()} : new int[] {s.qDim(), s.kvDim(), s.kvDim()};
            shapes.putIfAbsent(kind + (s.kEqV() ? " q+k" : " q+k+v") + " (one launch)", new int[][] {qkv, {hidden}});
            shapes.putIfAbsent(kind + " o_proj", new int[][] {{hidden}, {s.qDim()}});
            shapes.putIfAbsent("gate+up (one launch)", new int[][] {{s.mlpWidth(), s.mlpWidth()}, {hidden}});
            shapes.putIfAbsent("down_proj", new int[][] {{hidden}, {s.mlpWidth()}});
        }
        shapes.put("lm_head", new int[][] {{b.config.vocabSize()}, {hidden}});
        double copy = b.copyBandwidth();
        for (var e : shapes.entrySet()) {
            int[] outs = e.getValue()[0];
            int in = e.getValue()[1][0];
            double bytes = 2.0 * in * Arrays.stream(outs).asLongStream().sum();
            double ours = DeviceBench.matmulMicros(b.backend, 1, outs, in, true, reps);
            double lt = DeviceBench.matmulMicros(b.backend, 1, outs, in, false, reps);
            b.row("gemv", f("1 token x %s %s x %d", e.getKey(), Arrays.toString(outs), in),
                    f("%.1f / %.1f us", ours, lt), f("GEMV %.0f GB/s (%.0f%% of copy), cuBLASLt %.0f GB/s",
                            bytes / ours / 1e3, 100 * bytes / ours / 1e3 / copy, bytes / lt / 1e3));
        }
        // The model's gate+up: one launch that also applies gelu (Backend.gatedMlpInput), against the row above.
        int width = b.config.layers().get(0).mlpWidth();
        double bytes = 2.0 * hidden * 2 * width;
        double fused = DeviceBench.gatedMicros(b.backend, 1, width, hidden, true, reps);
        double unfused = DeviceBench.gatedMicros(b.backend, 1, width, hidden, false, reps);
        b.row("gemv", f("1 token x gate+up+gelu (gatedMlpInput) [%d, %d] x %d", width, width, hidden),
                f("%.1f / %.1f us", fused, unfused), f("fused GEMV %.0f%% of copy; GEMV + gelu launch %.0f%%",
                        100 * bytes / fused / 1e3 / copy, 100 * bytes / unfused / 1e3 / copy));
    }

    /** The 31B model with dummy weights, KV for 32 sequences of 2k + one 8k prefill (loaded once). */
    private Gemma4Model model() {
        if (model == null) {
            int page = 16;
            KvBudget budget = KvBudget.of(config, backend);
            int decodeLength = 2048 + 256;
            int fullPages = MAX_BATCH * ceil(decodeLength, page) + ceil(PREFILL + page, page) + 2;
            int slidingPages = MAX_BATCH * (ceil(budget.slidingWindow() - 1 + page, page) + 1)
                    + ceil(budget.slidingWindow() - 1 + PREFILL, page) + 1 + 2
                    + MAX_BATCH;   // speculation (spec): verify rows and positions kept behind the window
            KvGeometry kv = new KvGeometry(page, fullPages, slidingPages);
            long start = System.nanoTime();
            model = new Gemma4Model(config, WeightSource.dummy(config, 0), backend, kv);
            if (options.getOrDefault("sections", "spec").contains("spec")) {
                // Before any sequence (the decode section's graphs keep padding sequences): see speculative().
                model.kvCache().retainBehindWindow(speculativeRetained(this));
            }
            backend.synchronize();
            double seconds = (System.nanoTime() - start) / 1e9;
            row("model", "31B dummy weights generated on the GPU, KV pools allocated", f("%.2f s", seconds),
                    f("weights %.1f GiB, KV %.1f GiB, seed 0", DeviceMemoryPlan.weightBytes(config) / (double) GIB,
                            budget.bytes(kv) / (double) GIB));
        }
        return model;
    }

    private static int ceil(int a, int b) {
        return (a + b - 1) / b;
    }

    /**
     * Sequence {@code id} with room for {@code maxLength} positions and its first {@code context} positions
     * cached: the pages taken and released as a chunked prefill would, with no compute (decode timings do not
     * depend on the cached values, which are zeros).
     */
    private static void withContext(io.jemma.kv.KvCache kv, int id, int context, int maxLength) {
        if (!kv.reserve(id, maxLength, 16)) {
            throw new IllegalStateException("no KV room for sequence " + id);
        }
        for (int p = 0; p < context; p += 16) {
            kv.extend(id, p + 16);
            kv.written(id, p + 16);
        }
    }

    /** The prompt of the prefill benchmarks: {@code tokens} ids spread over the vocabulary. */
    private int[] prefillIds(int tokens) {
        int[] ids = new int[tokens];
        for (int i = 0; i < tokens; i++) {
            ids[i] = (int) ((i * 7919L + 11) % config.vocabSize());
        }
        return ids;
    }

    static void decode(ModelBenchmark b) {
        Gemma4Model m = b.model();
        int context = b.option("context", 2048);
        int steps = b.option("decode-steps", 30);
        int warm = 5;
        double copy = b.copyBandwidth();
        long weightBytes = DeviceMemoryPlan.weightBytes(b.config);
        // Batch 1 eagerly first (graphs are switched on after it, for good).
        b.decodeAt(m, 1, context, Math.min(steps, 10), warm, weightBytes, copy, false);
        m.useGraphs(MAX_BATCH);
        for (int batch : new int[] {1, 8, 32}) {
            b.decodeAt(m, batch, context, steps, warm, weightBytes, copy, true);
        }
    }

    private void decodeAt(Gemma4Model m, int batch, int context, int steps, int warm, long weightBytes, double copy,
                          boolean graphs) {
        var kv = m.kvCache();
        int base = 1000 * batch + (graphs ? 0 : 500);
        for (int s = 0; s < batch; s++) {
            withContext(kv, base + s, context, context + warm + steps + 16);
        }
        int[] position = new int[batch];
        Arrays.fill(position, context);
        int[] rows = IntStream.range(0, batch).toArray();
        double[] wall = new double[steps];
        ForwardBatch last = null;
        for (int i = 0; i < warm + steps; i++) {
            int[][] layout = new int[batch][];
            int[] ids = new int[batch];
            for (int s = 0; s < batch; s++) {
                layout[s] = new int[] {base + s, position[s]++, 1};
                ids[s] = (17 * i + 31 * s) % 262144;
            }
            last = ForwardBatch.of(layout);
            long t0 = System.nanoTime();
            m.forwardAndSample(last, ids, rows, SamplingBatch.greedy(batch));
            if (i >= warm) {
                wall[i - warm] = (System.nanoTime() - t0) / 1e6;
            }
        }
        Arrays.sort(wall);
        double stepMs = wall[steps / 2];
        // KV bytes read by the step: every sequence's visible positions, keys and values, every layer.
        KvBudget budget = KvBudget.of(config, backend);
        long kvBytes = 0;
        for (int s = 0; s < batch; s++) {
            int visible = position[s];
            kvBytes += (long) Math.min(visible, budget.slidingWindow()) * budget.slidingBytesPerToken()
                    + (long) visible * budget.fullBytesPerToken();
        }
        double floorMs = (weightBytes + kvBytes) / copy / 1e6;
        String label = f("31B decode batch %d at %d context, %s", batch, context, graphs ? "CUDA graphs" : "eager");
        row("decode", label + ": step (wall, with sampling)", f("%.2f ms", stepMs),
                f("floor %.2f ms = (%.1f GB weights + %.2f GB KV) / %.0f GB/s: %.2fx; %.0f tokens/s", floorMs,
                        weightBytes / 1e9, kvBytes / 1e9, copy, stepMs / floorMs, batch * 1e3 / stepMs));
        if (graphs) {
            Graph g = m.decodeGraph(batch);
            if (g != null) {
                double replay = new EventTimer(backend).medianMillis(g::replay, 3, 20);
                row("decode", label + ": graph replay (device)", f("%.2f ms", replay),
                        f("%.2fx the floor; forward only, CUDA events", replay / floorMs));
            }
            double attention = attentionOnly(m, last);
            row("decode", label + ": attention alone (device)", f("%.2f ms", attention),
                    f("%d layers, %s backend, eager launches", m.attentionLayers().size(), m.attention().name()));
        }
        for (int s = 0; s < batch; s++) {
            m.release(base + s);
        }
    }

    /**
     * One eager decode step at --profile-batch (default 1) and 2k context, or with --profile=prefill one 8k
     * prefill, between cuProfilerStart and cuProfilerStop after warm-ups: run under
     * {@code ncu --profile-from-start off} (tools/gpu/profile.sh) it lists every kernel of exactly that step.
     */
    static void profile(ModelBenchmark b) {
        Gemma4Model m = b.model();
        boolean prefill = b.options.getOrDefault("profile", "decode").equals("prefill");
        if (prefill) {
            int tokens = b.option("prefill-tokens", PREFILL);
            int[] ids = b.prefillIds(tokens);
            ForwardBatch batch = ForwardBatch.of(new int[][] {{77_000, 0, tokens}});
            for (int i = 0; i < 2; i++) {
                if (!m.kvCache().reserve(77_000, tokens + 16, tokens)) {
                    throw new IllegalStateException("no KV room for the prefill");
                }
                if (i == 1) {
                    b.backend.profiler(true);
                }
                m.forward(batch, ids, new int[] {tokens - 1});
                if (i == 1) {
                    b.backend.profiler(false);
                }
                m.release(77_000);
            }
            b.row("profile", f("prefill of %d tokens profiled", tokens), "done", "");
            return;
        }
        int batch = b.option("profile-batch", 1);
        int context = b.option("context", 2048);
        var kv = m.kvCache();
        for (int s = 0; s < batch; s++) {
            withContext(kv, 90_000 + s, context, context + 32);
        }
        int[] rows = IntStream.range(0, batch).toArray();
        for (int i = 0; i < 4; i++) {
            int[][] layout = new int[batch][];
            int[] ids = new int[batch];
            for (int s = 0; s < batch; s++) {
                layout[s] = new int[] {90_000 + s, context + i, 1};
                ids[s] = (17 * i + 31 * s) % b.config.vocabSize();
            }
            if (i == 3) {
                b.backend.synchronize();
                b.backend.profiler(true);
            }
            m.forwardAndSample(ForwardBatch.of(layout), ids, rows, SamplingBatch.greedy(batch));
            if (i == 3) {
                b.backend.synchronize();
                b.backend.profiler(false);
            }
        }
        for (int s = 0; s < batch; s++) {
            m.release(90_000 + s);
        }
        b.row("profile", f("decode step at batch %d, %d context, eager, profiled", batch, context), "done", "");
    }

    /** Every layer's attention for the batch's positions (the step just run), timed without the rest. */
    private double attentionOnly(Gemma4Model m, ForwardBatch batch) {
        int tokens = batch.totalTokens();
        List<Tensor[]> io = new ArrayList<>();
        for (AttentionLayer l : m.attentionLayers()) {
            io.add(new Tensor[] {backend.allocate(tokens, l.heads() * l.headDim()),
                    backend.allocate(tokens, l.kvHeads() * l.headDim()), backend.allocate(tokens, l.kvHeads() * l.headDim()),
                    backend.allocate(tokens, l.heads() * l.headDim())});
        }
        m.attention().beginStep(batch, m.kvCache());
        return new EventTimer(backend).medianMillis(() -> {
            for (int i = 0; i < io.size(); i++) {
                Tensor[] t = io.get(i);
                m.attention().attend(m.attentionLayers().get(i), batch, m.kvCache(), t[0], t[1], t[2], t[3]);
            }
        }, 2, 10);
    }

    static void prefill(ModelBenchmark b) {
        Gemma4Model m = b.model();
        int tokens = b.option("prefill-tokens", PREFILL);
        int runs = b.option("prefill-runs", 20);
        int id = 77_000;
        int[] ids = b.prefillIds(tokens);
        ForwardBatch batch = ForwardBatch.of(new int[][] {{id, 0, tokens}});
        List<Double> times = new ArrayList<>();
        int warm = 2;
        for (int i = 0; i < warm + runs; i++) {
            // A fresh sequence each run (the last run's sliding pages behind the window were freed).
            if (!m.kvCache().reserve(id, tokens + 16, tokens)) {
                throw new IllegalStateException("no KV room for the prefill");
            }
            long t0 = System.nanoTime();
            m.forward(batch, ids, new int[] {tokens - 1});                 // ends with the logits' download
            double ms = (System.nanoTime() - t0) / 1e6;
            m.release(id);
            if (i >= warm) {
                times.add(ms);
            } else if (i == 0 && ms > 2000 && runs > 5 && !b.options.containsKey("prefill-runs")) {
                runs = 5;                          // a slow prefill: fewer runs, said in the row
            }
        }
        times.sort(null);
        double ms = times.get(times.size() / 2);
        long params = 0;
        long embed = (long) b.config.vocabSize() * b.config.hiddenSize();
        for (ExpectedTensor t : WeightNames.expectedTensors(b.config)) {
            if (t.shape().length >= 2 && !t.name().equals(WeightNames.of(b.config).embedTokens())) {
                params += t.numel();
            }
        }
        double attention = 0;
        for (LayerSpec s : b.config.layers()) {
            int window = s.isSliding() ? s.slidingWindow() : Integer.MAX_VALUE;
            double visible = 0;
            for (int t = 0; t < tokens; t++) {
                visible += Math.min(t + 1, window);
            }
            attention += 4.0 * s.numHeads() * s.headDim() * visible;   // q.k and p.v, 2 flops per multiply-add
        }
        double flops = 2.0 * params * tokens + 2.0 * embed + attention;
        double tflops = flops / ms / 1e9;
        if (b.peakTflops == 0) {
            b.peakTflops = DeviceBench.gemmTflops(b.backend, 8192, 8192, 8192, 10);
        }
        b.row("prefill", f("31B prefill of %d tokens, one sequence (wall, to the logits)", tokens), f("%.1f ms", ms),
                f("%.0f TFLOP/s effective = %.0f%% of the %.0f TFLOP/s GEMM peak; median of %d after %d warm-up",
                        tflops, 100 * tflops / b.peakTflops, b.peakTflops, times.size(), warm));
        b.row("prefill", "  counted: 2 x matmul params x tokens + lm_head row + attention",
                f("%.1f TFLOP", flops / 1e12), f("%.2f B matmul params; attention %.1f TFLOP (causal, windows)",
                        params / 1e9, attention / 1e12));
        // What the GEMMs alone cost at these shapes (the backend's matmul: operand conversion included).
        double gemmMs = 0;
        for (var e : b.layerShapes().entrySet()) {
            int[] s = e.getValue();
            gemmMs += s[2] * DeviceBench.matmulMicros(b.backend, tokens, s[0], s[1], true, 5) / 1e3;
        }
        b.row("prefill", "  of which the layers' GEMMs (timed alone, same shapes)", f("%.1f ms", gemmMs),
                f("rest (attention, norms, RoPE, activations): %.1f ms", ms - gemmMs));
    }

    /**
     * Speculative decoding's cost (issue 6): a round as the Scheduler runs it for {@code batch} decoding requests of
     * 3-1-4 chains (Drafter.draft: 3 assistant steps replayed from graphs, each step's argmax written on the device
     * into the next step's input ids, the projected states staying there, the chain's tokens read once; then one target
     * forward over the 4-token verify chunks, replayed from the verify graph of the batch's bucket, the target's argmax
     * per row picked on the device (only those ints come back), the walk on the host, and the hidden state of each
     * sequence's last kept row to the host; then the rollback to the root + 1) against one plain decode step
     * (forwardAndSample with CUDA graphs, as the decode section). Dummy weights accept (almost) nothing, so every round
     * keeps one token; a real assistant keeps its accept length L (the bonus token counted), so decoding runs L /
     * (round / step) times faster than without speculation.
     */
    static void speculative(ModelBenchmark b) {
        Gemma4Model m = b.model();
        int context = b.option("context", 2048);
        int rounds = b.option("spec-rounds", 20);
        int warm = 3;
        io.jemma.model.config.AssistantConfig ac = io.jemma.model.config.BundledConfigs.loadAssistant(
                b.options.getOrDefault("assistant-config", io.jemma.model.config.BundledConfigs.GEMMA_4_31B_ASSISTANT));
        io.jemma.speculative.SpeculativeLimits limits = io.jemma.speculative.SpeculativeLimits.chain(
                b.option("spec-steps", 3));
        long start = System.nanoTime();
        io.jemma.model.Gemma4Assistant assistant = new io.jemma.model.Gemma4Assistant(ac,
                WeightSource.dummy(ac.decoder(), 1), m);
        b.backend.synchronize();
        b.row("spec", f("dummy assistant (%d layers, hidden %d) generated on the GPU", ac.decoder().numHiddenLayers(),
                ac.decoder().hiddenSize()), f("%.2f s", (System.nanoTime() - start) / 1e9),
                f("%s, seed 1; %s attention", ac.decoder().weightDType().orElse(io.jemma.backend.DType.BF16),
                        m.attention().name()));
        if (m.kvCache().retainedBehindWindow() < speculativeRetained(b)) {
            m.kvCache().retainBehindWindow(speculativeRetained(b));
        }
        m.useGraphs(MAX_BATCH, limits.numDraftTokens());
        io.jemma.speculative.Drafter drafter = new io.jemma.speculative.Drafter(assistant, limits);
        for (int batch : new int[] {1, 4, 8, 32}) {
            b.speculativeAt(m, assistant, drafter, batch, context, rounds, warm, "");
        }
        // A verify of 4 tokens at batch 1 is a 4-row matmul: the GEMV kernel's 4-row variant against cuBLASLt
        // (and what the same switch does to a plain decode step at batch 4). Graphs freeze the kernels they
        // recorded: they are dropped and recorded again under each choice.
        int gemvRows = b.backend.gemvMaxRows();
        b.backend.gemvMaxRows(3);
        m.clearGraphs();
        assistant.clearGraphs();
        try {
            for (int batch : new int[] {1, 4}) {
                b.speculativeAt(m, assistant, drafter, batch, context, rounds, warm,
                        " [GEMV up to 3 rows: 4-row matmuls on cuBLASLt]");
            }
        } finally {
            b.backend.gemvMaxRows(gemvRows);
            m.clearGraphs();
            assistant.clearGraphs();
        }
    }

    /** As SpeculativeDecoding: rolled-back verify rows may push the sliding window past the next query. */
    private static int speculativeRetained(ModelBenchmark b) {
        return io.jemma.speculative.SpeculativeLimits.chain(b.option("spec-steps", 3)).numDraftTokens()
                + io.jemma.model.Gemma4Assistant.RETAINED_BEHIND_WINDOW - 1;
    }

    private void speculativeAt(Gemma4Model m, io.jemma.model.Gemma4Assistant assistant,
                               io.jemma.speculative.Drafter drafter, int batch, int context, int rounds, int warm,
                               String variant) {
        var kv = m.kvCache();
        int rows = drafter.limits().numDraftTokens();
        int base = 50_000 + 1000 * batch;
        for (int s = 0; s < batch; s++) {
            withContext(kv, base + s, context, context + 2 * (warm + rounds) + rows + 16);
        }
        int vocab = config.vocabSize();
        int[] position = new int[batch];
        Arrays.fill(position, context);
        int[] sampleRows = IntStream.range(0, batch).toArray();
        // Plain decode steps (graphs), the baseline.
        double[] plain = new double[rounds];
        for (int i = 0; i < warm + rounds; i++) {
            int[][] layout = new int[batch][];
            int[] ids = new int[batch];
            for (int s = 0; s < batch; s++) {
                layout[s] = new int[] {base + s, position[s]++, 1};
                ids[s] = (17 * i + 31 * s) % vocab;
            }
            long t0 = System.nanoTime();
            m.forwardAndSample(ForwardBatch.of(layout), ids, sampleRows, SamplingBatch.greedy(batch));
            if (i >= warm) {
                plain[i - warm] = (System.nanoTime() - t0) / 1e6;
            }
        }
        // Rounds: draft, verify, roll back to the root + the bonus token (what dummy weights accept).
        int backbone = m.config().hiddenSize();           // the assistant's backbone_hidden_size
        float[][] hidden = new float[batch][];
        java.util.SplittableRandom r = new java.util.SplittableRandom(7);
        for (int s = 0; s < batch; s++) {
            hidden[s] = new float[backbone];
            for (int j = 0; j < backbone; j++) {
                hidden[s][j] = (float) r.nextGaussian();
            }
        }
        int[] last = new int[batch];
        double[] round = new double[rounds];
        double[] draft = new double[rounds];
        double[] verify = new double[rounds];
        double accepted = 0;
        for (int i = 0; i < warm + rounds; i++) {
            long t0 = System.nanoTime();
            List<io.jemma.speculative.Drafter.Request> requests = new ArrayList<>(batch);
            for (int s = 0; s < batch; s++) {
                requests.add(new io.jemma.speculative.Drafter.Request(base + s, position[s], last[s], hidden[s],
                        drafter.limits().numSteps(), false, null));
            }
            List<io.jemma.speculative.DraftTree> trees = drafter.draft(requests);
            long t1 = System.nanoTime();
            List<io.jemma.attention.SequenceChunk> chunks = new ArrayList<>(batch);
            int[] ids = new int[batch * rows];
            int[] logitRows = new int[batch * rows];
            int row = 0;
            for (int s = 0; s < batch; s++) {
                io.jemma.speculative.DraftTree t = trees.get(s);
                chunks.add(new io.jemma.attention.SequenceChunk(base + s, position[s], t.size(), row));
                for (int j = 0; j < t.size(); j++) {
                    ids[row] = t.token(j);
                    logitRows[row] = row;
                    row++;
                }
            }
            var logitsT = m.logits(new ForwardBatch(chunks, row), ids, Arrays.copyOf(logitRows, row));
            int[] best = m.backend().sample(logitsT, SamplingBatch.greedy(row)).tokens();   // the target's argmax per row
            long t2 = System.nanoTime();
            // The target's greedy walk along each chain (as the Scheduler's verify), then the rollback.
            int at = 0;
            int[] keptRows = new int[batch];
            for (int s = 0; s < batch; s++) {
                io.jemma.speculative.DraftTree t = trees.get(s);
                int keep = 0;
                int next = best[at];
                while (keep + 1 < t.size() && t.token(keep + 1) == next) {
                    keep++;
                    next = best[at + keep];
                }
                keptRows[s] = at + keep;
                last[s] = next;
                position[s] += keep + 1;
                kv.truncate(base + s, position[s]);
                if (i >= warm) {
                    accepted += keep + 1;
                }
                at += t.size();
            }
            float[] states = m.hiddenRows(keptRows);            // what the next drafts start from
            for (int s = 0; s < batch; s++) {
                hidden[s] = Arrays.copyOfRange(states, s * backbone, (s + 1) * backbone);
            }
            long t3 = System.nanoTime();
            if (i >= warm) {
                round[i - warm] = (t3 - t0) / 1e6;
                draft[i - warm] = (t1 - t0) / 1e6;
                verify[i - warm] = (t3 - t1) / 1e6;
            }
        }
        // The GPU side alone: the last verify's graph, then (after one more draft, whose attention metadata the
        // draft graph reads) a draft step's graph, each replayed back to back on the inputs they last had.
        double verifyGpu = replayMs(m.verifyGraph(batch), 20);
        List<io.jemma.speculative.Drafter.Request> again = new ArrayList<>(batch);
        for (int s = 0; s < batch; s++) {
            again.add(new io.jemma.speculative.Drafter.Request(base + s, position[s], last[s], hidden[s],
                    drafter.limits().numSteps(), false, null));
        }
        drafter.draft(again);
        double draftGpu = replayMs(assistant.draftGraph(batch), 20);
        double stepMs = median(plain);
        double roundMs = median(round);
        double ratio = roundMs / stepMs;
        String label = f("31B + assistant, batch %d at %d context%s", batch, context, variant);
        row("spec", label + ": plain decode step (graphs, wall)", f("%.2f ms", stepMs),
                f("forwardAndSample, median of %d", rounds));
        row("spec", label + ": round 3 drafts + verify of 4 (wall)", f("%.2f ms", roundMs),
                f("draft %.2f ms (3 assistant steps replayed, each argmax into the next step's ids on the device, the"
                        + " tokens read once), verify %.2f ms"
                        + " (graph of %d rows, argmax on the device, walk, %d hidden rows to host)%s",
                        median(draft), median(verify), batch * rows, batch,
                        m.graphsEnabled() ? "" : " [graphs OFF]"));
        row("spec", label + ": GPU alone: verify graph, one draft step's graph", f("%.2f ms", verifyGpu),
                f("draft step %.3f ms (x %d steps = %.2f ms); median replay, CUDA events", draftGpu,
                        drafter.limits().numSteps(), draftGpu * drafter.limits().numSteps()));
        StringBuilder speedups = new StringBuilder();
        for (int len = 1; len <= rows; len++) {
            speedups.append(f("%sL=%d: %.2fx", len > 1 ? ", " : "", len, len / ratio));
        }
        row("spec", label + ": round / step", f("%.2fx", ratio), (batch == 1 ? "goal <= 1.35x; " : "")
                + "speed-up at accept length " + speedups + f(" (dummy weights kept %.2f per round)",
                accepted / ((double) rounds * batch)));
        for (int s = 0; s < batch; s++) {
            m.release(base + s);
        }
    }

    /** Median milliseconds of a replay of {@code g} on the device (CUDA events), NaN when there is none. */
    private double replayMs(io.jemma.backend.Graph g, int n) {
        return g == null ? Double.NaN : new EventTimer(backend).medianMillis(g::replay, 1, n);
    }

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }
}
