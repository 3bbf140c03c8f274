// The per-step attention metadata on the device, as io.jemma.backend.cuda.AttentionMetadata uploads it once
// per forward pass (AttentionBackend.beginStep), and the paged KV layout both GPU attention backends use.
//
// KV buffers (PagedKvBuffers): per layer that writes KV, bf16 K and V of [slots, kv_heads, head_dim];
// slot = physical page * page_size + offset. Sliding layers index the sliding pool, full layers the full
// pool. Position kv of a sequence lives at slot table[logical page kv / page_size] * page_size + kv % page_size.
//
// The metadata is one int32 array (base 256-byte aligned). Kernels take its base pointer only and read
// every offset and count from the header, so that a captured CUDA graph replays correctly with a new
// step's contents as long as the buffer itself stays (it is reallocated only when a bigger step comes).
//
//   header  int32[16]:  [0] chunks  [1] tokens (rows)  [2] page size  [3] table stride (logical pages
//                       per table row)  [4] chunk records  [5] row chunk  [6] row position  [7] tree masks
//                       [8] full block table  [9] sliding block table  (offsets in int32 words from the
//                       base)  [10] most tokens of any chunk  [11] largest end position  [12] tree chunks
//   chunks  int32[chunks][8]: first row, tokens, start position, table row, tree (1/0), sequence id,
//                       end position (start + tokens), 0
//   row chunk     int32[tokens]: the chunk of every batch row
//   row position  int32[tokens]: the row's position (RoPE, window): start + i, or start + depth(i) in a tree
//   tree masks    uint64[tokens] (offset even): for rows of tree chunks, bit j = the row sees chunk token j;
//                       0 for rows of causal chunks (a causal row i sees chunk tokens j <= i)
//   full table    int32[chunks][stride]: physical page of each logical page in the full pool, -1 where
//                       the sequence holds none (released, or past its end)
//   sliding table int32[chunks][stride]: the same in the sliding pool
//
// Visibility (what every kernel computes): chunk token i at position P_i = row position sees
//   cached position kv < start    iff kv >= first_i, first_i = window > 0 ? max(0, P_i - window + 1) : 0
//   chunk token j (kv = start + j) iff (tree ? bit j of mask_i : j <= i) and position(j) >= first_i
// The K/V of chunk token j is stored at position slot start + j (a tree's accepted path is moved later).
#pragma once

#include <stdint.h>

#define JEMMA_META_HEADER 16
#define JEMMA_META_CHUNK_INTS 8

struct JemmaChunk {
    int first_row;
    int tokens;
    int start;
    int table_row;
    int tree;
    int sequence;
    int end;
    int pad;
};

__device__ __forceinline__ int jemma_meta_chunks(const int* meta) { return meta[0]; }
__device__ __forceinline__ int jemma_meta_tokens(const int* meta) { return meta[1]; }
__device__ __forceinline__ int jemma_meta_page_size(const int* meta) { return meta[2]; }

__device__ __forceinline__ JemmaChunk jemma_meta_chunk(const int* meta, int chunk) {
    const int4* p = reinterpret_cast<const int4*>(meta + meta[4] + JEMMA_META_CHUNK_INTS * chunk);
    const int4 a = p[0];
    const int4 b = p[1];
    return JemmaChunk{a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
}

__device__ __forceinline__ int jemma_meta_row_chunk(const int* meta, int row) { return meta[meta[5] + row]; }
__device__ __forceinline__ int jemma_meta_position(const int* meta, int row) { return meta[meta[6] + row]; }

__device__ __forceinline__ uint64_t jemma_meta_mask(const int* meta, int row) {
    return reinterpret_cast<const unsigned long long*>(meta + meta[7])[row];
}

// Whether a query row of chunk c sees key kv: inside the row's [first, hi) (window start, causal end), and for a
// tree chunk's own draft keys (kv >= c.start) an ancestor in the row's mask, itself inside the window.
__device__ __forceinline__ bool jemma_key_visible(const int* meta, const JemmaChunk& c, int window, int kv,
                                                  int first, int hi, uint64_t mask) {
    bool visible = kv >= first && kv < hi;
    if (visible && c.tree && kv >= c.start) {
        const int j = kv - c.start;
        visible = ((mask >> j) & 1) != 0 && (window == 0 || jemma_meta_position(meta, c.first_row + j) >= first);
    }
    return visible;
}

// The block-table row of a chunk in the full or the sliding pool.
__device__ __forceinline__ const int* jemma_meta_table(const int* meta, int sliding, int table_row) {
    return meta + meta[sliding ? 9 : 8] + (int64_t) table_row * meta[3];
}

// The buffer slot of sequence position kv through a table row (jemma_meta_table), or -1 without a page.
__device__ __forceinline__ int64_t jemma_meta_slot(const int* table, int page_size, int kv) {
    const int page = table[kv / page_size];
    return page < 0 ? -1 : (int64_t) page * page_size + kv % page_size;
}
