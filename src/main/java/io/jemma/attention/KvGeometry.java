package io.jemma.attention;

/**
 * How much KV memory an attention backend holds and how it is paged: every layer that writes KV has a
 * buffer of {@code slots} token rows in its pool (full layers in one pool, sliding layers in another);
 * a position's row is given by the sequence's page table ({@link KvPages}).
 */
public record KvGeometry(int pageSize, int fullPages, int slidingPages) {
    public KvGeometry {
        if (pageSize <= 0 || fullPages < 0 || slidingPages < 0) {
            throw new IllegalArgumentException("page size " + pageSize + ", pages " + fullPages + "/" + slidingPages);
        }
    }

    public long fullSlots() {
        return (long) fullPages * pageSize;
    }

    public long slidingSlots() {
        return (long) slidingPages * pageSize;
    }
}
