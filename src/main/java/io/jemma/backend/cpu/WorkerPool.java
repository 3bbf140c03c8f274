package io.jemma.backend.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;

/**
 * Runs numbered tasks on a fixed set of threads: the caller plus {@code threads - 1} pool workers, which claim
 * task numbers from a shared counter (so uneven tasks balance themselves). A call allocates only a counter and a
 * few small task objects; the threads and their {@link Scratch} buffers live as long as the pool.
 */
final class WorkerPool implements AutoCloseable {

    private final int threads;
    private final ForkJoinPool pool;

    WorkerPool(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1: " + threads);
        }
        this.threads = threads;
        this.pool = threads == 1 ? null : new ForkJoinPool(threads - 1);
    }

    int threads() {
        return threads;
    }

    /** Runs {@code task.accept(i)} for i in [0, count), on up to {@code threads} threads; returns when all ran. */
    void run(int count, IntConsumer task) {
        int helpers = Math.min(threads, count) - 1;
        if (helpers <= 0) {
            for (int i = 0; i < count; i++) {
                task.accept(i);
            }
            return;
        }
        AtomicInteger next = new AtomicInteger();
        Runnable claim = () -> {
            for (int i; (i = next.getAndIncrement()) < count; ) {
                task.accept(i);
            }
        };
        ForkJoinTask<?>[] running = new ForkJoinTask<?>[helpers];
        for (int h = 0; h < helpers; h++) {
            running[h] = pool.submit(claim);
        }
        try {
            claim.run();
        } finally {
            // Workers read the caller's packed activations: never return (or rethrow) while one still runs.
            RuntimeException failure = null;
            for (ForkJoinTask<?> f : running) {
                try {
                    f.join();
                } catch (RuntimeException e) {
                    failure = e;
                }
            }
            if (failure != null) {
                throw failure;
            }
        }
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdown();
        }
    }
}
