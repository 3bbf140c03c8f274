package io.jemma.backend.cuda;

import io.jemma.engine.sampling.Penalties;
import io.jemma.engine.sampling.SampleResult;
import io.jemma.engine.sampling.SamplingBatch;
import io.jemma.engine.sampling.SamplingParams;
import io.jemma.engine.sampling.SamplingRow;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.LongFunction;

/**
 * Launches sampling.cu: one block per row picks the row's token on the device (greedy, or temperature with
 * top-k, top-p and min-p over the whole vocabulary by radix selection, no sort), after the row's logprobs
 * (when asked) and its penalties and end-token masks. Only the tokens, and the logprobs of rows that asked,
 * come back: {@code rows} ints, or {@code rows * (2 + 2 * MAX_TOP) + rows} words with logprobs.
 *
 * <p>Per row the host sends its parameters and a list of (token, flags, subtract) entries: the tokens the
 * repetition penalty applies to (prompt and generated), the generated ones with their frequency + presence
 * amount (computed here exactly as {@link io.jemma.engine.sampling.LogitsProcessor} does), and the masked
 * end tokens. Random numbers come from a counter-based generator keyed by (seed, draw index): a request's
 * tokens do not depend on its batch. They differ from the host sampler's stream, and ties at the top-k
 * threshold are all kept (the host keeps exactly k): the CPU backend keeps the host path, so its results
 * do not change.
 */
final class CudaSampler {
    static final int MAX_TOP = 32;
    private static final int THREADS = 1024;
    /** Penalty lists above this many entries per step go through the host path (the upload arena is 8 MB). */
    private static final int MAX_ENTRIES = 300_000;
    private static final int REPEAT = 1;
    private static final int END = 2;
    private static final int SUBTRACT = 4;

    private final CudaContext context;
    private final LongFunction<DeviceBuffer> scratch;

    CudaSampler(CudaContext context, LongFunction<DeviceBuffer> scratch) {
        this.context = context;
        this.scratch = scratch;
    }

    /** Whether the device path covers every row (top logprobs up to {@value #MAX_TOP}, lists that fit). */
    boolean supports(SamplingBatch batch) {
        long entries = 0;
        for (SamplingRow r : batch.rows()) {
            if (r.topLogprobs() > MAX_TOP) {
                return false;
            }
            entries += r.endTokens().size();
            if (r.processor() != null && !r.penalties().none()) {
                entries += r.processor().promptTokens().size() + r.processor().generatedCounts().size();
            }
        }
        return entries <= MAX_ENTRIES;
    }

    SampleResult sample(CudaTensor logits, SamplingBatch batch) {
        int rows = batch.size();
        int vocab = logits.cols();
        if (rows == 0) {
            return new SampleResult(new int[0], new SampleResult.RowLogprobs[0]);
        }
        float[] fp = new float[rows * 4];
        int[] ip = new int[rows * 8];
        int[] entries = new int[3 * 64];
        int used = 0;
        boolean logprobs = false;
        for (int r = 0; r < rows; r++) {
            SamplingRow row = batch.row(r);
            SamplingParams p = row.params();
            Penalties pen = row.penalties();
            fp[r * 4] = p.greedy() ? 0f : (float) p.temperature();
            fp[r * 4 + 1] = (float) p.topP();
            fp[r * 4 + 2] = (float) p.minP();
            fp[r * 4 + 3] = (float) pen.repetition();
            Map<Integer, int[]> list = penaltyList(row);
            ip[r * 8] = Math.max(0, p.topK());
            ip[r * 8 + 1] = row.topLogprobs();
            ip[r * 8 + 2] = used / 3;
            ip[r * 8 + 3] = list.size();
            ip[r * 8 + 4] = (int) p.seed();
            ip[r * 8 + 5] = (int) (p.seed() >>> 32);
            ip[r * 8 + 6] = (int) row.draw();
            ip[r * 8 + 7] = (int) (row.draw() >>> 32);
            logprobs |= row.topLogprobs() >= 0;
            if (used + 3 * list.size() > entries.length) {
                entries = Arrays.copyOf(entries, Math.max(2 * entries.length, used + 3 * list.size()));
            }
            for (var e : list.entrySet()) {
                entries[used++] = e.getKey();
                entries[used++] = e.getValue()[0];
                entries[used++] = e.getValue()[1];
            }
        }
        int entryCount = used / 3;
        long[] at = context.uploads().put(fp, ip, Arrays.copyOf(entries, Math.max(3, used)));
        int words = rows * (2 + 2 * MAX_TOP) + rows;
        DeviceBuffer out = scratch.apply((long) words * Integer.BYTES);
        DeviceBuffer raw = scratch.apply(Math.max(1, entryCount) * (long) Float.BYTES);
        context.launch("jemma_sample", rows, 1, 1, THREADS, 0, new KernelArgs()
                .ptr(logits.address()).i64(logits.rowStride()).i32(vocab).i32(rows)
                .ptr(at[0]).ptr(at[1]).ptr(at[2]).ptr(raw.address()).ptr(out.address()));
        int[] host = new int[logprobs ? words : rows];
        context.transfers().download(out, 0, MemorySegment.ofArray(host));
        int[] tokens = Arrays.copyOf(host, rows);
        SampleResult.RowLogprobs[] lps = new SampleResult.RowLogprobs[rows];
        if (logprobs) {
            for (int r = 0; r < rows; r++) {
                if (batch.row(r).topLogprobs() >= 0) {
                    lps[r] = rowLogprobs(host, rows, r);
                }
            }
        }
        return new SampleResult(tokens, lps);
    }

    /** A row's chosen logprob and top tokens from the downloaded words, most likely first (ties: lower id). */
    private static SampleResult.RowLogprobs rowLogprobs(int[] host, int rows, int r) {
        float chosen = Float.intBitsToFloat(host[rows + r]);
        int n = host[2 * rows + 2 * rows * MAX_TOP + r];
        Integer[] order = new Integer[n];
        int idsAt = 2 * rows + r * MAX_TOP;
        int lpAt = 2 * rows + rows * MAX_TOP + r * MAX_TOP;
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> {
            int c = Float.compare(Float.intBitsToFloat(host[lpAt + b]), Float.intBitsToFloat(host[lpAt + a]));
            return c != 0 ? c : Integer.compare(host[idsAt + a], host[idsAt + b]);
        });
        int[] ids = new int[n];
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            ids[i] = host[idsAt + order[i]];
            values[i] = Float.intBitsToFloat(host[lpAt + order[i]]);
        }
        return new SampleResult.RowLogprobs(chosen, ids, values);
    }

    /**
     * token -> {flags, subtract bits}: what {@link io.jemma.engine.sampling.LogitsProcessor#apply} does to
     * this row, as a list: repetition over prompt and generated tokens, frequency and presence over the
     * generated ones (the amount rounded to float as the host does), end tokens masked.
     */
    static Map<Integer, int[]> penaltyList(SamplingRow row) {
        Map<Integer, int[]> list = new LinkedHashMap<>();
        Penalties pen = row.penalties();
        if (row.processor() != null && !pen.none()) {
            if (pen.repetition() != 1) {
                for (int t : row.processor().promptTokens()) {
                    list.computeIfAbsent(t, k -> new int[2])[0] |= REPEAT;
                }
                for (int t : row.processor().generatedCounts().keySet()) {
                    list.computeIfAbsent(t, k -> new int[2])[0] |= REPEAT;
                }
            }
            for (var e : row.processor().generatedCounts().entrySet()) {
                int[] v = list.computeIfAbsent(e.getKey(), k -> new int[2]);
                v[0] |= SUBTRACT;
                v[1] = Float.floatToRawIntBits((float) (pen.frequency() * e.getValue() + pen.presence()));
            }
        }
        for (int t : row.endTokens()) {
            list.computeIfAbsent(t, k -> new int[2])[0] |= END;
        }
        return list;
    }
}
