package io.jemma.attention;

import java.util.List;

/**
 * The layout of one forward pass: which sequences take part and which activation rows are theirs.
 * Rows are laid out chunk after chunk, so prefill chunks and decode tokens mix freely.
 */
public record ForwardBatch(List<SequenceChunk> chunks, int totalTokens) {

    public ForwardBatch {
        chunks = List.copyOf(chunks);
        int rows = 0;
        for (SequenceChunk c : chunks) {
            if (c.firstRow() != rows) {
                throw new IllegalArgumentException("chunks must be laid out row after row");
            }
            rows += c.tokens();
        }
        if (rows != totalTokens) {
            throw new IllegalArgumentException("chunks hold " + rows + " rows, not " + totalTokens);
        }
    }

    /** Lays out chunks given as (sequenceId, startPosition, tokens) one after another. */
    public static ForwardBatch of(int[][] sequenceStartTokens) {
        var list = new java.util.ArrayList<SequenceChunk>();
        int row = 0;
        for (int[] c : sequenceStartTokens) {
            list.add(new SequenceChunk(c[0], c[1], c[2], row));
            row += c[2];
        }
        return new ForwardBatch(list, row);
    }

    /** The absolute position of every row (for a tree chunk, start + depth). */
    public int[] positions() {
        int[] p = new int[totalTokens];
        for (SequenceChunk c : chunks) {
            for (int i = 0; i < c.tokens(); i++) {
                p[c.firstRow() + i] = c.position(i);
            }
        }
        return p;
    }
}
