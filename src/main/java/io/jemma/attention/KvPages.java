package io.jemma.attention;

/**
 * Where each sequence's positions live in the KV buffers: the page tables, as attention reads them.
 * Position {@code p} of a sequence is in logical page {@code p / pageSize()}, at row
 * {@code page(seq, sliding, p / pageSize()) * pageSize() + p % pageSize()} of the layer's buffer.
 * GPU backends copy the tables to the device once per step ({@link #page}); the CPU asks per position.
 */
public interface KvPages {

    /** The buffer row of {@code position} of a sequence, in the sliding or the full pool. */
    int slot(int sequenceId, boolean sliding, int position);

    /** Positions per page. */
    int pageSize();

    /**
     * The physical page holding logical page {@code logicalPage} of a sequence, or -1 when the sequence
     * no longer holds it (a sliding window moved past it) or does not hold it yet.
     */
    int page(int sequenceId, boolean sliding, int logicalPage);

    /** Page tables computed from a slot function, for tests: page = slot(first position) / pageSize. */
    static KvPages ofSlots(int pageSize, SlotFunction slots) {
        return new KvPages() {
            @Override
            public int slot(int sequenceId, boolean sliding, int position) {
                return slots.slot(sequenceId, sliding, position);
            }

            @Override
            public int pageSize() {
                return pageSize;
            }

            @Override
            public int page(int sequenceId, boolean sliding, int logicalPage) {
                return slots.slot(sequenceId, sliding, logicalPage * pageSize) / pageSize;
            }
        };
    }

    /** The slot of a position, pages laid out contiguously per sequence (tests and benchmarks). */
    @FunctionalInterface
    interface SlotFunction {
        int slot(int sequenceId, boolean sliding, int position);
    }
}
