package io.jemma.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Random;

/**
 * Deterministic stand-ins for a real Gemma vocabulary, which we cannot download: an English-like
 * text generator and a small BPE trainer producing a Gemma-style tokenizer.json (U+2581 word
 * pieces, 256 byte pieces, special tokens, byte fallback). Used by tests and the benchmark.
 */
public final class SyntheticTokenizers {

    public static final char SPACE_MARK = '\u2581';

    /** Gemma-style special tokens at the start of the vocabulary. */
    public static final List<String> SPECIALS =
            List.of(
                    "<pad>",
                    "<eos>",
                    "<bos>",
                    "<unk>",
                    "<mask>",
                    "<|turn>",
                    "<turn|>",
                    "<start_of_image>");

    private static final String[] COMMON_WORDS =
            ("the of and to a in is it you that he was for on are with as I his they be at one have this from or had by"
                            + " word but what some we can out other were all there when up use your how said an each she which do their"
                            + " time if will way about many then them write would like so these her long make thing see him two has look"
                            + " more day could go come did number sound no most people my over know water than call first who may down"
                            + " side been now find any new work part take get place made live where after back little only round man"
                            + " year came show every good me give our under name very through just form sentence great think say help"
                            + " low line differ turn cause much mean before move right boy old too same tell does set three want air well"
                            + " also play small end put home read hand port large spell add even land here must big high such follow act"
                            + " why ask men change went light kind off need house picture try us again animal point mother world near"
                            + " build self earth father head stand own page should country found answer school grow study still learn"
                            + " plant cover food sun four between state keep eye never last let thought city tree cross farm hard start"
                            + " might story saw far sea draw left late run don't while press close night real life few north")
                    .split(" ");

    private static final String[] ONSETS = {
        "", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
        "st", "tr", "pr", "ch", "sh", "th", "bl", "cr", "gr", "pl", "qu", "sp", "wh"
    };
    private static final String[] VOWELS = {
        "a", "e", "i", "o", "u", "ea", "ou", "ai", "io", "ee", "y"
    };
    private static final String[] CODAS = {
        "", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ng", "ck", "ght", "rt", "x"
    };
    private static final String[] SUFFIXES = {
        "", "", "", "", "ing", "ed", "er", "ly", "tion", "ment", "ness", "s", "es", "able"
    };

    private SyntheticTokenizers() {}

    /** A lexicon in frequency order: common English words first, then invented words built from English-like syllables. */
    public static List<String> lexicon(int size, long seed) {
        Random random = new Random(seed);
        LinkedHashMap<String, Boolean> words = new LinkedHashMap<>();
        for (String w : COMMON_WORDS) {
            words.put(w, true);
        }
        while (words.size() < size) {
            StringBuilder w = new StringBuilder();
            int syllables = 1 + random.nextInt(random.nextInt(4) + 1);
            for (int s = 0; s < syllables; s++) {
                w.append(ONSETS[random.nextInt(ONSETS.length)])
                        .append(VOWELS[random.nextInt(VOWELS.length)])
                        .append(CODAS[random.nextInt(CODAS.length)]);
            }
            w.append(SUFFIXES[random.nextInt(SUFFIXES.length)]);
            words.putIfAbsent(w.toString(), true);
        }
        return new ArrayList<>(words.keySet());
    }

    /** Zipf weight of the word at this frequency rank. */
    static double zipf(int rank) {
        return 1.0 / Math.pow(rank + 2.7, 1.05);
    }

    /**
     * English-like prose of exactly {@code bytes} UTF-8 bytes (ASCII): sentences of Zipf-distributed
     * words with capitals, commas, numbers, full stops, questions and paragraph breaks.
     */
    public static String englishLikeText(List<String> lexicon, int bytes, long seed) {
        Random random = new Random(seed);
        double[] cumulative = new double[lexicon.size()];
        double total = 0;
        for (int i = 0; i < cumulative.length; i++) {
            total += zipf(i);
            cumulative[i] = total;
        }
        StringBuilder text = new StringBuilder(bytes + 64);
        while (text.length() < bytes) {
            int length = 4 + random.nextInt(18);
            for (int i = 0; i < length; i++) {
                String word;
                if (random.nextInt(40) == 0) {
                    word = Integer.toString(random.nextInt(random.nextBoolean() ? 100 : 100000));
                } else {
                    int index = Arrays.binarySearch(cumulative, random.nextDouble() * total);
                    word =
                            lexicon.get(
                                    Math.min(index < 0 ? -index - 1 : index, lexicon.size() - 1));
                }
                if (i == 0 || random.nextInt(30) == 0) {
                    word = Character.toUpperCase(word.charAt(0)) + word.substring(1);
                }
                text.append(word);
                if (i + 1 < length) {
                    text.append(random.nextInt(12) == 0 ? ", " : " ");
                }
            }
            int end = random.nextInt(10);
            text.append(end == 0 ? "?" : end == 1 ? "!" : ".");
            text.append(random.nextInt(8) == 0 ? "\n\n" : " ");
        }
        text.setLength(bytes);
        return text.toString();
    }

    /**
     * Trains BPE merges on the words of {@code text} (each word with its U+2581 prefix, as
     * SentencePiece-trained Gemma pieces are) until {@code trainedPieces} pieces exist or no pair
     * occurs twice, then pads the vocabulary to {@code vocabSize} with CJK and Hangul pieces and
     * merges that English never reaches, as a multilingual vocabulary has.
     */
    public static String gemmaStyleTokenizerJson(String text, int vocabSize, int trainedPieces) {
        Map<String, Long> wordCounts = new HashMap<>();
        for (String line : text.split("\n")) {
            String[] words = line.split(" ");
            for (int i = 0; i < words.length; i++) {
                if (!words[i].isEmpty()) {
                    wordCounts.merge(
                            (i == 0 ? "" : String.valueOf(SPACE_MARK)) + words[i], 1L, Long::sum);
                }
            }
        }
        return gemmaStyleTokenizerJson(wordCounts, vocabSize, trainedPieces);
    }

    public static String gemmaStyleTokenizerJson(
            Map<String, Long> wordCounts, int vocabSize, int trainedPieces) {
        Vocabulary vocab = new Vocabulary();
        SPECIALS.forEach(vocab::add);
        for (int b = 0; b < 256; b++) {
            vocab.add(String.format("<0x%02X>", b));
        }
        for (String s : List.of("\n", "\n\n", " ", String.valueOf(SPACE_MARK))) {
            vocab.add(s);
        }
        List<String[]> merges = new ArrayList<>();
        new Trainer(wordCounts, vocab, merges).train(Math.min(trainedPieces, vocabSize));
        // Whitespace runs, as Gemma has pieces for them.
        String run = String.valueOf(SPACE_MARK);
        for (int n = 2; n <= 8 && vocab.size() < vocabSize; n++) {
            merge(vocab, merges, run, String.valueOf(SPACE_MARK));
            run += SPACE_MARK;
        }
        padWithForeignPieces(vocab, merges, vocabSize);
        return toJson(vocab, merges);
    }

    private static void merge(Vocabulary vocab, List<String[]> merges, String left, String right) {
        if (!vocab.contains(left + right)) {
            vocab.add(left + right);
            merges.add(new String[] {left, right});
        }
    }

    /** CJK ideographs and Hangul as single pieces, then two-character merges of them, until the vocabulary is full. */
    private static void padWithForeignPieces(
            Vocabulary vocab, List<String[]> merges, int vocabSize) {
        List<String> singles = new ArrayList<>();
        for (int cp = 0x4E00; cp <= 0x9FFF && vocab.size() < vocabSize; cp++) {
            singles.add(Character.toString(cp));
            vocab.add(Character.toString(cp));
        }
        for (int cp = 0xAC00; cp <= 0xD7A3 && vocab.size() < vocabSize; cp++) {
            singles.add(Character.toString(cp));
            vocab.add(Character.toString(cp));
        }
        Random random = new Random(7);
        while (vocab.size() < vocabSize) {
            String a = singles.get(random.nextInt(singles.size()));
            String b = singles.get(random.nextInt(singles.size()));
            merge(vocab, merges, a, b);
        }
    }

    private static String toJson(Vocabulary vocab, List<String[]> merges) {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (String s : SPECIALS) {
            added.addObject()
                    .put("id", vocab.id(s))
                    .put("content", s)
                    .put("single_word", false)
                    .put("lstrip", false)
                    .put("rstrip", false)
                    .put("normalized", false)
                    .put("special", true);
        }
        ObjectNode normalizer = root.putObject("normalizer");
        normalizer.put("type", "Replace");
        normalizer.putObject("pattern").put("String", " ");
        normalizer.put("content", String.valueOf(SPACE_MARK));
        ObjectNode pre = root.putObject("pre_tokenizer");
        pre.put("type", "Split");
        pre.putObject("pattern").put("String", " ");
        pre.put("behavior", "MergedWithPrevious");
        pre.put("invert", false);
        root.putNull("post_processor");
        ObjectNode decoder = root.putObject("decoder");
        decoder.put("type", "Sequence");
        ArrayNode steps = decoder.putArray("decoders");
        ObjectNode replace = steps.addObject();
        replace.put("type", "Replace");
        replace.putObject("pattern").put("String", String.valueOf(SPACE_MARK));
        replace.put("content", " ");
        steps.addObject().put("type", "ByteFallback");
        steps.addObject().put("type", "Fuse");
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.put("unk_token", "<unk>");
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", true);
        model.put("byte_fallback", true);
        model.put("ignore_merges", false);
        ObjectNode vocabNode = model.putObject("vocab");
        for (int id = 0; id < vocab.size(); id++) {
            vocabNode.put(vocab.piece(id), id);
        }
        ArrayNode mergeNode = model.putArray("merges");
        for (String[] m : merges) {
            mergeNode.addArray().add(m[0]).add(m[1]);
        }
        try {
            return mapper.writeValueAsString(root);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** Piece texts with ids in insertion order. */
    static final class Vocabulary {
        private final Map<String, Integer> ids = new HashMap<>();
        private final List<String> pieces = new ArrayList<>();

        int add(String piece) {
            return ids.computeIfAbsent(
                    piece,
                    p -> {
                        pieces.add(p);
                        return pieces.size() - 1;
                    });
        }

        boolean contains(String piece) {
            return ids.containsKey(piece);
        }

        int id(String piece) {
            return ids.get(piece);
        }

        String piece(int id) {
            return pieces.get(id);
        }

        int size() {
            return pieces.size();
        }
    }

    /**
     * Classic BPE training over word types: count adjacent pairs weighted by word frequency, merge
     * the most frequent pair everywhere, update the counts of the words that changed.
     */
    private static final class Trainer {
        private final Vocabulary vocab;
        private final List<String[]> merges;
        private final int[][] words;
        private final int[] lengths;
        private final long[] counts;
        private final Map<Long, Long> pairCounts = new HashMap<>();
        private final Map<Long, List<Integer>> wordsWithPair = new HashMap<>();
        private final PriorityQueue<long[]> queue =
                new PriorityQueue<>(
                        (a, b) ->
                                a[0] != b[0] ? Long.compare(b[0], a[0]) : Long.compare(a[1], b[1]));

        Trainer(Map<String, Long> wordCounts, Vocabulary vocab, List<String[]> merges) {
            this.vocab = vocab;
            this.merges = merges;
            List<String> types = new ArrayList<>(wordCounts.keySet());
            types.sort(null); // deterministic regardless of HashMap order
            words = new int[types.size()][];
            lengths = new int[types.size()];
            counts = new long[types.size()];
            for (int w = 0; w < types.size(); w++) {
                String word = types.get(w);
                words[w] = word.codePoints().map(cp -> vocab.add(Character.toString(cp))).toArray();
                lengths[w] = words[w].length;
                counts[w] = wordCounts.get(word);
                for (int i = 0; i + 1 < lengths[w]; i++) {
                    addPair(words[w][i], words[w][i + 1], counts[w], w);
                }
            }
            pairCounts.forEach((pair, count) -> queue.add(new long[] {count, pair}));
        }

        void train(int targetPieces) {
            while (vocab.size() < targetPieces && !queue.isEmpty()) {
                long[] top = queue.poll();
                long pair = top[1];
                long current = pairCounts.getOrDefault(pair, 0L);
                if (current != top[0]) {
                    if (current > 0) {
                        queue.add(new long[] {current, pair});
                    }
                    continue;
                }
                if (current < 2) {
                    break;
                }
                int left = (int) (pair >>> 32);
                int right = (int) pair;
                // The text may exist already from another split of it; real vocabularies have such
                // merges too.
                int mergedId = vocab.add(vocab.piece(left) + vocab.piece(right));
                merges.add(new String[] {vocab.piece(left), vocab.piece(right)});
                List<Integer> affected = wordsWithPair.remove(pair);
                int lastWord = -1;
                for (int w : affected) {
                    if (w != lastWord) {
                        applyMerge(w, left, right, mergedId);
                        lastWord = w;
                    }
                }
                pairCounts.remove(pair);
            }
        }

        private void applyMerge(int w, int left, int right, int mergedId) {
            int[] s = words[w];
            long c = counts[w];
            int n = lengths[w];
            int out = 0;
            for (int i = 0; i < n; i++) {
                if (i + 1 < n && s[i] == left && s[i + 1] == right) {
                    if (out > 0) {
                        addPair(s[out - 1], left, -c, -1);
                        addPair(s[out - 1], mergedId, c, w);
                    }
                    if (i + 2 < n) {
                        addPair(right, s[i + 2], -c, -1);
                        addPair(mergedId, s[i + 2], c, w);
                    }
                    s[out++] = mergedId;
                    i++;
                } else {
                    s[out++] = s[i];
                }
            }
            lengths[w] = out;
        }

        private void addPair(int a, int b, long delta, int word) {
            long pair = ((long) a << 32) | (b & 0xFFFF_FFFFL);
            long count = pairCounts.merge(pair, delta, Long::sum);
            if (delta > 0) {
                wordsWithPair.computeIfAbsent(pair, k -> new ArrayList<>()).add(word);
                queue.add(new long[] {count, pair});
            }
        }
    }
}
