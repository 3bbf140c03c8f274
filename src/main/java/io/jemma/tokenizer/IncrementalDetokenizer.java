package io.jemma.tokenizer;

import java.util.Objects;

/**
 * Decodes generated ids one at a time for streaming. What {@link #push} returns is final text:
 * the concatenation of all pushes and the {@link #flush} equals
 * {@code tokenizer.decode(allIds, skipSpecialTokens)}.
 *
 * <p>Text is returned as soon as no later id can change it, in whole characters. Byte pieces
 * ({@code <0xE2><0x82><0xAC>}) are held until the next non-byte piece or the flush: tokenizers
 * replaces every byte of a run with U+FFFD when any part of the run is invalid, so even a complete
 * character at the start of a run is not final until the run ends.
 *
 * <p>Not thread-safe: one detokenizer per generated sequence.
 */
public final class IncrementalDetokenizer {

    private final Tokenizer tokenizer;
    private final boolean skipSpecialTokens;
    private final DecodeStage.Sink sink = new DecodeStage.Sink();
    private final DecodeStage chain;
    private boolean flushed;

    /** Skips special tokens, as OpenAI-compatible servers do. */
    public IncrementalDetokenizer(Tokenizer tokenizer) {
        this(tokenizer, true);
    }

    public IncrementalDetokenizer(Tokenizer tokenizer, boolean skipSpecialTokens) {
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.skipSpecialTokens = skipSpecialTokens;
        this.chain = tokenizer.openDecoder(sink);
    }

    /**
     * Adds the next id and returns the text that became final with it, possibly "".
     *
     * @throws IllegalStateException after {@link #flush}
     */
    public String push(int id) {
        if (flushed) {
            throw new IllegalStateException("push after flush: start a new IncrementalDetokenizer");
        }
        String piece = tokenizer.pieceToDecode(id, skipSpecialTokens);
        if (piece != null) {
            chain.accept(piece);
        }
        return sink.drain();
    }

    /** Ends the sequence and returns the text still held back (an unfinished byte run as U+FFFD, as the full decode does). */
    public String flush() {
        if (flushed) {
            return "";
        }
        flushed = true;
        chain.finish();
        return sink.drain();
    }
}
