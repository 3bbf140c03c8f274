package io.jemma.tokenizer;

import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * A Hugging Face BPE tokenizer (tokenizer.json) as Gemma checkpoints ship it, producing the same
 * ids as the {@code tokenizers} library. Immutable and safe to share between threads.
 *
 * <p>Encoding: added tokens are cut out of the raw text first (longest match first), the rest is
 * normalized (Gemma: spaces become U+2581), cut into words by the pre-tokenizer and encoded with
 * BPE. No BOS is added: chat templates write {@code <bos>} themselves and it is recognized as the
 * special token.
 */
public final class Tokenizer {

    private static final String TOKENIZER_JSON = "tokenizer.json";
    private static final String TOKENIZER_CONFIG_JSON = "tokenizer_config.json";
    private static final String CHAT_TEMPLATE_JINJA = "chat_template.jinja";
    private static final String CHAT_TEMPLATE_JSON = "chat_template.json";

    private final BpeModel model;
    private final Normalizer normalizer;
    private final PreTokenizer preTokenizer;
    private final Decoder decoder;

    /**
     * Texts by id as tokenizers' id_to_token gives them: added tokens (in normalized form if they
     * are matched normalized), then the vocabulary.
     */
    private final String[] pieces;

    private final boolean[] special;
    private final Map<String, Integer> addedIds;
    private final AddedTokenMatcher rawMatcher;
    private final AddedTokenMatcher normalizedMatcher;
    private final TokenizerConfig config;

    private Tokenizer(
            TokenizerJsonReader.Parts parts,
            TokenizerConfig config,
            String jsonSource,
            String configSource) {
        this.model = parts.model();
        this.normalizer = parts.normalizer();
        this.preTokenizer = parts.preTokenizer();
        this.decoder = parts.decoder();
        this.config = config;

        Map<Integer, AddedToken> byId = new LinkedHashMap<>();
        Map<String, Integer> idsByContent = new HashMap<>();
        addAll(parts.addedTokens(), byId, idsByContent, jsonSource, "added_tokens");
        addAll(config.addedTokens(), byId, idsByContent, configSource, "added_tokens_decoder");
        this.addedIds = Map.copyOf(idsByContent);

        int size = model.vocabSize();
        for (int id : byId.keySet()) {
            size = Math.max(size, id + 1);
        }
        pieces = new String[size];
        special = new boolean[size];
        for (int id = 0; id < model.vocabSize(); id++) {
            pieces[id] = model.piece(id);
        }
        List<String> rawPatterns = new ArrayList<>();
        List<AddedToken> rawTokens = new ArrayList<>();
        List<String> normalizedPatterns = new ArrayList<>();
        List<AddedToken> normalizedTokens = new ArrayList<>();
        for (AddedToken token : byId.values()) {
            special[token.id()] = token.special();
            if (token.normalized()) {
                String form =
                        normalizer == null
                                ? token.content()
                                : normalizer.normalize(token.content());
                pieces[token.id()] = form;
                normalizedPatterns.add(form);
                normalizedTokens.add(token);
            } else {
                pieces[token.id()] = token.content();
                rawPatterns.add(token.content());
                rawTokens.add(token);
            }
        }
        rawMatcher = new AddedTokenMatcher(rawPatterns, rawTokens);
        normalizedMatcher = new AddedTokenMatcher(normalizedPatterns, normalizedTokens);
    }

    /**
     * Gives each added token its id: the vocabulary's when the text is a piece (as tokenizers
     * does), else the declared one, which must not be taken. Later descriptions of a text already
     * seen only update its flags.
     */
    private void addAll(
            List<AddedToken> tokens,
            Map<Integer, AddedToken> byId,
            Map<String, Integer> idsByContent,
            String source,
            String field) {
        for (AddedToken token : tokens) {
            if (token.content().isEmpty()) {
                continue; // tokenizers ignores empty added tokens
            }
            Integer known = idsByContent.get(token.content());
            if (known != null) {
                if (field.equals("added_tokens")) {
                    byId.put(known, withId(token, known));
                }
                continue;
            }
            Integer vocabId = model.id(token.content());
            int id = vocabId != null ? vocabId : token.id();
            if (vocabId == null) {
                if (id < 0 || id >= BpeModel.MAX_ID) {
                    throw new TokenizerException(
                            source
                                    + ": "
                                    + field
                                    + ": id "
                                    + id
                                    + " of "
                                    + Json.quote(token.content())
                                    + " is out of range [0, "
                                    + BpeModel.MAX_ID
                                    + ")");
                }
                String holder = byId.containsKey(id) ? byId.get(id).content() : model.piece(id);
                if (holder != null) {
                    throw new TokenizerException(
                            source
                                    + ": "
                                    + field
                                    + ": "
                                    + Json.quote(token.content())
                                    + " and "
                                    + Json.quote(holder)
                                    + " both have id "
                                    + id);
                }
            }
            byId.put(id, withId(token, id));
            idsByContent.put(token.content(), id);
        }
    }

    private static AddedToken withId(AddedToken t, int id) {
        return new AddedToken(
                id,
                t.content(),
                t.special(),
                t.singleWord(),
                t.lstrip(),
                t.rstrip(),
                t.normalized());
    }

    /**
     * Loads {@code tokenizer.json} from a checkpoint directory, with {@code tokenizer_config.json}
     * (special tokens, chat template) and {@code chat_template.jinja} / {@code chat_template.json}
     * when present; a template file takes precedence over the config's template, as in transformers.
     *
     * @throws TokenizerException naming the file when one is missing, unreadable or malformed
     */
    public static Tokenizer load(Path modelDir) {
        Path jsonPath = modelDir.resolve(TOKENIZER_JSON);
        String json = readFile(jsonPath, true);
        Path configPath = modelDir.resolve(TOKENIZER_CONFIG_JSON);
        String configJson = readFile(configPath, false);
        TokenizerConfig config =
                configJson == null
                        ? TokenizerConfig.EMPTY
                        : TokenizerConfig.parse(configJson, configPath.toString());
        Map<String, String> templates = templateFiles(modelDir);
        if (!templates.isEmpty()) {
            config = config.withChatTemplates(templates);
        }
        return new Tokenizer(
                TokenizerJsonReader.read(json, jsonPath.toString()),
                config,
                jsonPath.toString(),
                configPath.toString());
    }

    /**
     * Builds a tokenizer from the text of tokenizer.json and, optionally, tokenizer_config.json.
     *
     * @throws TokenizerException when either text is malformed or uses an unsupported component
     */
    public static Tokenizer fromJson(String tokenizerJson, String tokenizerConfigJsonOrNull) {
        Objects.requireNonNull(tokenizerJson, "tokenizerJson");
        TokenizerConfig config =
                tokenizerConfigJsonOrNull == null
                        ? TokenizerConfig.EMPTY
                        : TokenizerConfig.parse(tokenizerConfigJsonOrNull, TOKENIZER_CONFIG_JSON);
        return new Tokenizer(
                TokenizerJsonReader.read(tokenizerJson, TOKENIZER_JSON),
                config,
                TOKENIZER_JSON,
                TOKENIZER_CONFIG_JSON);
    }

    /** Template files next to the config: chat_template.jinja wins over chat_template.json. */
    static Map<String, String> templateFiles(Path modelDir) {
        Path jinja = modelDir.resolve(CHAT_TEMPLATE_JINJA);
        String template = readFile(jinja, false);
        if (template != null) {
            return Map.of("default", template);
        }
        Path jsonPath = modelDir.resolve(CHAT_TEMPLATE_JSON);
        String json = readFile(jsonPath, false);
        if (json == null) {
            return Map.of();
        }
        var root = Json.parse(json, jsonPath.toString());
        try {
            Json.object(root, "the top level");
            return TokenizerConfig.chatTemplates(root.get("chat_template"), "chat_template");
        } catch (IllegalArgumentException e) {
            throw new TokenizerException(jsonPath + ": " + e.getMessage(), e);
        }
    }

    /** The file's text, or null when it is optional and absent. */
    static String readFile(Path path, boolean required) {
        try {
            byte[] bytes = Files.readAllBytes(path);
            return StandardCharsets.UTF_8
                    .newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(java.nio.ByteBuffer.wrap(bytes))
                    .toString();
        } catch (NoSuchFileException e) {
            if (required) {
                throw new TokenizerException(path + ": not found");
            }
            return null;
        } catch (CharacterCodingException e) {
            throw new TokenizerException(path + ": not valid UTF-8", e);
        } catch (IOException e) {
            throw new TokenizerException(path + ": cannot be read: " + e, e);
        }
    }

    /** Encodes text, recognizing special tokens written in it (as {@code <bos>} in a rendered chat template). No BOS is added. */
    public int[] encode(String text) {
        return encode(text, true);
    }

    /**
     * Encodes text; with {@code recognizeSpecialTokens} false, special tokens written in the text
     * are encoded as ordinary text (tokenizers' {@code encode_special_tokens}), which keeps user
     * content from injecting control tokens.
     */
    public int[] encode(String text, boolean recognizeSpecialTokens) {
        String input = withoutLoneSurrogates(Objects.requireNonNull(text, "text"));
        IntList ids = new IntList(input.length() / 4 + 16);
        List<PreTokenizer.Word> words = new ArrayList<>();
        for (AddedTokenMatcher.Piece raw : rawMatcher.split(input, recognizeSpecialTokens)) {
            if (raw.token() != null) {
                ids.add(raw.token().id());
                continue;
            }
            String stretch = slice(input, raw.start(), raw.end());
            String normalized = normalizer == null ? stretch : normalizer.normalize(stretch);
            for (AddedTokenMatcher.Piece part :
                    normalizedMatcher.split(normalized, recognizeSpecialTokens)) {
                if (part.token() != null) {
                    ids.add(part.token().id());
                    continue;
                }
                String wordText = slice(normalized, part.start(), part.end());
                if (preTokenizer == null) {
                    model.encode(wordText, ids);
                    continue;
                }
                words.clear();
                preTokenizer.split(
                        new PreTokenizer.Word(wordText, raw.start() == 0 && part.start() == 0),
                        words);
                for (PreTokenizer.Word word : words) {
                    model.encode(word.text(), ids);
                }
            }
        }
        return ids.toArray();
    }

    /**
     * Decodes ids to text, keeping special tokens (the transformers default). Ids without a piece
     * are skipped, as tokenizers does.
     */
    public String decode(int[] ids) {
        return decode(ids, false);
    }

    public String decode(int[] ids, boolean skipSpecialTokens) {
        DecodeStage.Sink sink = new DecodeStage.Sink();
        DecodeStage chain = openDecoder(sink);
        for (int id : ids) {
            String piece = pieceToDecode(id, skipSpecialTokens);
            if (piece != null) {
                chain.accept(piece);
            }
        }
        chain.finish();
        return sink.drain();
    }

    /** A streaming decoder for generated ids that skips special tokens, as OpenAI-compatible servers do. */
    public IncrementalDetokenizer newDetokenizer() {
        return new IncrementalDetokenizer(this, true);
    }

    public IncrementalDetokenizer newDetokenizer(boolean skipSpecialTokens) {
        return new IncrementalDetokenizer(this, skipSpecialTokens);
    }

    DecodeStage openDecoder(DecodeStage.Sink sink) {
        return Decoder.open(decoder, sink);
    }

    /** The text the decoder receives for this id, or null when the id is skipped. */
    String pieceToDecode(int id, boolean skipSpecialTokens) {
        if (id < 0 || id >= pieces.length || pieces[id] == null) {
            return null;
        }
        return skipSpecialTokens && special[id] ? null : pieces[id];
    }

    /** One more than the largest id of the vocabulary and the added tokens: the size of an embedding table for it. */
    public int vocabSize() {
        return pieces.length;
    }

    /** The id of a piece or added token, written as the tokenizer writes it (Gemma: {@code "▁the"}). */
    public OptionalInt tokenId(String piece) {
        Integer id = addedIds.get(piece);
        if (id == null) {
            id = model.id(piece);
        }
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    /**
     * The piece with this id as written in the vocabulary ({@code "▁the"}, {@code "<0x0A>"}, {@code "<bos>"}).
     *
     * @throws IllegalArgumentException when no piece has this id
     */
    public String piece(int id) {
        if (id < 0 || id >= pieces.length || pieces[id] == null) {
            throw new IllegalArgumentException(
                    "no piece has id " + id + " (vocabulary size " + pieces.length + ")");
        }
        return pieces[id];
    }

    /** Whether the id is an added token marked special ({@code <bos>}, {@code <|turn>}, ...). */
    public boolean isSpecial(int id) {
        return id >= 0 && id < special.length && special[id];
    }

    /** The id of tokenizer_config.json's bos_token, when there is one and it is known. */
    public OptionalInt bosId() {
        return config.bosToken() == null ? OptionalInt.empty() : tokenId(config.bosToken());
    }

    public OptionalInt eosId() {
        return config.eosToken() == null ? OptionalInt.empty() : tokenId(config.eosToken());
    }

    /** The text of the bos_token, as chat templates receive it. */
    public Optional<String> bosToken() {
        return Optional.ofNullable(config.bosToken());
    }

    public Optional<String> eosToken() {
        return Optional.ofNullable(config.eosToken());
    }

    /**
     * Special token texts by their transformers names (bos_token, eos_token, unk_token, pad_token),
     * as chat templates receive them.
     */
    Map<String, String> specialTokenTexts() {
        Map<String, String> texts = new LinkedHashMap<>();
        if (config.bosToken() != null) texts.put("bos_token", config.bosToken());
        if (config.eosToken() != null) texts.put("eos_token", config.eosToken());
        if (config.unkToken() != null) texts.put("unk_token", config.unkToken());
        if (config.padToken() != null) texts.put("pad_token", config.padToken());
        return texts;
    }

    /** The checkpoint's default chat template source (chat_template.jinja, chat_template.json or tokenizer_config.json). */
    public Optional<String> chatTemplate() {
        return Optional.ofNullable(config.defaultChatTemplate());
    }

    /** A named chat template ("default", "tool_use", ...) when the checkpoint ships several. */
    public Optional<String> chatTemplate(String name) {
        return Optional.ofNullable(config.chatTemplates().get(name));
    }

    private static String slice(String text, int start, int end) {
        return start == 0 && end == text.length() ? text : text.substring(start, end);
    }

    /** Java strings may hold unpaired surrogates, which are not text; they become U+FFFD before encoding. */
    static String withoutLoneSurrogates(String text) {
        int length = text.length();
        for (int i = 0; i < length; i++) {
            if (Character.isSurrogate(text.charAt(i))) {
                return replaceLoneSurrogates(text, i);
            }
        }
        return text;
    }

    private static String replaceLoneSurrogates(String text, int from) {
        StringBuilder out = new StringBuilder(text.length());
        out.append(text, 0, from);
        for (int i = from; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c)
                    && i + 1 < text.length()
                    && Character.isLowSurrogate(text.charAt(i + 1))) {
                out.append(c).append(text.charAt(++i));
            } else {
                out.append(Character.isSurrogate(c) ? '\uFFFD' : c);
            }
        }
        return out.toString();
    }
}
