package io.jemma.tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Finds added tokens in text, leftmost first and longest among those starting at the same place,
 * with the single_word / lstrip / rstrip rules of Hugging Face's AddedVocabulary.
 */
final class AddedTokenMatcher {

    /** A stretch of the input: either an added token ({@code token} set) or plain text. */
    record Piece(int start, int end, AddedToken token) {}

    private static final long NO_KEY = -1L;

    private final boolean[] firstChars = new boolean[65536];
    private long[] edgeKeys = new long[64];
    private int[] edgeTargets = new int[64];
    private int edgeCount;
    private AddedToken[] tokenAtNode = new AddedToken[16];
    private int nodeCount = 1;
    private final boolean empty;

    /** @param patterns the text each token is matched as, parallel to {@code tokens} */
    AddedTokenMatcher(List<String> patterns, List<AddedToken> tokens) {
        Arrays.fill(edgeKeys, NO_KEY);
        for (int i = 0; i < patterns.size(); i++) {
            String pattern = patterns.get(i);
            if (!pattern.isEmpty()) {
                insert(pattern, tokens.get(i));
            }
        }
        empty = nodeCount == 1;
    }

    /**
     * Cuts {@code text} into added tokens and the plain text between them; special tokens are
     * ignored unless {@code withSpecial}.
     */
    List<Piece> split(String text, boolean withSpecial) {
        List<Piece> pieces = new ArrayList<>(4);
        int length = text.length();
        if (empty) {
            if (length > 0) {
                pieces.add(new Piece(0, length, null));
            }
            return pieces;
        }
        int textStart = 0; // where the plain text not yet emitted begins
        int searchFrom = 0;
        int[] match = new int[2];
        while (true) {
            AddedToken token = findLeftmostLongest(text, searchFrom, match);
            if (token == null) {
                break;
            }
            int start = match[0];
            int stop = match[1];
            searchFrom = stop;
            if (!withSpecial && token.special()) {
                continue;
            }
            if (token.singleWord()) {
                boolean spaceBefore = start == 0 || !isWordChar(text.codePointBefore(start));
                boolean spaceAfter = stop == length || !isWordChar(text.codePointAt(stop));
                if (!spaceBefore || !spaceAfter) {
                    continue;
                }
            }
            if (token.lstrip()) {
                int newStart = start;
                while (newStart > 0 && isWhitespace(text.codePointBefore(newStart))) {
                    newStart -= Character.charCount(text.codePointBefore(newStart));
                }
                start = Math.max(newStart, textStart);
            }
            if (token.rstrip()) {
                while (stop < length && isWhitespace(text.codePointAt(stop))) {
                    stop += Character.charCount(text.codePointAt(stop));
                }
                searchFrom = stop;
            }
            if (textStart < start) {
                pieces.add(new Piece(textStart, start, null));
            }
            pieces.add(new Piece(start, stop, token));
            textStart = stop;
        }
        if (textStart < length) {
            pieces.add(new Piece(textStart, length, null));
        }
        return pieces;
    }

    private AddedToken findLeftmostLongest(String text, int from, int[] match) {
        int length = text.length();
        for (int i = from; i < length; i++) {
            if (!firstChars[text.charAt(i)]) {
                continue;
            }
            int node = 0;
            AddedToken best = null;
            for (int j = i; j < length; j++) {
                node = child(node, text.charAt(j));
                if (node < 0) {
                    break;
                }
                if (tokenAtNode[node] != null) {
                    best = tokenAtNode[node];
                    match[1] = j + 1;
                }
            }
            if (best != null) {
                match[0] = i;
                return best;
            }
        }
        return null;
    }

    private void insert(String pattern, AddedToken token) {
        firstChars[pattern.charAt(0)] = true;
        int node = 0;
        for (int i = 0; i < pattern.length(); i++) {
            int next = child(node, pattern.charAt(i));
            if (next < 0) {
                next = nodeCount++;
                if (nodeCount > tokenAtNode.length) {
                    tokenAtNode = Arrays.copyOf(tokenAtNode, tokenAtNode.length * 2);
                }
                addEdge(node, pattern.charAt(i), next);
            }
            node = next;
        }
        tokenAtNode[node] =
                token; // a later token with the same text wins, as in Hugging Face's map
    }

    private int child(int node, char c) {
        long key = ((long) node << 16) | c;
        int mask = edgeKeys.length - 1;
        int slot = (int) ((key * 0x9E37_79B9_7F4A_7C15L) >>> 40) & mask;
        while (true) {
            long k = edgeKeys[slot];
            if (k == key) {
                return edgeTargets[slot];
            }
            if (k == NO_KEY) {
                return -1;
            }
            slot = (slot + 1) & mask;
        }
    }

    private void addEdge(int node, char c, int target) {
        if ((edgeCount + 1) * 2 > edgeKeys.length) {
            long[] oldKeys = edgeKeys;
            int[] oldTargets = edgeTargets;
            edgeKeys = new long[oldKeys.length * 2];
            edgeTargets = new int[oldKeys.length * 2];
            Arrays.fill(edgeKeys, NO_KEY);
            edgeCount = 0;
            for (int i = 0; i < oldKeys.length; i++) {
                if (oldKeys[i] != NO_KEY) {
                    putEdge(oldKeys[i], oldTargets[i]);
                }
            }
        }
        putEdge(((long) node << 16) | c, target);
    }

    private void putEdge(long key, int target) {
        int mask = edgeKeys.length - 1;
        int slot = (int) ((key * 0x9E37_79B9_7F4A_7C15L) >>> 40) & mask;
        while (edgeKeys[slot] != NO_KEY) {
            slot = (slot + 1) & mask;
        }
        edgeKeys[slot] = key;
        edgeTargets[slot] = target;
        edgeCount++;
    }

    /** Rust regex {@code \w}: alphabetic, marks, decimal digits, connector punctuation, join controls. */
    static boolean isWordChar(int cp) {
        if (Character.isAlphabetic(cp)) {
            return true;
        }
        int type = Character.getType(cp);
        return type == Character.NON_SPACING_MARK
                || type == Character.ENCLOSING_MARK
                || type == Character.COMBINING_SPACING_MARK
                || type == Character.DECIMAL_DIGIT_NUMBER
                || type == Character.CONNECTOR_PUNCTUATION
                || cp == 0x200C
                || cp == 0x200D;
    }

    /** Unicode White_Space, the meaning of {@code \s} in Rust's regex. */
    static boolean isWhitespace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D)
                || cp == 0x20
                || cp == 0x85
                || cp == 0xA0
                || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A)
                || cp == 0x2028
                || cp == 0x2029
                || cp == 0x202F
                || cp == 0x205F
                || cp == 0x3000;
    }
}
