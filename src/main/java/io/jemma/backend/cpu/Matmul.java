package io.jemma.backend.cpu;

import io.jemma.backend.DType;
import io.jemma.backend.HostTensor;
import java.lang.foreign.MemorySegment;

/**
 * {@code y = x @ W^T} (as {@code nn.Linear}) with fp32 activations, weights in BF16, F16 or F32 read in place from
 * a {@link HostTensor}, and fp32 accumulation, parallel over W's rows on a fixed set of threads.
 *
 * <p>Two algorithms: for fewer than {@link #PREFILL_MIN_TOKENS} tokens (decode) the work is bound by reading W, so
 * {@link Decode} streams each row once and uses it for every token; from there on (prefill) it is bound by the
 * FMA units, so {@link Prefill} widens blocks of W once and runs register tiles over many tokens with them.
 *
 * <p>W is {@code [outDim, inDim]}, or any rank whose last dimension is {@code inDim} (such as a one-expert slice
 * {@code [1, outDim, inDim]}); its rows are all leading dimensions flattened. Calls may come from several threads
 * at once; each thread's work buffers are its own.
 */
public final class Matmul implements AutoCloseable {

    /** From this many tokens on, the compute-bound tiling wins over streaming W once per call. */
    static final int PREFILL_MIN_TOKENS = 16;
    /** Below this many multiply-adds one thread is faster than waking the others (~tens of microseconds). */
    static final long PARALLEL_MIN_MACS = 1L << 18;

    private final WorkerPool workers;

    /** Uses all available processors. */
    public Matmul() {
        this(Runtime.getRuntime().availableProcessors());
    }

    public Matmul(int threads) {
        this.workers = new WorkerPool(threads);
    }

    public int threads() {
        return workers.threads();
    }

    /**
     * {@code y[t * outDim + o] = sum_i x[t * inDim + i] * W[o, i]}.
     *
     * @param x [tokens, inDim]
     * @param w [outDim, inDim]
     * @param y [tokens, outDim]
     */
    public void matmul(float[] x, int tokens, int inDim, HostTensor w, float[] y) {
        matmul(x, 0, tokens, inDim, w, y, 0);
    }

    /** As {@link #matmul(float[], int, int, HostTensor, float[])} on {@code x[xOffset ..]} and {@code y[yOffset ..]}. */
    public void matmul(float[] x, int xOffset, int tokens, int inDim, HostTensor w, float[] y, int yOffset) {
        int outDim = rows(w, inDim);
        matmulRows(x, xOffset, tokens, inDim, w, 0, outDim, y, yOffset, outDim);
    }

    /**
     * Only output rows [{@code rowFrom}, {@code rowTo}) (W rows), densely:
     * {@code y[t * (rowTo - rowFrom) + (o - rowFrom)] = sum_i x[t * inDim + i] * W[o, i]}.
     */
    public void matmulRows(float[] x, int tokens, int inDim, HostTensor w, int rowFrom, int rowTo, float[] y) {
        matmulRows(x, 0, tokens, inDim, w, rowFrom, rowTo, y, 0, rowTo - rowFrom);
    }

    /**
     * The general form: {@code y[yOffset + t * yStride + (o - rowFrom)] = sum_i x[xOffset + t * inDim + i] * W[o, i]}
     * for tokens t in [0, tokens) and W rows o in [rowFrom, rowTo). Other elements of y are left alone, so rows
     * of several calls can fill one output (yStride >= rowTo - rowFrom).
     */
    public void matmulRows(float[] x, int xOffset, int tokens, int inDim, HostTensor w, int rowFrom, int rowTo,
                           float[] y, int yOffset, int yStride) {
        int outDim = rows(w, inDim);
        int count = rowTo - rowFrom;
        if (rowFrom < 0 || rowTo > outDim || count < 0) {
            throw new IllegalArgumentException("rows [" + rowFrom + ", " + rowTo + ") outside " + w);
        }
        if (tokens < 0 || yStride < count) {
            throw new IllegalArgumentException("tokens " + tokens + ", yStride " + yStride + " for " + count + " rows");
        }
        if (tokens == 0 || count == 0) {
            return;
        }
        checkRange("x", x.length, xOffset, (long) tokens * inDim);
        checkRange("y", y.length, yOffset, (long) (tokens - 1) * yStride + count);

        MemorySegment data = w.data();
        DType dtype = w.dtype();
        long macs = (long) tokens * count * inDim;
        WorkerPool pool = macs < PARALLEL_MIN_MACS ? null : workers;
        if (tokens < PREFILL_MIN_TOKENS) {
            decode(data, dtype, x, xOffset, tokens, inDim, rowFrom, rowTo, y, yOffset, yStride, pool);
        } else {
            prefill(data, dtype, x, xOffset, tokens, inDim, rowFrom, rowTo, y, yOffset, yStride, pool);
        }
    }

    private void decode(MemorySegment w, DType dtype, float[] x, int xOffset, int tokens, int n, int rowFrom,
                        int rowTo, float[] y, int yOffset, int yStride, WorkerPool pool) {
        float[] xs = Scratch.get().packed(tokens * n);
        for (int t = 0; t < tokens; t++) {
            if (Widen.pairSplit(dtype)) {
                Widen.pairSplit(x, xOffset + t * n, xs, t * n, n);
            } else {
                System.arraycopy(x, xOffset + t * n, xs, t * n, n);
            }
        }
        int count = rowTo - rowFrom;
        if (pool == null) {
            Decode.rows(w, dtype, n, rowFrom, rowTo, tokens, xs, y, yOffset, yStride, rowFrom);
            return;
        }
        // Multiples of the 4-row tile, 4 tasks per thread so that a slow thread does not hold up the call.
        int perTask = Math.max(4, (count + 4 * pool.threads() - 1) / (4 * pool.threads()) + 3 & ~3);
        int tasks = (count + perTask - 1) / perTask;
        pool.run(tasks, i -> {
            int a = rowFrom + i * perTask;
            Decode.rows(w, dtype, n, a, Math.min(rowTo, a + perTask), tokens, xs, y, yOffset, yStride, rowFrom);
        });
    }

    private void prefill(MemorySegment w, DType dtype, float[] x, int xOffset, int tokens, int n, int rowFrom,
                         int rowTo, float[] y, int yOffset, int yStride, WorkerPool pool) {
        int chunk = Prefill.chunkTokens(n);
        int count = rowTo - rowFrom;
        int threads = pool == null ? 1 : pool.threads();
        int perTask = Prefill.rowsPerTask(count, threads);
        int tasks = (count + perTask - 1) / perTask;
        boolean pairSplit = Widen.pairSplit(dtype);
        for (int t0 = 0; t0 < tokens; t0 += chunk) {
            int m = Math.min(chunk, tokens - t0);
            int mpad = (m + Widen.L - 1) / Widen.L * Widen.L;
            int wideEnd = mpad / PrefillKernels.WIDE * PrefillKernels.WIDE;
            int wideTiles = wideEnd / PrefillKernels.WIDE;
            int packTasks = wideTiles + (mpad - wideEnd) / Widen.L;
            float[] xt = Scratch.get().packed(mpad * n);
            int first = t0;
            run(pool, packTasks, i -> {
                int m0 = i < wideTiles ? i * PrefillKernels.WIDE : wideEnd + (i - wideTiles) * Widen.L;
                int width = i < wideTiles ? PrefillKernels.WIDE : Widen.L;
                Prefill.pack(x, xOffset, n, first, m, m0, width, pairSplit, xt);
            });
            run(pool, tasks, i -> {
                int a = rowFrom + i * perTask;
                Prefill.rows(w, dtype, n, a, Math.min(rowTo, a + perTask), xt, first, m, mpad, y, yOffset,
                        yStride, rowFrom);
            });
        }
    }

    private static void run(WorkerPool pool, int count, java.util.function.IntConsumer task) {
        if (pool == null) {
            for (int i = 0; i < count; i++) {
                task.accept(i);
            }
        } else {
            pool.run(count, task);
        }
    }

    /** W's rows: all but the last dimension, which must be inDim. */
    private static int rows(HostTensor w, int inDim) {
        if (inDim < 1 || w.rank() < 1 || w.dim(w.rank() - 1) != inDim) {
            throw new IllegalArgumentException("inDim " + inDim + " does not match " + w);
        }
        long rows = w.numel() / inDim;
        if (rows > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("too many rows: " + w);
        }
        return (int) rows;
    }

    private static void checkRange(String what, int length, int offset, long count) {
        if (offset < 0 || offset + count > length) {
            throw new IllegalArgumentException(what + ": need " + count + " floats from " + offset + ", have " + length);
        }
    }

    @Override
    public void close() {
        workers.close();
    }
}
