package io.jemma.tokenizer;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Byte-pair encoding with Hugging Face's semantics: each character starts as its own piece
 * (unknown ones as {@code <0xHH>} byte pieces or the unk piece), then the adjacent pair with the
 * lowest merge rank is merged, leftmost first, until no rule applies.
 */
final class BpeModel {

    /** Ids must stay below this; it keeps a malformed file from making us allocate gigabytes. */
    static final int MAX_ID = 1 << 24;

    private static final char SPACE_MARK = '\u2581';

    private final String[] pieces;
    private final Map<String, Integer> ids;
    private final int[] bmpCharIds = new int[65536];
    private final Map<Integer, Integer> supplementaryCharIds = new HashMap<>();
    private final MergeTable merges;
    private final boolean byteFallback;
    private final int[] byteIds = new int[256];
    private final boolean allBytePieces;
    private final int unkId;
    private final boolean fuseUnk;
    private final boolean ignoreMerges;
    private final String prefix;
    private final String suffix;

    /**
     * For a character c (BMP), whether a word may be cut between c and a following U+2581 without
     * changing the result; null when cutting is never safe. See {@link #spaceMarkCuts}.
     */
    private final boolean[] cutAfterBmp;

    /** (last character of a, first character of b) for every merge rule (a, b); null when cutting is never safe. */
    private final LongSet joinedEdges;

    private final SegmentCache cache = new SegmentCache();

    record Options(
            String unkToken,
            boolean fuseUnk,
            boolean byteFallback,
            boolean ignoreMerges,
            String continuingSubwordPrefix,
            String endOfWordSuffix) {}

    /**
     * @param merges pairs of piece texts in rank order
     * @throws IllegalArgumentException naming the first inconsistency
     */
    BpeModel(Map<String, Integer> vocab, List<String[]> merges, Options options) {
        this.ids = vocab;
        int maxId = -1;
        for (Map.Entry<String, Integer> e : vocab.entrySet()) {
            int id = e.getValue();
            if (id < 0 || id >= MAX_ID) {
                throw new IllegalArgumentException(
                        "model.vocab: id "
                                + id
                                + " of piece "
                                + Json.quote(e.getKey())
                                + " is out of range [0, "
                                + MAX_ID
                                + ")");
            }
            maxId = Math.max(maxId, id);
        }
        pieces = new String[maxId + 1];
        for (Map.Entry<String, Integer> e : vocab.entrySet()) {
            int id = e.getValue();
            if (pieces[id] != null) {
                throw new IllegalArgumentException(
                        "model.vocab: pieces "
                                + Json.quote(pieces[id])
                                + " and "
                                + Json.quote(e.getKey())
                                + " both have id "
                                + id);
            }
            pieces[id] = e.getKey();
        }
        Arrays.fill(bmpCharIds, -1);
        for (int id = 0; id < pieces.length; id++) {
            String piece = pieces[id];
            if (piece != null && !piece.isEmpty() && piece.codePointCount(0, piece.length()) == 1) {
                int cp = piece.codePointAt(0);
                if (cp < 0x10000) {
                    bmpCharIds[cp] = id;
                } else {
                    supplementaryCharIds.put(cp, id);
                }
            }
        }
        this.byteFallback = options.byteFallback();
        boolean all = true;
        for (int b = 0; b < 256; b++) {
            byteIds[b] = vocab.getOrDefault(bytePiece(b), -1);
            all &= byteIds[b] >= 0;
        }
        this.allBytePieces = all;
        if (options.unkToken() != null) {
            Integer unk = vocab.get(options.unkToken());
            if (unk == null) {
                throw new IllegalArgumentException(
                        "model.unk_token "
                                + Json.quote(options.unkToken())
                                + " is not in model.vocab");
            }
            this.unkId = unk;
        } else {
            this.unkId = -1;
        }
        this.fuseUnk = options.fuseUnk();
        this.ignoreMerges = options.ignoreMerges();
        this.prefix = options.continuingSubwordPrefix();
        this.suffix = options.endOfWordSuffix();
        this.merges = buildMerges(vocab, merges, prefix);
        this.joinedEdges = prefix == null && suffix == null ? joinedEdges() : null;
        this.cutAfterBmp = spaceMarkCuts();
    }

    static String bytePiece(int b) {
        return String.format("<0x%02X>", b);
    }

    int vocabSize() {
        return pieces.length;
    }

    /** The piece with this id, or null for an id the vocabulary does not use. */
    String piece(int id) {
        return id >= 0 && id < pieces.length ? pieces[id] : null;
    }

    Integer id(String piece) {
        return ids.get(piece);
    }

    /** Encodes one pre-tokenized word, appending ids to {@code out}. */
    void encode(String word, IntList out) {
        int length = word.length();
        if (length == 0) {
            return;
        }
        if (ignoreMerges) {
            Integer whole = ids.get(word);
            if (whole != null) {
                out.add(whole);
                return;
            }
        }
        char[] chars = word.toCharArray();
        if (cutAfterBmp == null) {
            encodeSegment(chars, 0, length, out);
            return;
        }
        int start = 0;
        for (int i = 1; i < length; i++) {
            if (chars[i] == SPACE_MARK && mayCutBefore(chars, i)) {
                encodeSegment(chars, start, i, out);
                start = i;
            }
        }
        encodeSegment(chars, start, length, out);
    }

    private boolean mayCutBefore(char[] chars, int i) {
        char c = chars[i - 1];
        if (!Character.isSurrogate(c)) {
            return cutAfterBmp[c];
        }
        int edge = rightEdgeOf(Character.codePointBefore(chars, i));
        return edge >= 0 && !joinedEdges.contains(edgePair(edge, SPACE_MARK));
    }

    private void encodeSegment(char[] text, int from, int to, IntList out) {
        if (to - from <= SegmentCache.MAX_SEGMENT_CHARS || joinedEdges == null) {
            encodePiece(text, from, to, out);
            return;
        }
        // A long unbroken run (no spaces: CJK, code, digits): cut it too wherever no rule can join.
        int start = from;
        for (int i = from + 1; i < to; i++) {
            if (!(Character.isLowSurrogate(text[i]) && Character.isHighSurrogate(text[i - 1]))
                    && separable(
                            Character.codePointBefore(text, i, from),
                            Character.codePointAt(text, i, to))) {
                encodePiece(text, start, i, out);
                start = i;
            }
        }
        encodePiece(text, start, to, out);
    }

    private void encodePiece(char[] text, int from, int to, IntList out) {
        if (to - from > SegmentCache.MAX_SEGMENT_CHARS) {
            out.addAll(mergeSegment(text, from, to));
            return;
        }
        int hash = SegmentCache.hash(text, from, to);
        int[] cached = cache.get(text, from, to, hash);
        if (cached == null) {
            cached = mergeSegment(text, from, to);
            cache.put(Arrays.copyOfRange(text, from, to), hash, cached);
        }
        out.addAll(cached);
    }

    /**
     * Whether text may be cut between characters x and y without changing the ids: both become
     * vocabulary or byte pieces (never the unk piece, which fuses and reorders), and no merge rule
     * joins a piece ending like x's last piece with one starting like y's first.
     */
    private boolean separable(int x, int y) {
        int left = charId(x) >= 0 ? x : coveredByBytes(x) ? '>' : -1;
        int right = charId(y) >= 0 ? y : coveredByBytes(y) ? '<' : -1;
        return left >= 0 && right >= 0 && !joinedEdges.contains(edgePair(left, right));
    }

    /**
     * The BPE of text[from, to): initial pieces, then repeatedly the adjacent pair with the lowest
     * rank, leftmost on ties, is merged. This is the order tokenizers' Word::merge_all produces
     * with its queue; a queued entry there is only skipped when its pair is gone, and a pair's
     * merged text only grows, so a stale entry can never match a different pair.
     */
    private int[] mergeSegment(char[] text, int from, int to) {
        IntList initial = initialPieces(text, from, to);
        int count = initial.size();
        if (count < 2) {
            return initial.toArray();
        }
        int[] symbols = initial.toArray();
        return count <= SHORT_SEGMENT
                ? mergeByScanning(symbols, count)
                : mergeWithQueue(symbols, count);
    }

    /** Segments up to this many initial pieces are merged by scanning the pair ranks, which beats a queue for short words. */
    private static final int SHORT_SEGMENT = 32;

    private static final int NO_MERGE = Integer.MAX_VALUE;

    private int[] mergeByScanning(int[] symbols, int count) {
        int[] ranks = new int[count - 1]; // ranks[i]: rank of merging symbols[i] and symbols[i + 1]
        for (int i = 0; i + 1 < count; i++) {
            ranks[i] = rankOrNone(symbols[i], symbols[i + 1]);
        }
        while (count > 1) {
            int best = 0;
            int bestRank = ranks[0];
            for (int i = 1; i < count - 1; i++) {
                if (ranks[i] < bestRank) {
                    bestRank = ranks[i];
                    best = i;
                }
            }
            if (bestRank == NO_MERGE) {
                break;
            }
            int merged = merges.mergedId(bestRank);
            symbols[best] = merged;
            System.arraycopy(symbols, best + 2, symbols, best + 1, count - best - 2);
            if (count - best - 3 > 0) {
                System.arraycopy(ranks, best + 2, ranks, best + 1, count - best - 3);
            }
            count--;
            if (best + 1 < count) {
                ranks[best] = rankOrNone(merged, symbols[best + 1]);
            }
            if (best > 0) {
                ranks[best - 1] = rankOrNone(symbols[best - 1], merged);
            }
        }
        return Arrays.copyOf(symbols, count);
    }

    private int rankOrNone(int left, int right) {
        int rank = merges.rank(left, right);
        return rank < 0 ? NO_MERGE : rank;
    }

    /** Long segments: tokenizers' algorithm, a queue of (rank, position) over a linked list of symbols. */
    private int[] mergeWithQueue(int[] symbol, int count) {
        int[] prev = new int[count];
        int[] next = new int[count];
        boolean[] gone = new boolean[count];
        for (int i = 0; i < count; i++) {
            prev[i] = i - 1;
            next[i] = i + 1 < count ? i + 1 : -1;
        }
        LongHeap queue = new LongHeap(count);
        for (int i = 0; i + 1 < count; i++) {
            int rank = merges.rank(symbol[i], symbol[i + 1]);
            if (rank >= 0) {
                queue.push(((long) rank << 32) | i);
            }
        }
        while (!queue.isEmpty()) {
            long top = queue.pop();
            int pos = (int) top;
            int right = next[pos];
            if (gone[pos] || right < 0) {
                continue;
            }
            int mergedId = merges.mergedId((int) (top >>> 32));
            int currentRank = merges.rank(symbol[pos], symbol[right]);
            // A queued merge is stale once either side changed; tokenizers compares the merged id.
            if (currentRank < 0 || merges.mergedId(currentRank) != mergedId) {
                continue;
            }
            symbol[pos] = mergedId;
            gone[right] = true;
            int after = next[right];
            next[pos] = after;
            if (after >= 0) {
                prev[after] = pos;
                int rank = merges.rank(mergedId, symbol[after]);
                if (rank >= 0) {
                    queue.push(((long) rank << 32) | pos);
                }
            }
            int before = prev[pos];
            if (before >= 0) {
                int rank = merges.rank(symbol[before], mergedId);
                if (rank >= 0) {
                    queue.push(((long) rank << 32) | before);
                }
            }
        }
        IntList result = new IntList(count);
        for (int i = 0; i >= 0; i = next[i]) {
            result.add(symbol[i]);
        }
        return result.toArray();
    }

    /** One piece per character, or its byte pieces, or the unk piece (fused if asked); as tokenizers' BPE::merge_word. */
    private IntList initialPieces(char[] text, int from, int to) {
        IntList out = new IntList(to - from);
        byte[] utf8 = new byte[4];
        int pendingUnk =
                -1; // the unk piece waiting to be added, so that fuse_unk can absorb the next
                    // unknown character
        for (int i = from; i < to; ) {
            int cp = Character.codePointAt(text, i, to);
            int end = i + Character.charCount(cp);
            String affixed = null;
            int id;
            if (prefix == null && suffix == null) {
                id = charId(cp);
            } else {
                affixed =
                        (i > from && prefix != null ? prefix : "")
                                + new String(text, i, end - i)
                                + (end >= to && suffix != null ? suffix : "");
                id = ids.getOrDefault(affixed, -1);
            }
            i = end;
            if (id >= 0) {
                if (pendingUnk >= 0) {
                    out.add(pendingUnk);
                    pendingUnk = -1;
                }
                out.add(id);
                continue;
            }
            if (byteFallback) {
                byte[] bytes =
                        affixed == null
                                ? utf8
                                : affixed.getBytes(java.nio.charset.StandardCharsets.UTF_8);
                int n = affixed == null ? Utf8.encode(cp, utf8) : bytes.length;
                boolean all = true;
                for (int k = 0; k < n && all; k++) {
                    all = byteIds[bytes[k] & 0xFF] >= 0;
                }
                if (all) {
                    // tokenizers adds the bytes without first flushing a pending unk; kept for
                    // identical ids.
                    for (int k = 0; k < n; k++) {
                        out.add(byteIds[bytes[k] & 0xFF]);
                    }
                    continue;
                }
            }
            if (unkId >= 0) {
                if (pendingUnk >= 0 && !fuseUnk) {
                    out.add(pendingUnk);
                }
                pendingUnk = unkId;
            }
            // Without an unk piece the character is dropped, as tokenizers does.
        }
        if (pendingUnk >= 0) {
            out.add(pendingUnk);
        }
        return out;
    }

    private int charId(int cp) {
        if (cp < 0x10000) {
            return bmpCharIds[cp];
        }
        Integer id = supplementaryCharIds.get(cp);
        return id == null ? -1 : id;
    }

    private static MergeTable buildMerges(
            Map<String, Integer> vocab, List<String[]> pairs, String prefix) {
        MergeTable table = new MergeTable(pairs.size());
        for (int rank = 0; rank < pairs.size(); rank++) {
            String left = pairs.get(rank)[0];
            String right = pairs.get(rank)[1];
            Integer leftId = vocab.get(left);
            Integer rightId = vocab.get(right);
            String missing = leftId == null ? left : rightId == null ? right : null;
            if (missing != null) {
                throw new IllegalArgumentException(
                        "model.merges["
                                + rank
                                + "] ("
                                + Json.quote(left)
                                + ", "
                                + Json.quote(right)
                                + ") names "
                                + Json.quote(missing)
                                + ", which is not in model.vocab");
            }
            String tail =
                    prefix != null && right.startsWith(prefix)
                            ? right.substring(prefix.length())
                            : right;
            Integer mergedId = vocab.get(left + tail);
            if (mergedId == null) {
                throw new IllegalArgumentException(
                        "model.merges["
                                + rank
                                + "] ("
                                + Json.quote(left)
                                + ", "
                                + Json.quote(right)
                                + ") makes "
                                + Json.quote(left + tail)
                                + ", which is not in model.vocab");
            }
            table.put(leftId, rightId, rank, mergedId);
        }
        return table;
    }

    /** The (last character, first character) pairs of the two sides of every surviving merge rule. */
    private LongSet joinedEdges() {
        LongSet edges = new LongSet();
        merges.forEach(
                (left, right, rank) -> {
                    String l = pieces[left];
                    String r = pieces[right];
                    if (!l.isEmpty() && !r.isEmpty()) {
                        edges.add(edgePair(l.codePointBefore(l.length()), r.codePointAt(0)));
                    }
                });
        return edges;
    }

    private static long edgePair(int last, int first) {
        return ((long) last << 21) | first;
    }

    /**
     * Decides where words may be cut before BPE so that the pieces can be cached and merged
     * independently with exactly the same result: before a U+2581 that follows a character c.
     *
     * <p>Every piece that can end at c has a text ending with c's "right edge" (c itself, '>' for
     * byte pieces, the unk text's last character), every piece starting at the U+2581 has a text
     * starting with U+2581 (it is in the vocabulary), so the cut is safe when no rule (a, b) has a
     * ending with that edge and b starting with U+2581. The same reasoning cuts long unbroken runs
     * in {@link #separable}.
     */
    private boolean[] spaceMarkCuts() {
        if (joinedEdges == null || bmpCharIds[SPACE_MARK] < 0) {
            return null;
        }
        boolean[] cutAfter = new boolean[65536];
        for (int c = 0; c < 65536; c++) {
            if (!Character.isSurrogate((char) c)) {
                int edge = rightEdgeOf(c);
                cutAfter[c] = edge >= 0 && !joinedEdges.contains(edgePair(edge, SPACE_MARK));
            }
        }
        return cutAfter;
    }

    private boolean coveredByBytes(int cp) {
        if (!byteFallback || allBytePieces) {
            return byteFallback;
        }
        byte[] utf8 = new byte[4];
        int n = Utf8.encode(cp, utf8);
        for (int k = 0; k < n; k++) {
            if (byteIds[utf8[k] & 0xFF] < 0) {
                return false;
            }
        }
        return true;
    }

    /** The last character of the text of the last initial piece of cp, or -1 if cp produces no piece. */
    private int rightEdgeOf(int cp) {
        if (charId(cp) >= 0) {
            return cp;
        }
        if (coveredByBytes(cp)) {
            return '>';
        }
        if (unkId >= 0 && !pieces[unkId].isEmpty()) {
            String unk = pieces[unkId];
            return unk.codePointBefore(unk.length());
        }
        return -1;
    }
}
