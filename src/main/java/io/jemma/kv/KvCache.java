package io.jemma.kv;

import io.jemma.attention.KvPages;

import java.util.HashMap;
import java.util.Map;

/**
 * The engine's view of KV memory: two page pools (full-attention layers; sliding-window layers, which
 * only ever need about one window per sequence) and every live sequence's page tables. The backend
 * holds the buffers the pages index. KV-shared layers read their source layer's pages and own none.
 *
 * <p>Admission reserves a sequence's worst case up front ({@link #reserve}), so a running sequence never
 * runs out of pages mid-generation; pages are then taken as positions are written and returned as soon
 * as a sliding window moves past them or the sequence ends. Only the scheduler thread calls this.
 */
public final class KvCache implements KvPages {
    private final PagePool full;
    private final PagePool sliding;
    private final int slidingWindow;   // the widest window of any sliding layer; 0 when there are none
    /** Positions kept behind the window (speculative decoding: rollback and the assistant's wider view). */
    private int retainedBehindWindow;
    private final Map<Integer, SequenceKv> sequences = new HashMap<>();
    private long reservedFull;
    private long reservedSliding;

    public KvCache(int pageSize, int fullPages, int slidingPages, int slidingWindow) {
        this.full = new PagePool("full-attention KV", fullPages, pageSize);
        this.sliding = new PagePool("sliding-window KV", slidingPages, pageSize);
        this.slidingWindow = slidingWindow;
    }

    @Override
    public int pageSize() {
        return full.pageSize();
    }

    public PagePool fullPool() {
        return full;
    }

    public PagePool slidingPool() {
        return sliding;
    }

    /**
     * Keeps {@code positions} more positions behind the sliding window than the next query needs: speculative
     * decoding writes draft positions that may be rolled back, and the assistant's sliding layers look one
     * position further back than the target's. Set before any sequence is reserved.
     */
    public void retainBehindWindow(int positions) {
        if (positions < 0) {
            throw new IllegalArgumentException("cannot retain " + positions + " positions");
        }
        if (!sequences.isEmpty()) {
            throw new IllegalStateException("set the retained positions before sequences start");
        }
        this.retainedBehindWindow = positions;
    }

    /** Positions kept behind the sliding window (see {@link #retainBehindWindow}). */
    public int retainedBehindWindow() {
        return retainedBehindWindow;
    }

    /** Full-pool pages a sequence of {@code maxLength} positions may need. */
    public int fullPagesFor(int maxLength) {
        return ceilDiv(maxLength, pageSize());
    }

    /**
     * Sliding-pool pages a sequence may need at once when written in chunks of at most {@code chunk}
     * positions: the window behind the chunk, the chunk, and one page of misalignment.
     */
    public int slidingPagesFor(int maxLength, int chunk) {
        if (slidingWindow == 0) {
            return 0;
        }
        return Math.min(fullPagesFor(maxLength), ceilDiv(slidingWindow - 1 + retainedBehindWindow + chunk, pageSize()) + 1);
    }

    /** Whether a sequence of up to maxLength positions written in chunks of {@code chunk} fits now. */
    public boolean canReserve(int maxLength, int chunk) {
        return fullPagesFor(maxLength) <= full.capacity() - reservedFull
                && slidingPagesFor(maxLength, chunk) <= sliding.capacity() - reservedSliding;
    }

    /** Whether such a sequence could ever fit, with nothing else running. */
    public boolean couldEverFit(int maxLength, int chunk) {
        return fullPagesFor(maxLength) <= full.capacity() && slidingPagesFor(maxLength, chunk) <= sliding.capacity();
    }

    /** Starts a sequence with its worst case set aside; false (and nothing changed) when it does not fit. */
    public boolean reserve(int sequenceId, int maxLength, int chunk) {
        if (sequences.containsKey(sequenceId)) {
            throw new IllegalStateException("sequence " + sequenceId + " already holds KV memory");
        }
        if (!canReserve(maxLength, chunk)) {
            return false;
        }
        SequenceKv s = new SequenceKv(full, sliding);
        s.reservedFull = fullPagesFor(maxLength);
        s.reservedSliding = slidingPagesFor(maxLength, chunk);
        reservedFull += s.reservedFull;
        reservedSliding += s.reservedSliding;
        sequences.put(sequenceId, s);
        return true;
    }

    /** Takes the pages that positions {@code [0, length)} need (before a forward writes them). */
    public void extend(int sequenceId, int length) {
        SequenceKv s = sequence(sequenceId);
        int fullMissing = s.full.pagesMissingFor(length);
        int slidingMissing = slidingWindow == 0 ? 0 : s.sliding.pagesMissingFor(length);
        if (fullMissing > s.reservedFull - s.full.heldPages()
                || slidingMissing > s.reservedSliding - s.sliding.heldPages()) {
            throw new IllegalStateException("sequence " + sequenceId + " grows to " + length
                    + " positions, past what it reserved");
        }
        s.full.ensure(length);
        if (slidingWindow > 0) {
            s.sliding.ensure(length);
        }
        s.length = Math.max(s.length, length);
    }

    /** After a forward wrote positions up to {@code length}: frees sliding pages the window has left. */
    public void written(int sequenceId, int length) {
        SequenceKv s = sequence(sequenceId);
        if (slidingWindow > 0) {
            // The next query (at `length`) still sees positions from length - window + 1 on.
            s.sliding.releaseBefore(length - slidingWindow + 1 - retainedBehindWindow);
        }
    }

    /** Rolls a sequence back to {@code length} positions (rejected speculative tokens). */
    public void truncate(int sequenceId, int length) {
        SequenceKv s = sequence(sequenceId);
        s.full.truncate(length);
        s.sliding.truncate(length);
        s.length = Math.min(s.length, length);
    }

    /** Returns all of a finished or aborted sequence's pages and its reservation. */
    public void release(int sequenceId) {
        SequenceKv s = sequences.remove(sequenceId);
        if (s != null) {
            s.full.releaseAll();
            s.sliding.releaseAll();
            reservedFull -= s.reservedFull;
            reservedSliding -= s.reservedSliding;
        }
    }

    public boolean holds(int sequenceId) {
        return sequences.containsKey(sequenceId);
    }

    public int sequenceCount() {
        return sequences.size();
    }

    /** The buffer row of a position (see {@code KvPages}). */
    @Override
    public int slot(int sequenceId, boolean slidingLayer, int position) {
        SequenceKv s = sequence(sequenceId);
        return (slidingLayer ? s.sliding : s.full).slot(position);
    }

    /** The physical page of a sequence's logical page, or -1 (see {@code KvPages#page}). */
    @Override
    public int page(int sequenceId, boolean slidingLayer, int logicalPage) {
        SequenceKv s = sequence(sequenceId);
        return (slidingLayer ? s.sliding : s.full).page(logicalPage);
    }

    /** Fraction of full-attention pages in use: the number users watch. */
    public double usage() {
        return full.capacity() == 0 ? 0 : (double) full.usedPages() / full.capacity();
    }

    /** Pages in use in both pools together (0 when idle: the leak check). */
    public int usedPages() {
        return full.usedPages() + sliding.usedPages();
    }

    private SequenceKv sequence(int sequenceId) {
        SequenceKv s = sequences.get(sequenceId);
        if (s == null) {
            throw new IllegalStateException("sequence " + sequenceId + " holds no KV memory");
        }
        return s;
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }
}
