package io.jemma.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Sends a workload on an arrival schedule, at most {@code maxConcurrency} requests in flight (a semaphore,
 * as sglang's), each request on its own virtual thread. At the deadline it stops sending and interrupts the
 * requests still streaming, which then count as failed, so a benchmark always ends by itself.
 */
public final class LoadRunner {

    /** A request sender: {@link StreamingClient#send} in the program, anything in tests. */
    @FunctionalInterface
    public interface Sender {
        RequestResult send(Prompt prompt, long deadlineNanos);
    }

    /**
     * What a run produced.
     *
     * @param results       one per request sent, in workload order
     * @param startNanos    when the run began (the first request's arrival)
     * @param durationS     the run's wall time: start to the last response (or the deadline)
     * @param notSent       requests the deadline kept from being sent
     * @param hitDeadline   whether the duration limit cut the run short
     */
    public record Run(List<RequestResult> results, long startNanos, double durationS, int notSent,
            boolean hitDeadline) {
    }

    /** How long interrupted requests get to return their failed results before they are written off. */
    private static final long ABORT_GRACE_NANOS = TimeUnit.SECONDS.toNanos(5);

    private LoadRunner() {
    }

    /**
     * Runs the prompts.
     *
     * @param arrivals       send times in seconds from the start, one per prompt ({@link Arrivals#schedule})
     * @param maxConcurrency the most requests in flight; 0 for no limit
     * @param deadlineNanos  the duration limit, on the {@link System#nanoTime} clock
     */
    public static Run run(List<Prompt> prompts, double[] arrivals, int maxConcurrency, long deadlineNanos,
            Sender sender) throws InterruptedException {
        Semaphore slots = maxConcurrency > 0 ? new Semaphore(maxConcurrency) : null;
        List<Future<RequestResult>> inFlight = new ArrayList<>(prompts.size());
        boolean hitDeadline = false;
        // Not try-with-resources: close() would wait for every request, and a server that never answers
        // must not hold the benchmark past its limit. Virtual threads left behind do not keep the JVM alive.
        ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor();
        long start = System.nanoTime();
        try {
            for (int i = 0; i < prompts.size(); i++) {
                long sendAt = start + (long) (arrivals[i] * 1e9);
                if (sendAt >= deadlineNanos) {
                    hitDeadline = true;
                    break;
                }
                sleepUntil(sendAt);
                Prompt prompt = prompts.get(i);
                inFlight.add(threads.submit(() -> sendWhenFree(slots, prompt, deadlineNanos, sender)));
            }
            List<RequestResult> results = new ArrayList<>(inFlight.size());
            long waitUntil = deadlineNanos;
            for (int i = 0; i < inFlight.size(); i++) {
                RequestResult result = await(inFlight.get(i), waitUntil);
                if (result == null && !hitDeadline) {
                    hitDeadline = true;
                    threads.shutdownNow(); // interrupts the requests still running; each returns a failed result
                    waitUntil = System.nanoTime() + ABORT_GRACE_NANOS;
                    result = await(inFlight.get(i), waitUntil);
                }
                results.add(result != null ? result
                        : RequestResult.failed(prompts.get(i), start, 0, "aborted at the duration limit"));
            }
            long end = Math.min(System.nanoTime(), deadlineNanos);
            return new Run(results, start, StreamingClient.seconds(Math.max(0, end - start)),
                    prompts.size() - inFlight.size(), hitDeadline);
        } finally {
            threads.shutdownNow();
        }
    }

    private static RequestResult sendWhenFree(Semaphore slots, Prompt prompt, long deadlineNanos, Sender sender) {
        if (slots == null) {
            return sender.send(prompt, deadlineNanos);
        }
        try {
            // Waiting for a slot is not the request's time: sglang starts its clock inside the semaphore too.
            if (!slots.tryAcquire(Math.max(0, deadlineNanos - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                return RequestResult.failed(prompt, System.nanoTime(), 0, "aborted at the duration limit");
            }
        } catch (InterruptedException e) {
            return RequestResult.failed(prompt, System.nanoTime(), 0, "aborted at the duration limit");
        }
        try {
            return sender.send(prompt, deadlineNanos);
        } finally {
            slots.release();
        }
    }

    /** The future's result, or null if it is not done by the deadline. */
    private static RequestResult await(Future<RequestResult> f, long deadlineNanos) throws InterruptedException {
        try {
            return f.get(Math.max(0, deadlineNanos - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            return null;
        } catch (ExecutionException e) {
            throw new IllegalStateException("a request thread failed: " + e.getCause(), e.getCause());
        } catch (java.util.concurrent.CancellationException e) {
            return null;
        }
    }

    private static void sleepUntil(long nanos) throws InterruptedException {
        long wait = nanos - System.nanoTime();
        if (wait > 0) {
            TimeUnit.NANOSECONDS.sleep(wait);
        }
    }
}
