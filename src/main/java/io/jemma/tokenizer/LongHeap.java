package io.jemma.tokenizer;

import java.util.Arrays;

/**
 * A four-ary min-heap of longs; the BPE merge queue packs (rank, position) into one long. Four
 * children per node halve the depth of a binary heap, which matters once a long word's queue no
 * longer fits in the CPU caches.
 */
final class LongHeap {

    private long[] heap;
    private int size;

    LongHeap(int capacity) {
        heap = new long[Math.max(capacity, 4)];
    }

    boolean isEmpty() {
        return size == 0;
    }

    void push(long value) {
        if (size == heap.length) {
            heap = Arrays.copyOf(heap, size * 2);
        }
        int i = size++;
        while (i > 0) {
            int parent = (i - 1) >>> 2;
            long p = heap[parent];
            if (p <= value) {
                break;
            }
            heap[i] = p;
            i = parent;
        }
        heap[i] = value;
    }

    long pop() {
        long top = heap[0];
        long last = heap[--size];
        int i = 0;
        while (true) {
            int first = 4 * i + 1;
            if (first >= size) {
                break;
            }
            int end = Math.min(first + 4, size);
            int child = first;
            long c = heap[first];
            for (int k = first + 1; k < end; k++) {
                if (heap[k] < c) {
                    c = heap[k];
                    child = k;
                }
            }
            if (last <= c) {
                break;
            }
            heap[i] = c;
            i = child;
        }
        heap[i] = last;
        return top;
    }
}
