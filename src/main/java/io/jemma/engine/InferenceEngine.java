package io.jemma.engine;

import io.jemma.attention.AttentionDispatch;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.backend.Backend;
import io.jemma.backend.cpu.CpuBackend;
import io.jemma.backend.cuda.CudaAvailability;
import io.jemma.backend.cuda.CudaBackend;
import io.jemma.model.KvBudget;
import io.jemma.model.config.AttentionType;
import io.jemma.model.config.BundledConfigs;
import io.jemma.model.config.LayerSpec;
import io.jemma.model.config.TextConfig;
import io.jemma.speculative.SpeculativeLimits;
import io.jemma.speculative.SpeculativeSettings;
import io.jemma.tokenizer.ChatTemplate;
import io.jemma.tokenizer.Tokenizer;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import io.smallrye.mutiny.Multi;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import org.jboss.logging.Logger;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The inference engine: owns the model, its KV memory and the scheduler thread. Started at boot; the
 * weights load in the background so the HTTP server (and its health probes) come up at once.
 * Requests become {@link Multi}s of {@link GenerationChunk}s; cancelling the subscription aborts the
 * request, and its pages are free within one scheduler step.
 */
@ApplicationScoped
public class InferenceEngine {
    private static final Logger LOG = Logger.getLogger(InferenceEngine.class);

    @Inject
    EngineConfig config;

    @Inject
    MeterRegistry registry;

    private final AtomicInteger nextSequenceId = new AtomicInteger();
    private volatile LoadedModel loaded;
    private volatile Scheduler scheduler;
    private volatile Thread schedulerThread;
    private volatile ModelCard card;
    private volatile Throwable loadFailure;
    private volatile boolean draining;
    private final java.util.concurrent.atomic.AtomicLong drainDeadline = new java.util.concurrent.atomic.AtomicLong(Long.MIN_VALUE);
    private int contextLength;
    private int maxPromptTokens;
    /** Speculative decoding as configured; empty when off. */
    private Optional<SpeculativeSettings> speculativeSettings = Optional.empty();
    private volatile SpeculativeDecoding speculative;
    /** The GPU memory split, when the model runs on CUDA (null on the CPU). */
    private DeviceMemoryPlan memoryPlan;

    void onStart(@Observes StartupEvent event) {
        Thread loader = new Thread(this::load, "jemma-model-loader");
        loader.setDaemon(true);
        loader.start();
    }

    void onStop(@Observes ShutdownEvent event) {
        drain(config.drainTimeout()); // running requests finish first (at once when already drained)
        Scheduler s = scheduler;
        if (s != null) {
            s.stop();
        }
        LoadedModel m = loaded;
        if (m != null && schedulerThread != null) {
            try {
                schedulerThread.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        // The assistant first: its graphs and weights live on the target's backend, which the model closes.
        SpeculativeDecoding spec = speculative;
        if (spec != null) {
            spec.assistant().close();
        }
        if (m != null && schedulerThread != null) {
            m.close();
        }
    }

    private void load() {
        try {
            boolean dummy = loadFormat().equals("dummy");
            boolean embedded = config.modelPath().isEmpty();
            // Inconsistent speculative settings fail before the weights are read.
            speculativeSettings = SpeculativeSettings.resolve(config.speculativeAlgorithm(),
                    config.speculativeDraftModelPath(), config.speculativeNumSteps(), config.speculativeEagleTopk(),
                    config.speculativeNumDraftTokens());
            String bundled = dummy ? config.modelPath().map(InferenceEngine::bundledConfig).orElse(null) : null;
            Path dir = embedded ? EmbeddedModel.extract() : bundled != null ? null : Path.of(config.modelPath().get());
            String name = config.servedModelName().orElse(embedded ? EmbeddedModel.NAME
                    : bundled != null ? bundled : dir.getFileName().toString());
            TextConfig textConfig = bundled != null ? BundledConfigs.load(bundled) : TextConfig.load(dir);
            LOG.infof("loading %s from %s", name, dummy ? "dummy weights (seed " + config.dummySeed() + ") at the shapes of "
                    + (bundled != null ? "the bundled config " + bundled : dir.resolve("config.json"))
                    : embedded ? "the embedded checkpoint" : dir);
            Backend backend = backend(textConfig);
            AttentionDispatch.Choice attention = attentionChoice(textConfig, backend);
            LOG.infof("attention backend: %s", attention.reason());
            if (backend instanceof CudaBackend cuda) {
                cuda.attentionBackend(attention.backend());
                cuda.storeKEqVOnce(config.kvStoreKEqVOnce());
                if (config.kvStoreKEqVOnce() && textConfig.layers().stream().anyMatch(s -> s.kEqV())) {
                    KvBudget budget = KvBudget.of(textConfig, backend);
                    LOG.infof("K=V stored once: the k_eq_v layers cache V only (KV bytes per token: full %d, sliding %d)",
                            budget.fullBytesPerToken(), budget.slidingBytesPerToken());
                }
            }
            LoadedModel m;
            if (dummy) {
                Path tokenizerDir = dir != null && java.nio.file.Files.isRegularFile(dir.resolve("tokenizer.json"))
                        ? dir : EmbeddedModel.extract();
                if (tokenizerDir != dir) {
                    LOG.infof("no tokenizer.json with the dummy model: using the embedded model's tokenizer (%s);"
                            + " generated ids beyond its vocabulary decode to no text", EmbeddedModel.NAME);
                }
                long start = System.nanoTime();
                m = LoadedModel.dummy(dir, textConfig, tokenizerDir, backend, config.dummySeed(), this::kvGeometry);
                LOG.infof("dummy weights generated in %d ms", (System.nanoTime() - start) / 1_000_000);
            } else {
                int[] lastPercent = {-1};
                m = LoadedModel.load(dir, backend, (done, total) -> {
                    int percent = total == 0 ? 100 : (int) (100 * done / total);
                    if (percent / 10 != lastPercent[0] / 10) {
                        lastPercent[0] = percent;
                        LOG.infof("weights mapped and checked: %d%% of %d MB", percent, total >> 20);
                    }
                }, this::kvGeometry);
            }
            if (memoryPlan != null) {
                var kv = m.model().kvCache();
                long kvTaken = KvBudget.of(textConfig, backend).bytes(
                        new KvGeometry(kv.pageSize(), kv.fullPool().capacity(), kv.slidingPool().capacity()));
                LOG.infof("GPU memory: %s; KV pool %s (%d full-attention pages of %d tokens)", memoryPlan,
                        DeviceMemoryPlan.gib(kvTaken), kv.fullPool().capacity(), kv.pageSize());
            }
            contextLength = contextLength(m);
            maxPromptTokens = Math.min(config.maxPromptTokens().orElse(contextLength - 1), contextLength - 1);
            Set<Integer> eos = new HashSet<>(m.config().stopTokenIds());
            m.tokenizer().eosId().ifPresent(eos::add);
            m.tokenizer().tokenId("<turn|>").ifPresent(eos::add); // Gemma 4's end of turn
            Tags tags = Tags.of("model", name, "backend", backend.name(), "attention_backend",
                    m.model().attention().name());
            EngineMetrics metrics = new EngineMetrics(registry, tags);
            int chunk = config.chunkedPrefillSize();
            SpeculativeDecoding spec = null;
            if (speculativeSettings.isPresent()) {
                SpeculativeSettings ss = speculativeSettings.get();
                spec = SpeculativeDecoding.load(ss, m.model(), metrics);
                metrics.speculative(registry, tags, ss.limits().numDraftTokens());
                var a = spec.assistant();
                LOG.infof("speculative decoding: %s (assistant: %d layers, hidden %d, reading the KV of layers %s)", ss,
                        a.layers().size(), a.config().decoder().hiddenSize(),
                        a.layers().stream().map(l -> l.kvSourceLayer() + " (" + l.attentionType().configName() + ")")
                                .distinct().toList());
            }
            speculative = spec;
            if (!config.disableCudaGraph()) {
                // With speculation, chain verify steps (numDraftTokens rows per request) and the assistant's draft
                // steps replay graphs too (tree verifies, with their masks, run eagerly).
                m.model().useGraphs(config.maxRunningRequests(),
                        spec == null || spec.limits().tree() ? 1 : spec.rowsPerRequest());
            }
            Scheduler s = new Scheduler(m.model(), m.tokenizer(),
                    new Scheduler.Settings(config.maxRunningRequests(), config.maxQueuedRequests(), chunk,
                            config.maxRequestTime().toNanos()), eos, metrics, spec);
            metrics.gauges(registry, tags, s::runningCount, s::queuedCount, s::kvUsage);
            warmUp(m);
            // Published in this order: the card, the model, then the scheduler. Readers gate on the scheduler
            // (loaded(), requireReady(), stats()), so one that sees it also sees the model and its card.
            this.card = new ModelCard(name, System.currentTimeMillis() / 1000, contextLength, backend.name(),
                    m.model().attention().name());
            this.loaded = m;
            this.scheduler = s;
            Thread t = new Thread(s, "jemma-scheduler");
            t.setDaemon(true);
            schedulerThread = t;
            t.start();
            var kv = m.model().kvCache();
            LOG.infof("ready: %s on %s, context %d, KV %d + %d pages of %d tokens, up to %d running requests%s", name,
                    backend.name(), contextLength, kv.fullPool().capacity(), kv.slidingPool().capacity(),
                    kv.pageSize(), config.maxRunningRequests(),
                    m.model().graphsEnabled() ? ", decode steps from CUDA graphs" : "");
        } catch (Throwable e) {
            loadFailure = e;
            LOG.error("loading the model failed", e);
        }
    }

    private String loadFormat() {
        String f = config.loadFormat();
        if (!f.equals("auto") && !f.equals("dummy")) {
            throw new IllegalArgumentException("jemma.load-format must be auto or dummy, not " + f);
        }
        return f;
    }

    /**
     * The attention backend for this model, settings and device (one line of reason, logged at startup);
     * an explicit jemma.attention-backend the model cannot run with fails the startup here.
     */
    private AttentionDispatch.Choice attentionChoice(TextConfig model, Backend backend) {
        return attentionChoice(config.attentionBackend(), model, !(backend instanceof CpuBackend),
                speculativeSettings.map(SpeculativeSettings::limits).orElse(SpeculativeLimits.NONE), config.pageSize());
    }

    /** The dispatch over a model's layer shapes (what startup runs; the GPU tests run it the same way). */
    static AttentionDispatch.Choice attentionChoice(String requested, TextConfig model, boolean gpu,
                                                    SpeculativeLimits speculative, int pageSize) {
        List<AttentionDispatch.LayerShape> shapes = new ArrayList<>();
        for (LayerSpec s : model.layers()) {
            shapes.add(new AttentionDispatch.LayerShape(s.index(), s.headDim(), s.numHeads() / s.numKvHeads(),
                    s.attentionType() == AttentionType.SLIDING ? s.slidingWindow() : 0));
        }
        return AttentionDispatch.choose(requested, gpu, shapes, speculative, pageSize);
    }

    /**
     * A bundled config's resource name for a model path given as one ("31b", "26b-a4b", "e4b", "e2b", or
     * the full "gemma-4-31b"), else null (a directory).
     */
    static String bundledConfig(String modelPath) {
        String name = modelPath.startsWith("gemma-4-") ? modelPath : "gemma-4-" + modelPath;
        if (BundledConfigs.NAMES.contains(name) && !java.nio.file.Files.isDirectory(Path.of(modelPath))) {
            return name;
        }
        return null;
    }

    /**
     * The backend jemma.device asks for: cpu; cuda (a startup error naming what is missing when it cannot
     * run); auto: CUDA when a GPU, its driver, the kernels and cuBLASLt are there, else the CPU. On CUDA the
     * memory split is planned and checked here, before any weight is loaded.
     */
    private Backend backend(TextConfig model) {
        String device = config.device();
        if (!device.equals("auto") && !device.equals("cpu") && !device.equals("cuda")) {
            throw new IllegalArgumentException("jemma.device must be auto, cpu or cuda, not " + device);
        }
        if (device.equals("cpu")) {
            return new CpuBackend();
        }
        CudaAvailability a = CudaBackend.available();
        if (device.equals("auto") && !a.available()) {
            LOG.infof("jemma.device=auto: running on the CPU (%s)", a.reason());
            return new CpuBackend();
        }
        if (!a.available()) {
            throw new IllegalStateException("jemma.device=cuda: " + a.reason());
        }
        CudaBackend cuda = new CudaBackend();
        try {
            long[] memory = cuda.memoryInfo();
            memoryPlan = DeviceMemoryPlan.of(cuda.device().name(), memory[1], memory[0], model,
                    config.memFractionStatic(), config.kvMemoryBytes().isPresent() ? config.kvMemoryBytes().getAsLong()
                            : null, config.chunkedPrefillSize(), config.maxRunningRequests());
            cuda.activationChunkBytes(memoryPlan.activationBytes() - DeviceMemoryPlan.FIXED_OVERHEAD);
        } catch (RuntimeException e) {
            cuda.close();
            throw e;
        }
        LOG.infof("jemma.device=%s: CUDA on %s", device, a.detail());
        return cuda;
    }

    /**
     * KV pages: max-total-tokens if set, else every running request at full context, within the byte budget
     * (on the CPU jemma.kv-memory-bytes or a quarter of the heap; on the GPU what mem-fraction-static leaves
     * after the weights, checked against the free memory).
     */
    private KvGeometry kvGeometry(KvBudget budget) {
        int context = Math.min(config.contextLength().orElse(Integer.MAX_VALUE),
                budget.config().maxPositionEmbeddings());
        int pageSize = config.pageSize();
        int running = config.maxRunningRequests();
        int chunk = config.chunkedPrefillSize();
        if (speculativeSettings.isPresent()) {
            // Sliding pages per sequence: a verify's rows, and the positions kept behind the window for rollback.
            var limits = speculativeSettings.get().limits();
            chunk = Math.max(chunk, limits.numDraftTokens()) + SpeculativeDecoding.retainedBehindWindow(limits);
        }
        long bytes = memoryPlan != null ? memoryPlan.kvBytes()
                : config.kvMemoryBytes().orElse(Runtime.getRuntime().maxMemory() / 4);
        KvGeometry g;
        try {
            if (config.maxTotalTokens().isPresent()) {
                var full = budget.forSequences(1, config.maxTotalTokens().getAsInt(), pageSize, chunk);
                var sliding = budget.forSequences(running, context, pageSize, chunk);
                g = new KvGeometry(pageSize, full.fullPages(), sliding.slidingPages());
                if (memoryPlan != null && budget.bytes(g) > bytes) {
                    g = budget.forBytes(bytes, running, pageSize, chunk);     // capped by the memory budget
                }
            } else {
                var wanted = budget.forSequences(running, context, pageSize, chunk);
                g = budget.bytes(wanted) <= bytes ? wanted : budget.forBytes(bytes, running, pageSize, chunk);
            }
        } catch (IllegalArgumentException e) {
            throw new IllegalStateException(e.getMessage() + (memoryPlan != null
                    ? "; GPU memory: " + memoryPlan + ": lower jemma.max-running-requests or raise jemma.mem-fraction-static"
                    : ""), e);
        }
        if (memoryPlan != null) {
            memoryPlan.checkFree(budget.bytes(g));
        }
        return g;
    }

    private int contextLength(LoadedModel m) {
        int model = m.config().maxPositionEmbeddings();
        int wanted = config.contextLength().orElse(model);
        if (wanted > model) {
            LOG.warnf("context-length %d is above the model's %d; using %d", wanted, model, model);
        }
        return Math.min(wanted, model);
    }

    /**
     * One forward before readiness, so the first request does not pay for JIT and page-in; on the GPU the
     * decode graphs of every batch-size bucket are recorded here too.
     */
    private void warmUp(LoadedModel m) {
        int id = -1;
        int[] prompt = {m.config().bosTokenId().orElse(2)};
        if (m.model().kvCache().reserve(id, 2, 1)) {
            m.model().forward(ForwardBatch.of(new int[][] {{id, 0, 1}}), prompt, new int[] {0});
            m.model().release(id);
        }
        long start = System.nanoTime();
        m.model().captureGraphs();
        if (m.model().graphsEnabled()) {
            LOG.infof("decode graphs recorded in %d ms", (System.nanoTime() - start) / 1_000_000);
        }
    }

    // ---- the API the REST layer uses ----

    /**
     * Streams one sequence. Fails at once with an {@link EngineRejection} when the engine is not ready,
     * the prompt does not fit, or the queue is full. Cancelling the subscription aborts the sequence.
     */
    public Multi<GenerationChunk> generate(GenerationRequest request) {
        Scheduler s = requireReady();
        if (request.promptLength() > maxPromptTokens) {
            throw EngineRejection.tooLong("messages", "the prompt has " + request.promptLength()
                    + " tokens; this server accepts at most " + maxPromptTokens);
        }
        if (request.maxLength() > contextLength) {
            throw EngineRejection.tooLong("max_tokens", "prompt (" + request.promptLength() + " tokens) + max_tokens ("
                    + request.maxTokens() + ") = " + request.maxLength() + " exceeds the context length "
                    + contextLength);
        }
        int chunk = Math.min(config.chunkedPrefillSize(), request.promptLength());
        if (speculative != null) {
            chunk = Math.max(chunk, speculative.rowsPerRequest());
        }
        if (!loaded.model().kvCache().couldEverFit(request.maxLength(), chunk)) {
            throw EngineRejection.tooLong("max_tokens", "prompt + max_tokens = " + request.maxLength()
                    + " tokens does not fit this server's KV memory; lower max_tokens");
        }
        if (s.queuedCount() >= config.maxQueuedRequests()) {
            // Refuse here, before the response starts; the scheduler's own check at subscription only
            // catches requests that raced past this one.
            throw EngineRejection.queueFull(s.queuedCount());
        }
        int id = nextSequenceId.getAndUpdate(i -> i == Integer.MAX_VALUE ? 0 : i + 1);
        return s.generate(id, request);
    }

    private Scheduler requireReady() {
        Scheduler s = scheduler;
        if (draining) {
            throw EngineRejection.unavailable("the server is shutting down");
        }
        if (s == null) {
            throw EngineRejection.unavailable(loadFailure != null
                    ? "the model failed to load: " + loadFailure.getMessage() : "the model is still loading");
        }
        return s;
    }

    /** True once the weights are loaded and the warm-up forward has run. */
    public boolean loaded() {
        return scheduler != null;
    }

    public Optional<Throwable> loadFailure() {
        return Optional.ofNullable(loadFailure);
    }

    public boolean draining() {
        return draining;
    }

    /** Stop admitting new requests (SIGTERM); running ones finish. */
    public void startDraining() {
        draining = true;
    }

    /**
     * Drains: stops admitting requests (they get 503, readiness goes down) and waits until no request is
     * running or queued, or the timeout has passed. Returns whether the engine is idle. The first call
     * fixes the deadline: a later one (the ShutdownEvent after a SIGTERM drain) waits no longer.
     */
    public boolean drain(java.time.Duration timeout) {
        draining = true;
        drainDeadline.compareAndSet(Long.MIN_VALUE, System.nanoTime() + timeout.toNanos());
        long deadline = drainDeadline.get();
        while (true) {
            Scheduler s = scheduler;
            if (s == null || s.idle()) {
                return true;
            }
            if (System.nanoTime() - deadline >= 0) {
                return false;
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return s.idle();
            }
        }
    }

    /** Whether the waiting queue is at its limit. */
    public boolean saturated() {
        Scheduler s = scheduler;
        return s != null && s.queuedCount() >= config.maxQueuedRequests();
    }

    /** Nanos since the scheduler loop last came round (it comes round at least every second when idle). */
    public long schedulerSilenceNanos() {
        Scheduler s = scheduler;
        return s == null ? 0 : System.nanoTime() - s.heartbeatNanos();
    }

    public boolean schedulerAlive() {
        Thread t = schedulerThread;
        return t != null && t.isAlive();
    }

    public ModelCard model() {
        requireReady();
        return card;
    }

    /** The served model's id, or empty while loading. */
    public Optional<String> modelId() {
        ModelCard c = card;
        return c == null ? Optional.empty() : Optional.of(c.id());
    }

    public Tokenizer tokenizer() {
        requireReady();
        return loaded.tokenizer();
    }

    /** Token ids a request may use: below both the model's embedding rows and the tokenizer's ids. */
    public int vocabSize() {
        requireReady();
        return Math.min(loaded.config().vocabSize(), loaded.tokenizer().vocabSize());
    }

    public Optional<ChatTemplate> chatTemplate() {
        requireReady();
        return loaded.chatTemplate();
    }

    public int contextLength() {
        return contextLength;
    }

    public int defaultMaxTokens() {
        return config.defaultMaxTokens();
    }

    /** Live numbers for tests and the health checks. */
    public EngineStats stats() {
        Scheduler s = scheduler;
        if (s == null) {
            return new EngineStats(0, 0, 0, 0, 0, 0);
        }
        var kv = loaded.model().kvCache();
        return new EngineStats(s.runningCount(), s.queuedCount(), kv.usedPages(), kv.sequenceCount(), kv.usage(),
                s.steps());
    }
}
