package io.jemma.bench;

/**
 * What one streamed request measured (sglang's {@code RequestFuncOutput}). Times are in seconds from the
 * moment the request was sent; {@code startNanos} places that moment on the run's {@link System#nanoTime}
 * clock.
 *
 * @param prompt          the request as the workload defined it
 * @param success         whether the stream completed: HTTP 200, no error event, {@code [DONE]}, some content
 * @param error           why it failed; empty on success
 * @param startNanos      when it was sent
 * @param ttft            send to the first chunk with content
 * @param latency         send to the last line of the stream (sglang's E2E latency)
 * @param itl             the gaps between consecutive content chunks
 * @param chunkTimes      when each content chunk arrived
 * @param generatedText   the streamed text
 * @param usagePrompt     the server's {@code usage.prompt_tokens}, or -1 without usage
 * @param usageCompletion the server's {@code usage.completion_tokens}, or -1 without usage
 */
public record RequestResult(Prompt prompt, boolean success, String error, long startNanos, double ttft,
        double latency, double[] itl, double[] chunkTimes, String generatedText, int usagePrompt,
        int usageCompletion) {

    static RequestResult failed(Prompt prompt, long startNanos, double latency, String error) {
        return new RequestResult(prompt, false, error, startNanos, 0, latency, new double[0], new double[0], "", -1,
                -1);
    }

    /** The content chunks received. */
    public int chunks() {
        return chunkTimes.length;
    }
}
