package io.jemma.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;

/**
 * Sends one streaming completion request and times its chunks the way sglang's
 * {@code async_request_openai_chat_completions} does: TTFT at the first chunk with text, an ITL for each
 * further chunk with text, latency at the last line received ({@code [DONE]} included).
 */
public final class StreamingClient {

    /** The fixed part of every request: where it goes and the sampling fields it carries. */
    public record Target(URI baseUrl, Api api, String model, double temperature, boolean ignoreEos,
            ObjectNode extraBody, String apiKey) {
    }

    private final HttpClient http;
    private final Target target;
    private final URI endpoint;

    public StreamingClient(HttpClient http, Target target) {
        this.http = http;
        this.target = target;
        // Appended, not resolved: a base URL with a path (a proxy prefix) keeps it.
        this.endpoint = URI.create(target.baseUrl() + target.api().path());
    }

    /** The JSON body for a prompt: streaming with usage, greedy by default, exactly outputLen tokens asked for. */
    String body(Prompt prompt) {
        ObjectNode body = BenchJson.MAPPER.createObjectNode();
        body.put("model", target.model());
        if (target.api() == Api.CHAT) {
            ObjectNode message = body.putArray("messages").addObject();
            message.put("role", "user");
            message.put("content", prompt.text());
        } else {
            body.put("prompt", prompt.text());
        }
        body.put("temperature", target.temperature());
        body.put("max_tokens", prompt.outputLen());
        body.put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        if (target.ignoreEos()) {
            body.put("ignore_eos", true); // an extra that sglang and vLLM honour, so outputs have the asked length
        }
        if (target.extraBody() != null) {
            body.setAll(target.extraBody());
        }
        return body.toString();
    }

    /**
     * Sends the prompt and reads its stream to the end. Never throws: every failure (refused connection,
     * HTTP error, error event, truncated stream, interruption at the duration limit) is a failed result.
     *
     * @param deadlineNanos when the run's duration limit ends, on the {@link System#nanoTime} clock
     */
    public RequestResult send(Prompt prompt, long deadlineNanos) {
        HttpRequest.Builder request = HttpRequest.newBuilder(endpoint)
                .header("Content-Type", "application/json")
                .header("Accept", "text/event-stream")
                .timeout(Duration.ofNanos(Math.max(1, deadlineNanos - System.nanoTime())))
                .POST(HttpRequest.BodyPublishers.ofString(body(prompt), StandardCharsets.UTF_8));
        if (target.apiKey() != null && !target.apiKey().isEmpty()) {
            request.header("Authorization", "Bearer " + target.apiKey());
        }
        long start = System.nanoTime();
        try {
            HttpResponse<InputStream> response = http.send(request.build(), HttpResponse.BodyHandlers.ofInputStream());
            try (InputStream in = response.body()) {
                if (response.statusCode() != 200) {
                    return RequestResult.failed(prompt, start, seconds(System.nanoTime() - start),
                            "HTTP " + response.statusCode() + ": " + errorBody(in));
                }
                return readStream(prompt, start, in);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return RequestResult.failed(prompt, start, seconds(System.nanoTime() - start), "aborted at the duration limit");
        } catch (IOException | RuntimeException e) {
            String why = Thread.currentThread().isInterrupted() ? "aborted at the duration limit" : e.toString();
            return RequestResult.failed(prompt, start, seconds(System.nanoTime() - start), why);
        }
    }

    private RequestResult readStream(Prompt prompt, long start, InputStream in) throws IOException {
        BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
        StringBuilder text = new StringBuilder();
        double[] chunkTimes = new double[Math.min(prompt.outputLen(), 1 << 16)];
        int chunks = 0;
        long last = start;
        boolean done = false;
        SseEvent.Usage usage = null;
        String line;
        while ((line = reader.readLine()) != null) {
            SseEvent event = SseEvent.parse(line, target.api());
            if (event == null) {
                continue;
            }
            last = System.nanoTime();
            switch (event) {
                case SseEvent.Done d -> done = true;
                case SseEvent.Error error -> {
                    return RequestResult.failed(prompt, start, seconds(last - start), "error event: " + error.message());
                }
                case SseEvent.Chunk chunk -> {
                    if (!chunk.content().isEmpty()) {
                        if (chunks == chunkTimes.length) {
                            chunkTimes = Arrays.copyOf(chunkTimes, chunks * 2 + 1);
                        }
                        chunkTimes[chunks++] = seconds(last - start);
                        text.append(chunk.content());
                    }
                    if (chunk.usage() != null) {
                        usage = chunk.usage();
                    }
                }
            }
        }
        double latency = seconds(last - start);
        if (!done) {
            return RequestResult.failed(prompt, start, latency, "the stream ended without [DONE]");
        }
        if (chunks == 0) {
            return RequestResult.failed(prompt, start, latency, "the stream carried no text");
        }
        double[] times = Arrays.copyOf(chunkTimes, chunks);
        double[] itl = new double[chunks - 1];
        for (int i = 1; i < chunks; i++) {
            itl[i - 1] = times[i] - times[i - 1];
        }
        return new RequestResult(prompt, true, "", start, times[0], latency, itl, times, text.toString(),
                usage == null ? -1 : usage.promptTokens(), usage == null ? -1 : usage.completionTokens());
    }

    /** The server's error message when its body is an OpenAI error, else the start of the body. */
    private static String errorBody(InputStream in) throws IOException {
        String body = new String(in.readNBytes(4096), StandardCharsets.UTF_8).strip();
        try {
            JsonNode root = BenchJson.MAPPER.readTree(body);
            JsonNode message = root == null ? null : root.path("error").path("message");
            if (message != null && message.isTextual()) {
                return message.asText();
            }
        } catch (IOException notJson) {
            // fall through to the raw text
        }
        return body.length() <= 300 ? body : body.substring(0, 300) + "...";
    }

    static double seconds(long nanos) {
        return nanos / 1e9;
    }
}
