package io.jemma.kv;

import java.util.Arrays;

/**
 * One sequence's pages in one {@link PagePool}: logical page {@code p} holds positions
 * {@code [p * pageSize, (p + 1) * pageSize)}. Pages wholly before a sliding window's reach are
 * returned to the pool as the sequence grows, so a sliding layer holds about one window per sequence.
 */
public final class PageTable {
    private static final int RELEASED = -1;

    private final PagePool pool;
    private int[] pages = new int[4];
    private int logicalPages;   // logical pages [0, logicalPages) have been allocated (some since released)
    private int firstHeld;      // logical pages before this one were released

    public PageTable(PagePool pool) {
        this.pool = pool;
    }

    public PagePool pool() {
        return pool;
    }

    /** Pages needed to hold positions up to {@code length} that this table does not have yet. */
    public int pagesMissingFor(int length) {
        return Math.max(0, ceilDiv(length, pool.pageSize()) - logicalPages);
    }

    /** Allocates pages so that positions {@code [0, length)} have slots (released ones excepted). */
    public void ensure(int length) {
        int needed = ceilDiv(length, pool.pageSize());
        if (needed > pages.length) {
            pages = Arrays.copyOf(pages, Math.max(needed, pages.length * 2));
        }
        while (logicalPages < needed) {
            pages[logicalPages++] = pool.allocate();
        }
    }

    /** Returns the pages all of whose positions are before {@code position}. */
    public void releaseBefore(int position) {
        int limit = Math.min(position / pool.pageSize(), logicalPages);
        for (; firstHeld < limit; firstHeld++) {
            pool.free(pages[firstHeld]);
            pages[firstHeld] = RELEASED;
        }
    }

    /** Returns pages past {@code length} (rolled-back speculative tokens). */
    public void truncate(int length) {
        int keep = Math.max(ceilDiv(length, pool.pageSize()), firstHeld);
        while (logicalPages > keep) {
            pool.free(pages[--logicalPages]);
        }
    }

    /** Returns every page. */
    public void releaseAll() {
        for (int p = firstHeld; p < logicalPages; p++) {
            pool.free(pages[p]);
        }
        firstHeld = 0;
        logicalPages = 0;
    }

    /** The slot of a position in the pool's layer buffers. */
    public int slot(int position) {
        int logical = position / pool.pageSize();
        if (logical < firstHeld || logical >= logicalPages) {
            throw new IllegalStateException("position " + position + " has no KV page (held: pages "
                    + firstHeld + ".." + (logicalPages - 1) + " of " + pool.name() + ")");
        }
        return pages[logical] * pool.pageSize() + position % pool.pageSize();
    }

    /** The physical page of a logical page, or -1 when it is released or not allocated yet. */
    public int page(int logicalPage) {
        return logicalPage < firstHeld || logicalPage >= logicalPages ? RELEASED : pages[logicalPage];
    }

    /** Pages held now. */
    public int heldPages() {
        return logicalPages - firstHeld;
    }

    /** The physical page of each logical page held, from the first held one (for GPU page tables). */
    public int[] heldPageIds() {
        return Arrays.copyOfRange(pages, firstHeld, logicalPages);
    }

    public int firstHeldPage() {
        return firstHeld;
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }
}
