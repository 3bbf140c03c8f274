package io.jemma.backend.cuda;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;

import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvPages;
import io.jemma.attention.SequenceChunk;
import io.jemma.attention.TreeMask;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;

/**
 * The layout of one forward step on the device, read by every GPU attention kernel (both backends):
 * uploaded once per forward pass ({@code AttentionBackend.beginStep}), not once per layer, into a device
 * buffer that keeps its address from step to step (it is replaced only when a bigger step comes, and
 * {@link #reserve} grows it ahead of CUDA graph capture), so captured graphs replay with new contents.
 *
 * <p>One int32 array; kernels take its base address only and read every count and offset from the
 * header (src-native-kernels/attention_meta.cuh has the device-side accessors and the visibility rule):
 * <pre>
 *   header        int32[16]: [0] chunks [1] tokens (rows) [2] page size [3] table stride (logical pages per
 *                 table row) [4] chunk records [5] row chunk [6] row position [7] tree masks [8] full block
 *                 table [9] sliding block table (offsets in int32 words from the base) [10] most tokens of
 *                 any chunk [11] largest end position [12] chunks with a tree mask
 *   chunks        int32[chunks][8]: first row, tokens, start position, table row (= chunk index), tree (1/0),
 *                 sequence id, end position, 0
 *   row chunk     int32[tokens]: the chunk of each batch row
 *   row position  int32[tokens]: the row's position (start + i; in a tree start + depth(i))
 *   tree masks    uint64[tokens] (even offset): bit j = the row sees chunk token j (tree chunks); 0 for causal rows
 *   full table    int32[chunks][stride]: physical page of each logical page in the full pool; -1 where the
 *                 sequence holds none (released by a sliding window, or past the chunk's end)
 *   sliding table int32[chunks][stride]: likewise in the sliding pool
 * </pre>
 * The stride is the largest {@code ceil(end / pageSize)} of the step, so every chunk's table covers its
 * positions [0, end). Slot of position p: {@code table[p / pageSize] * pageSize + p % pageSize} in the
 * layer's {@link PagedKvBuffers} buffer ({@code [slots, kvHeads, headDim]} bf16).
 *
 * <p>Used from the engine thread only (see {@link CudaContext}).
 */
final class AttentionMetadata implements AutoCloseable {
    static final int HEADER = 16;
    static final int CHUNK_INTS = 8;
    // header fields
    static final int H_CHUNKS = 0;
    static final int H_TOKENS = 1;
    static final int H_PAGE_SIZE = 2;
    static final int H_STRIDE = 3;
    static final int H_CHUNK_RECORDS = 4;
    static final int H_ROW_CHUNK = 5;
    static final int H_ROW_POSITION = 6;
    static final int H_TREE_MASKS = 7;
    static final int H_FULL_TABLE = 8;
    static final int H_SLIDING_TABLE = 9;
    static final int H_MAX_CHUNK_TOKENS = 10;
    static final int H_MAX_END = 11;
    static final int H_TREE_CHUNKS = 12;
    // chunk record fields
    static final int C_FIRST_ROW = 0;
    static final int C_TOKENS = 1;
    static final int C_START = 2;
    static final int C_TABLE_ROW = 3;
    static final int C_TREE = 4;
    static final int C_SEQUENCE = 5;
    static final int C_END = 6;

    /** Where each part of a step's image starts (int32 words) and how big the image is. */
    record Layout(int chunks, int tokens, int stride, int chunkRecords, int rowChunk, int rowPosition, int treeMasks,
                  int fullTable, int slidingTable, int ints) {
        static Layout of(int chunks, int tokens, int stride) {
            int records = HEADER;
            int rowChunk = records + chunks * CHUNK_INTS;
            int rowPosition = rowChunk + tokens;
            int masks = (rowPosition + tokens + 1) & ~1;          // uint64: an even word offset
            int full = masks + 2 * tokens;
            long sliding = full + (long) chunks * stride;
            long end = sliding + (long) chunks * stride;
            if (end > Integer.MAX_VALUE - 64) {
                throw new IllegalArgumentException("attention metadata of " + end + " ints (" + chunks
                        + " chunks x " + stride + " pages)");
            }
            return new Layout(chunks, tokens, stride, records, rowChunk, rowPosition, masks, full, (int) sliding,
                    (int) end);
        }
    }

    /** Logical pages a table row needs to cover the step: the largest ceil(end / pageSize), at least 1. */
    static int stride(ForwardBatch batch, int pageSize) {
        int stride = 1;
        for (SequenceChunk c : batch.chunks()) {
            stride = Math.max(stride, (c.endPosition() + pageSize - 1) / pageSize);
        }
        return stride;
    }

    /** The host image of a step's metadata (pure: tested without a GPU). */
    static int[] image(ForwardBatch batch, KvPages pages) {
        int pageSize = pages.pageSize();
        List<SequenceChunk> chunks = batch.chunks();
        int n = chunks.size();
        int tokens = batch.totalTokens();
        Layout l = Layout.of(n, tokens, stride(batch, pageSize));
        int[] m = new int[l.ints()];
        int maxTokens = 0;
        int maxEnd = 0;
        int trees = 0;
        for (int c = 0; c < n; c++) {
            SequenceChunk ch = chunks.get(c);
            TreeMask tree = ch.tree();
            int at = l.chunkRecords() + c * CHUNK_INTS;
            m[at + C_FIRST_ROW] = ch.firstRow();
            m[at + C_TOKENS] = ch.tokens();
            m[at + C_START] = ch.startPosition();
            m[at + C_TABLE_ROW] = c;
            m[at + C_TREE] = tree == null ? 0 : 1;
            m[at + C_SEQUENCE] = ch.sequenceId();
            m[at + C_END] = ch.endPosition();
            maxTokens = Math.max(maxTokens, ch.tokens());
            maxEnd = Math.max(maxEnd, ch.endPosition());
            trees += tree == null ? 0 : 1;
            long[] visible = tree == null ? null : tree.visible();
            for (int i = 0; i < ch.tokens(); i++) {
                int row = ch.firstRow() + i;
                m[l.rowChunk() + row] = c;
                m[l.rowPosition() + row] = ch.position(i);
                if (visible != null) {
                    long mask = visible[i];
                    m[l.treeMasks() + 2 * row] = (int) mask;                // little-endian uint64
                    m[l.treeMasks() + 2 * row + 1] = (int) (mask >>> 32);
                }
            }
            int pagesOfChunk = (ch.endPosition() + pageSize - 1) / pageSize;
            for (int p = 0; p < l.stride(); p++) {
                boolean held = p < pagesOfChunk;
                m[l.fullTable() + c * l.stride() + p] = held ? pages.page(ch.sequenceId(), false, p) : -1;
                m[l.slidingTable() + c * l.stride() + p] = held ? pages.page(ch.sequenceId(), true, p) : -1;
            }
        }
        m[H_CHUNKS] = n;
        m[H_TOKENS] = tokens;
        m[H_PAGE_SIZE] = pageSize;
        m[H_STRIDE] = l.stride();
        m[H_CHUNK_RECORDS] = l.chunkRecords();
        m[H_ROW_CHUNK] = l.rowChunk();
        m[H_ROW_POSITION] = l.rowPosition();
        m[H_TREE_MASKS] = l.treeMasks();
        m[H_FULL_TABLE] = l.fullTable();
        m[H_SLIDING_TABLE] = l.slidingTable();
        m[H_MAX_CHUNK_TOKENS] = maxTokens;
        m[H_MAX_END] = maxEnd;
        m[H_TREE_CHUNKS] = trees;
        return m;
    }

    /**
     * Checks that every new row has a page in the pools the layers write (a missing one is an engine
     * bug: the kernels would skip the row's K/V store).
     */
    static void checkNewRowsHavePages(int[] image, boolean full, boolean sliding) {
        int chunks = image[H_CHUNKS];
        int ps = image[H_PAGE_SIZE];
        int stride = image[H_STRIDE];
        for (int c = 0; c < chunks; c++) {
            int at = image[H_CHUNK_RECORDS] + c * CHUNK_INTS;
            int start = image[at + C_START];
            int end = image[at + C_END];
            for (int p = start / ps; p <= (end - 1) / ps; p++) {
                for (int pool = 0; pool < 2; pool++) {
                    if ((pool == 0 ? full : sliding)
                            && image[image[pool == 0 ? H_FULL_TABLE : H_SLIDING_TABLE] + c * stride + p] < 0) {
                        throw new IllegalStateException("sequence " + image[at + C_SEQUENCE] + " has no "
                                + (pool == 0 ? "full" : "sliding") + "-pool page for positions " + p * ps + ".."
                                + ((p + 1) * ps - 1) + " it writes this step");
                    }
                }
            }
        }
    }

    private final CudaContext context;
    private final CUevent copied = new CUevent();
    private final List<DeviceBuffer> retired = new ArrayList<>();
    private PinnedBuffer staging;
    private DeviceBuffer device;
    private boolean pending;
    private ForwardBatch batch;
    private int[] image;

    AttentionMetadata(CudaContext context) {
        this.context = context;
        Cu.check(cuEventCreate(copied, CUevent_flags.CU_EVENT_DISABLE_TIMING), "cuEventCreate");
        reserve(64 * 1024);
    }

    /**
     * Makes room for an image of {@code ints} words without moving the buffer later (before capturing a
     * graph: size it for the largest batch and context the graph will replay).
     */
    void reserve(long ints) {
        long bytes = ints * Integer.BYTES;
        if (device != null && device.bytes() >= bytes) {
            return;
        }
        long size = Math.max(bytes, device == null ? 0 : 2 * device.bytes());
        awaitCopy();
        if (device != null) {
            retired.add(device);              // a captured graph may still read it
            staging.close();
        }
        device = context.memory().allocatePermanent(size);
        staging = new PinnedBuffer(size);
    }

    /** Builds the step's image and copies it to the device (asynchronously, on the stream). */
    void upload(ForwardBatch batch, KvPages pages) {
        upload(batch, image(batch, pages));
    }

    /** Copies a prepared image (see {@link #image}) to the device. */
    void upload(ForwardBatch batch, int[] image) {
        reserve(image.length);
        awaitCopy();                          // the previous step's copy may still read the staging buffer
        MemorySegment.copy(image, 0, staging.segment(), ValueLayout.JAVA_INT_UNALIGNED, 0, image.length);
        Cu.check(cuMemcpyHtoDAsync(device.pointer(0), staging.at(0), (long) image.length * Integer.BYTES,
                context.stream()), "cuMemcpyHtoDAsync(attention metadata)");
        Cu.check(cuEventRecord(copied, context.stream()), "cuEventRecord");
        pending = true;
        this.batch = batch;
        this.image = image;
    }

    private void awaitCopy() {
        if (pending) {
            Cu.check(cuEventSynchronize(copied), "cuEventSynchronize");
            pending = false;
        }
    }

    /** The device address of the image (kernels' {@code meta} argument). */
    long address() {
        return device.address();
    }

    /** The batch of the last upload (null before the first). */
    ForwardBatch batch() {
        return batch;
    }

    /** The host copy of the last upload (launchers read counts from it; do not modify). */
    int[] image() {
        return image;
    }

    @Override
    public void close() {
        awaitCopy();
        if (staging != null) {
            staging.close();
        }
        cuEventDestroy(copied);
    }
}
