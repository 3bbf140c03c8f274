package io.jemma.kv;

import java.util.BitSet;

/**
 * A fixed number of KV pages of {@code pageSize} token slots each. Pages are handed out and returned;
 * a page's slots are {@code [page * pageSize, (page + 1) * pageSize)} in every layer buffer of the pool.
 * Not thread-safe: the scheduler thread owns it.
 */
public final class PagePool {
    private final String name;
    private final int pageSize;
    private final int capacity;
    private final int[] freeStack;
    private final BitSet inUse;
    private int freeCount;

    public PagePool(String name, int pages, int pageSize) {
        if (pages < 0 || pageSize <= 0) {
            throw new IllegalArgumentException(name + ": " + pages + " pages of " + pageSize + " tokens");
        }
        this.name = name;
        this.pageSize = pageSize;
        this.capacity = pages;
        this.freeStack = new int[pages];
        this.inUse = new BitSet(pages);
        // Hand out low page ids first: easier to read in logs and tests.
        for (int i = 0; i < pages; i++) {
            freeStack[i] = pages - 1 - i;
        }
        this.freeCount = pages;
    }

    public String name() {
        return name;
    }

    public int pageSize() {
        return pageSize;
    }

    public int capacity() {
        return capacity;
    }

    public int freePages() {
        return freeCount;
    }

    public int usedPages() {
        return capacity - freeCount;
    }

    /** Token slots in all pages. */
    public long slots() {
        return (long) capacity * pageSize;
    }

    /** A free page; the caller has checked {@link #freePages()}. */
    public int allocate() {
        if (freeCount == 0) {
            throw new IllegalStateException(name + ": no free KV page (all " + capacity + " in use)");
        }
        int page = freeStack[--freeCount];
        inUse.set(page);
        return page;
    }

    public void free(int page) {
        if (page < 0 || page >= capacity || !inUse.get(page)) {
            throw new IllegalStateException(name + ": page " + page + " is not in use");
        }
        inUse.clear(page);
        freeStack[freeCount++] = page;
    }
}
