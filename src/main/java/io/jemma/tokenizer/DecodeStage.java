package io.jemma.tokenizer;

import java.util.Arrays;

/**
 * One running step of a decoder chain. {@link #accept} receives a piece, or after a Fuse the next
 * chunk of the one fused string; {@link #finish} marks the end of the pieces. Stages pass on text
 * as soon as no later piece can change it, and only whole code points.
 */
abstract class DecodeStage {

    final DecodeStage next;

    DecodeStage(DecodeStage next) {
        this.next = next;
    }

    abstract void accept(String piece);

    void finish() {
        next.finish();
    }

    /** The end of every chain: collects the decoded text. */
    static final class Sink extends DecodeStage {
        final StringBuilder text = new StringBuilder();

        Sink() {
            super(null);
        }

        @Override
        void accept(String piece) {
            text.append(piece);
        }

        @Override
        void finish() {}

        /** The text collected since the last call. */
        String drain() {
            String s = text.toString();
            text.setLength(0);
            return s;
        }
    }

    static final class PassThrough extends DecodeStage {
        PassThrough(DecodeStage next) {
            super(next);
        }

        @Override
        void accept(String piece) {
            next.accept(piece);
        }
    }

    /** No decoder in the file: Hugging Face joins the pieces with single spaces. */
    static final class SpaceJoin extends DecodeStage {
        private boolean first = true;

        SpaceJoin(DecodeStage next) {
            super(next);
        }

        @Override
        void accept(String piece) {
            if (!first) {
                next.accept(" ");
            }
            first = false;
            next.accept(piece);
        }
    }

    static final class ReplaceEach extends DecodeStage {
        private final TextPattern pattern;
        private final String content;

        ReplaceEach(TextPattern pattern, String content, DecodeStage next) {
            super(next);
            this.pattern = pattern;
            this.content = content;
        }

        @Override
        void accept(String piece) {
            next.accept(pattern.replaceAll(piece, content));
        }
    }

    /**
     * Replace after Fuse with a literal: a match may span pieces, so the tail that could still
     * become the start of a match is held back.
     */
    static final class ReplaceInStream extends DecodeStage {
        private final String target;
        private final String content;
        private final StringBuilder pending = new StringBuilder();

        ReplaceInStream(String target, String content, DecodeStage next) {
            super(next);
            this.target = target;
            this.content = content;
        }

        @Override
        void accept(String piece) {
            pending.append(piece);
            StringBuilder out = new StringBuilder();
            int from = 0;
            int at;
            while ((at = pending.indexOf(target, from)) >= 0) {
                out.append(pending, from, at).append(content);
                from = at + target.length();
            }
            int keepFrom = Math.max(from, pending.length() - (target.length() - 1));
            if (keepFrom > from
                    && keepFrom < pending.length()
                    && Character.isLowSurrogate(pending.charAt(keepFrom))) {
                keepFrom--;
            }
            out.append(pending, from, keepFrom);
            pending.delete(0, keepFrom);
            if (!out.isEmpty()) {
                next.accept(out.toString());
            }
        }

        @Override
        void finish() {
            if (!pending.isEmpty()) {
                next.accept(pending.toString());
                pending.setLength(0);
            }
            next.finish();
        }
    }

    /** Replace after Fuse with a regex: a match could span any pieces, so nothing is passed on before the end. */
    static final class ReplaceAtEnd extends DecodeStage {
        private final TextPattern pattern;
        private final String content;
        private final StringBuilder whole = new StringBuilder();

        ReplaceAtEnd(TextPattern pattern, String content, DecodeStage next) {
            super(next);
            this.pattern = pattern;
            this.content = content;
        }

        @Override
        void accept(String piece) {
            whole.append(piece);
        }

        @Override
        void finish() {
            next.accept(pattern.replaceAll(whole.toString(), content));
            next.finish();
        }
    }

    /**
     * ByteFallback on pieces: consecutive byte pieces are held until the run ends, because
     * Hugging Face turns a whole run into one U+FFFD per byte when any part of it is not valid
     * UTF-8; emitting the valid start of a run early could contradict the full decode.
     */
    static final class ByteRuns extends DecodeStage {
        private byte[] run = new byte[16];
        private int length;

        ByteRuns(DecodeStage next) {
            super(next);
        }

        @Override
        void accept(String piece) {
            int b = byteValue(piece);
            if (b >= 0) {
                if (length == run.length) {
                    run = Arrays.copyOf(run, length * 2);
                }
                run[length++] = (byte) b;
                return;
            }
            flushRun();
            next.accept(piece);
        }

        @Override
        void finish() {
            flushRun();
            next.finish();
        }

        private void flushRun() {
            if (length == 0) {
                return;
            }
            String text = Utf8.decodeStrict(run, length);
            if (text != null) {
                next.accept(text);
            } else {
                for (int i = 0; i < length; i++) {
                    next.accept("\uFFFD");
                }
            }
            length = 0;
        }
    }

    /** ByteFallback after Fuse sees one string: only a whole text of exactly one byte piece changes. */
    static final class ByteFallbackWhole extends DecodeStage {
        private final StringBuilder head = new StringBuilder();
        private boolean passing;

        ByteFallbackWhole(DecodeStage next) {
            super(next);
        }

        @Override
        void accept(String piece) {
            if (passing) {
                next.accept(piece);
                return;
            }
            head.append(piece);
            if (head.length() > 6) { // longer than any byte piece: the text stays as it is
                passing = true;
                next.accept(head.toString());
            }
        }

        @Override
        void finish() {
            if (!passing) {
                int b = byteValue(head.toString());
                if (b < 0) {
                    next.accept(head.toString());
                } else {
                    next.accept(b < 0x80 ? String.valueOf((char) b) : "\uFFFD");
                }
            }
            next.finish();
        }
    }

    static final class StripEach extends DecodeStage {
        private final int content;
        private final int start;
        private final int stop;

        StripEach(int content, int start, int stop, DecodeStage next) {
            super(next);
            this.content = content;
            this.start = start;
            this.stop = stop;
        }

        @Override
        void accept(String piece) {
            int[] cps = piece.codePoints().toArray();
            int startCut = 0;
            while (startCut < Math.min(start, cps.length) && cps[startCut] == content) {
                startCut++;
            }
            int stopCut = cps.length;
            while (cps.length - stopCut < stop
                    && stopCut > startCut
                    && cps[stopCut - 1] == content) {
                stopCut--;
            }
            next.accept(
                    startCut == 0 && stopCut == cps.length
                            ? piece
                            : new String(cps, startCut, stopCut - startCut));
        }
    }

    /** Strip after Fuse: leading characters are dropped as they arrive, a trailing run is held until something else follows. */
    static final class StripStream extends DecodeStage {
        private final int content;
        private final int stop;
        private int leadingLeft;
        private boolean atStart = true;
        private int heldTrailing;

        StripStream(int content, int start, int stop, DecodeStage next) {
            super(next);
            this.content = content;
            this.leadingLeft = start;
            this.stop = stop;
        }

        @Override
        void accept(String piece) {
            StringBuilder out = new StringBuilder(piece.length());
            piece.codePoints()
                    .forEach(
                            cp -> {
                                if (atStart && cp == content && leadingLeft > 0) {
                                    leadingLeft--;
                                    return;
                                }
                                atStart = false;
                                if (stop > 0 && cp == content) {
                                    heldTrailing++;
                                    return;
                                }
                                for (; heldTrailing > 0; heldTrailing--) {
                                    out.appendCodePoint(content);
                                }
                                out.appendCodePoint(cp);
                            });
            if (!out.isEmpty()) {
                next.accept(out.toString());
            }
        }

        @Override
        void finish() {
            StringBuilder out = new StringBuilder();
            for (int keep = heldTrailing - stop; keep > 0; keep--) {
                out.appendCodePoint(content);
            }
            heldTrailing = 0;
            if (!out.isEmpty()) {
                next.accept(out.toString());
            }
            next.finish();
        }
    }

    /** Metaspace decoder: the replacement character becomes a space, except in the first piece where it is dropped. */
    static final class MetaspaceUndo extends DecodeStage {
        private final int replacement;
        private final String replacementText;
        private final boolean dropInFirst;
        private final boolean fused;
        private boolean first = true;

        MetaspaceUndo(int replacement, boolean dropInFirst, boolean fused, DecodeStage next) {
            super(next);
            this.replacement = replacement;
            this.replacementText = Character.toString(replacement);
            this.dropInFirst = dropInFirst;
            this.fused = fused;
        }

        @Override
        void accept(String piece) {
            boolean drop = first && dropInFirst;
            if (!fused) {
                first = false; // after Fuse every chunk belongs to the one (first) piece
            }
            if (!piece.contains(replacementText)) {
                next.accept(piece);
                return;
            }
            StringBuilder out = new StringBuilder(piece.length());
            piece.codePoints()
                    .forEach(
                            cp -> {
                                if (cp != replacement) {
                                    out.appendCodePoint(cp);
                                } else if (!drop) {
                                    out.append(' ');
                                }
                            });
            next.accept(out.toString());
        }
    }

    /**
     * The byte of a {@code <0xHH>} piece, or -1. Mirrors tokenizers: six bytes, {@code <0x} ... {@code >},
     * and the middle parsed like Rust's {@code u8::from_str_radix(_, 16)} (which accepts a leading '+').
     */
    static int byteValue(String piece) {
        if (piece.length() != 6 || !piece.startsWith("<0x") || piece.charAt(5) != '>') {
            return -1;
        }
        char hi = piece.charAt(3);
        char lo = piece.charAt(4);
        int low = Character.digit(lo, 16);
        if (lo > 0x7F || low < 0) {
            return -1;
        }
        if (hi == '+') {
            return low;
        }
        int high = Character.digit(hi, 16);
        return hi > 0x7F || high < 0 ? -1 : high * 16 + low;
    }
}
