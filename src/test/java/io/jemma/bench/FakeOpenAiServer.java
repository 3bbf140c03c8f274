package io.jemma.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntFunction;

/**
 * A stand-in OpenAI-compatible server on 127.0.0.1 that streams {@code max_tokens} one-word chunks on a
 * known schedule: the role chunk at once, the first text after {@code firstTokenMs}, the rest
 * {@code tokenGapMs} apart, then the finish chunk, the usage chunk and {@code [DONE]}. What it does to each
 * request is chosen by the request's arrival number.
 */
final class FakeOpenAiServer implements AutoCloseable {

    /**
     * How the fake answers one request.
     *
     * @param status           the HTTP status; anything but 200 answers with an OpenAI error body
     * @param firstTokenMs     delay before the first text chunk
     * @param tokenGapMs       delay between text chunks
     * @param framing          what precedes each event's JSON: {@code "data: "} or {@code "data:"}
     * @param errorAfterTokens send an error event after this many text chunks; -1 for none
     */
    record Script(int status, long firstTokenMs, long tokenGapMs, String framing, int errorAfterTokens) {
        static Script streaming(long firstTokenMs, long tokenGapMs) {
            return new Script(200, firstTokenMs, tokenGapMs, "data: ", -1);
        }

        Script framing(String prefix) {
            return new Script(status, firstTokenMs, tokenGapMs, prefix, errorAfterTokens);
        }

        Script status(int code) {
            return new Script(code, firstTokenMs, tokenGapMs, framing, errorAfterTokens);
        }

        Script errorAfter(int tokens) {
            return new Script(status, firstTokenMs, tokenGapMs, framing, tokens);
        }
    }

    static final String MODEL = "fake-model";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final HttpServer server;
    private final ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor();
    private final IntFunction<Script> scripts;
    private final AtomicInteger arrivals = new AtomicInteger();
    private final List<JsonNode> bodies = new CopyOnWriteArrayList<>();

    FakeOpenAiServer(IntFunction<Script> scripts) throws IOException {
        this.scripts = scripts;
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
        server.setExecutor(threads); // one thread per request, so delays overlap as on a batching server
        server.createContext("/v1/chat/completions", e -> complete(e, Api.CHAT));
        server.createContext("/v1/completions", e -> complete(e, Api.COMPLETIONS));
        server.createContext("/v1/models", this::models);
        server.start();
    }

    FakeOpenAiServer(Script script) throws IOException {
        this(i -> script);
    }

    URI baseUrl() {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort());
    }

    /** The request bodies received, in arrival order. */
    List<JsonNode> bodies() {
        return bodies;
    }

    @Override
    public void close() {
        server.stop(0);
        threads.shutdownNow(); // wakes handlers still sleeping on a long schedule
    }

    private void models(HttpExchange exchange) throws IOException {
        byte[] body = ("{\"object\":\"list\",\"data\":[{\"id\":\"" + MODEL
                + "\",\"object\":\"model\",\"created\":0,\"owned_by\":\"test\"}]}").getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        exchange.sendResponseHeaders(200, body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
    }

    private void complete(HttpExchange exchange, Api api) throws IOException {
        try (exchange) {
            JsonNode request = JSON.readTree(exchange.getRequestBody());
            bodies.add(request);
            Script script = scripts.apply(arrivals.getAndIncrement());
            if (script.status() != 200) {
                byte[] body = "{\"error\":{\"message\":\"scripted failure\",\"type\":\"server_error\",\"code\":500}}"
                        .getBytes(StandardCharsets.UTF_8);
                exchange.getResponseHeaders().set("Content-Type", "application/json");
                exchange.sendResponseHeaders(script.status(), body.length);
                exchange.getResponseBody().write(body);
                return;
            }
            exchange.getResponseHeaders().set("Content-Type", "text/event-stream");
            exchange.sendResponseHeaders(200, 0);
            OutputStream out = exchange.getResponseBody();
            int tokens = request.path("max_tokens").asInt(1);
            int promptTokens = promptWords(request, api);
            if (api == Api.CHAT) {
                send(out, script, chunk(api, null).set("choices", roleChoice()));
            }
            for (int i = 0; i < tokens; i++) {
                Thread.sleep(i == 0 ? script.firstTokenMs() : script.tokenGapMs());
                if (i == script.errorAfterTokens()) {
                    send(out, script, JSON.createObjectNode().set("error",
                            JSON.createObjectNode().put("message", "scripted error event").put("code", 500)));
                    sendDone(out, script);
                    return;
                }
                send(out, script, chunk(api, "tok" + i + " "));
            }
            send(out, script, finish(api));
            ObjectNode usage = chunk(api, null);
            usage.putArray("choices");
            usage.putObject("usage").put("prompt_tokens", promptTokens).put("completion_tokens", tokens)
                    .put("total_tokens", promptTokens + tokens);
            send(out, script, usage);
            sendDone(out, script);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt(); // the test is over
        } catch (IOException clientWentAway) {
            // the benchmark aborted the request at its duration limit
        }
    }

    private static int promptWords(JsonNode request, Api api) {
        String text = api == Api.CHAT ? request.path("messages").path(0).path("content").asText()
                : request.path("prompt").asText();
        return text.isBlank() ? 0 : text.strip().split("\\s+").length;
    }

    private static ObjectNode chunk(Api api, String text) {
        ObjectNode chunk = JSON.createObjectNode();
        chunk.put("id", api == Api.CHAT ? "chatcmpl-1" : "cmpl-1");
        chunk.put("object", api == Api.CHAT ? "chat.completion.chunk" : "text_completion");
        chunk.put("created", 0);
        chunk.put("model", MODEL);
        if (text != null) {
            ObjectNode choice = chunk.putArray("choices").addObject();
            choice.put("index", 0);
            if (api == Api.CHAT) {
                choice.putObject("delta").put("content", text);
            } else {
                choice.put("text", text);
            }
            choice.putNull("finish_reason");
        }
        return chunk;
    }

    private static com.fasterxml.jackson.databind.node.ArrayNode roleChoice() {
        var choices = JSON.createArrayNode();
        ObjectNode choice = choices.addObject();
        choice.put("index", 0);
        choice.putObject("delta").put("role", "assistant");
        choice.putNull("finish_reason");
        return choices;
    }

    private static ObjectNode finish(Api api) {
        ObjectNode chunk = chunk(api, null);
        ObjectNode choice = chunk.putArray("choices").addObject();
        choice.put("index", 0);
        if (api == Api.CHAT) {
            choice.putObject("delta");
        } else {
            choice.put("text", "");
        }
        choice.put("finish_reason", "length");
        return chunk;
    }

    private static void send(OutputStream out, Script script, JsonNode event) throws IOException {
        out.write((script.framing() + event + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush(); // one HTTP chunk per event, so the client sees the schedule
    }

    private static void sendDone(OutputStream out, Script script) throws IOException {
        out.write((script.framing() + "[DONE]\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }
}
