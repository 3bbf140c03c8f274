package io.jemma.attention;

/** Where each sequence's positions live in the KV buffers: the page tables, as attention reads them. */
public interface KvPages {

    /** The buffer row of {@code position} of a sequence, in the sliding or the full pool. */
    int slot(int sequenceId, boolean sliding, int position);
}
