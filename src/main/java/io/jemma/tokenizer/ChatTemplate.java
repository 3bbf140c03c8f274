package io.jemma.tokenizer;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;

import jinjava.javax.el.CompositeELResolver;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * A checkpoint's own Jinja chat template, rendered as transformers' {@code apply_chat_template}
 * renders it: with {@code messages}, {@code add_generation_prompt}, the special token texts
 * ({@code bos_token}, {@code eos_token}, ...), {@code raise_exception}, {@code strftime_now} and
 * a Python-style {@code tojson}, plus any extra keyword arguments.
 *
 * <p>transformers compiles templates with {@code trim_blocks=True, lstrip_blocks=True} and
 * jinja2's default {@code keep_trailing_newline=False}; {@link JinjaSource} applies those rules as
 * jinja2's lexer does before jinjava (HubSpot's Jinja engine) renders. Known differences from
 * Python: printed booleans and None read {@code true}/{@code false}/empty instead of {@code
 * True}/{@code False}/{@code None}; {@code loop.previtem}/{@code nextitem}, slice steps
 * ({@code [::-1]}) and {@code %} string formatting are not available.
 *
 * <p>The rendered prompt already starts with {@code <bos>}; encode it with {@link
 * Tokenizer#encode(String)}, which adds nothing. Thread-safe.
 */
public final class ChatTemplate {

    private static final Jinjava ENGINE = createEngine();

    private final String source;
    private final String normalizedSource;
    private final Map<String, String> specialTokens;

    private ChatTemplate(String source, Map<String, String> specialTokens) {
        this.source = source;
        this.normalizedSource = JinjaSource.prepare(source);
        this.specialTokens = Map.copyOf(specialTokens);
    }

    /**
     * A template from its source, rendered with these special token texts (keys as transformers
     * names them: {@code bos_token}, {@code eos_token}, ...).
     */
    public static ChatTemplate of(String source, Map<String, String> specialTokens) {
        return new ChatTemplate(Objects.requireNonNull(source, "source"), specialTokens);
    }

    /** The tokenizer's default template (from its checkpoint files), if it has one. */
    public static Optional<ChatTemplate> forTokenizer(Tokenizer tokenizer) {
        return tokenizer
                .chatTemplate()
                .map(t -> new ChatTemplate(t, tokenizer.specialTokenTexts()));
    }

    /** The tokenizer's default template; a checkpoint without one cannot be used for chat. */
    public static ChatTemplate requireForTokenizer(Tokenizer tokenizer) {
        return forTokenizer(tokenizer)
                .orElseThrow(
                        () ->
                                new ChatTemplateException(
                                        "this tokenizer has no chat template, so chat requests cannot be formatted; plain completion still works"));
    }

    /**
     * The template of a checkpoint directory: {@code chat_template.jinja}, else {@code
     * chat_template.json}, else the {@code chat_template} of {@code tokenizer_config.json}.
     *
     * @throws TokenizerException when one of those files is malformed
     */
    public static Optional<ChatTemplate> forModel(Path modelDir) {
        Path configPath = modelDir.resolve("tokenizer_config.json");
        String configJson = Tokenizer.readFile(configPath, false);
        TokenizerConfig config =
                configJson == null
                        ? TokenizerConfig.EMPTY
                        : TokenizerConfig.parse(configJson, configPath.toString());
        Map<String, String> files = Tokenizer.templateFiles(modelDir);
        if (!files.isEmpty()) {
            config = config.withChatTemplates(files);
        }
        String template = config.defaultChatTemplate();
        if (template == null) {
            return Optional.empty();
        }
        Map<String, String> tokens = new LinkedHashMap<>();
        if (config.bosToken() != null) tokens.put("bos_token", config.bosToken());
        if (config.eosToken() != null) tokens.put("eos_token", config.eosToken());
        if (config.unkToken() != null) tokens.put("unk_token", config.unkToken());
        if (config.padToken() != null) tokens.put("pad_token", config.padToken());
        return Optional.of(new ChatTemplate(template, tokens));
    }

    /** @throws ChatTemplateException when the checkpoint has no chat template */
    public static ChatTemplate requireForModel(Path modelDir) {
        return forModel(modelDir)
                .orElseThrow(
                        () ->
                                new ChatTemplateException(
                                        modelDir
                                                + " has no chat template (looked for chat_template.jinja, chat_template.json and"
                                                + " tokenizer_config.json \"chat_template\"), so chat requests cannot be formatted"));
    }

    public String source() {
        return source;
    }

    public String render(List<Map<String, Object>> messages, boolean addGenerationPrompt) {
        return render(messages, addGenerationPrompt, Map.of());
    }

    /**
     * Renders the conversation.
     *
     * @param messages maps with "role" and "content"; content is a string or a list of parts such as
     *     {@code {"type": "text", "text": ...}}. Use ordered maps (LinkedHashMap) where a template
     *     serializes them with tojson: Python dicts keep insertion order.
     * @param extra further template variables (tools, documents, enable_thinking, ...); they override the defaults
     * @throws ChatTemplateException with the template's own message when it calls raise_exception,
     *     or describing the error when the template cannot be rendered
     */
    public String render(
            List<Map<String, Object>> messages,
            boolean addGenerationPrompt,
            Map<String, Object> extra) {
        Objects.requireNonNull(messages, "messages");
        Map<String, Object> bindings = new HashMap<>(specialTokens);
        bindings.put("messages", copy(messages));
        bindings.put("add_generation_prompt", addGenerationPrompt);
        bindings.put("tools", null);
        bindings.put("documents", null);
        if (extra != null) {
            extra.forEach((k, v) -> bindings.put(k, copy(v)));
        }
        RenderResult result;
        try {
            result = ENGINE.renderForResult(normalizedSource, bindings);
        } catch (RuntimeException e) {
            throw failure(e)
                    .orElseGet(
                            () ->
                                    new ChatTemplateException(
                                            "the chat template failed: " + e.getMessage(), e));
        }
        for (TemplateError error : result.getErrors()) {
            if (error.getSeverity() == TemplateError.ErrorType.FATAL) {
                Exception e = error.getException();
                throw failure(e)
                        .orElseGet(
                                () ->
                                        new ChatTemplateException(
                                                "the chat template failed: " + error.getMessage(),
                                                e));
            }
        }
        return result.getOutput();
    }

    /** The template's own raise_exception, found anywhere in the chain of causes. */
    private static Optional<ChatTemplateException> failure(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof TemplateFunctions.TemplateRaised raised) {
                return Optional.of(new ChatTemplateException(raised.getMessage()));
            }
        }
        return Optional.empty();
    }

    /** Deep, mutable copies: templates may call list.append, and callers' immutable maps must not leak in. */
    private static Object copy(Object value) {
        if (value instanceof Map<?, ?> map) {
            Map<String, Object> out = new LinkedHashMap<>();
            map.forEach((k, v) -> out.put(String.valueOf(k), copy(v)));
            return out;
        }
        if (value instanceof Iterable<?> items && !(value instanceof CharSequence)) {
            List<Object> out = new ArrayList<>();
            items.forEach(v -> out.add(copy(v)));
            return out;
        }
        return value;
    }

    private static Jinjava createEngine() {
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new PythonStringMethods());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
        JinjavaConfig config =
                JinjavaConfig.newBuilder()
                        // trim_blocks, lstrip_blocks and the trailing newline are handled in
                        // JinjaSource, as jinja2 does
                        .withTrimBlocks(false)
                        .withLstripBlocks(false)
                        .withKeepTrailingNewline(true)
                        .withElResolver(resolver)
                        .withLegacyOverrides(
                                LegacyOverrides.newBuilder()
                                        .withEvaluateMapKeys(true)
                                        .withIterateOverMapKeys(true)
                                        .withUsePyishObjectMapper(true)
                                        .withUseNaturalOperatorPrecedence(true)
                                        .withParseWhitespaceControlStrictly(true)
                                        .withAllowAdjacentTextNodes(true)
                                        .withUseTrimmingForNotesAndExpressions(true)
                                        .withKeepNullableLoopValues(true)
                                        .withHandleBackslashInQuotesOnly(true)
                                        .build())
                        .withMaxOutputSize(64L << 20)
                        .build();
        Jinjava engine = new Jinjava(config);
        engine.getGlobalContext()
                .registerFunction(
                        TemplateFunctions.definition(
                                "raise_exception", "raiseException", Object.class));
        engine.getGlobalContext()
                .registerFunction(
                        TemplateFunctions.definition("strftime_now", "strftimeNow", String.class));
        engine.getGlobalContext().registerFilter(new PythonJson());
        engine.getGlobalContext().registerTag(new GenerationTag());
        return engine;
    }
}
