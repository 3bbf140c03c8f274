package io.jemma.backend.cuda;

import java.util.ArrayList;
import java.util.List;

/**
 * Launches moe.cu: Gemma 4's routed experts with routing, grouping and the expert GEMMs on the device.
 * Nothing comes back to the host inside the op and every launch shape depends only on the token count,
 * so the op can be captured in a CUDA graph; its workspace only grows (and buffers it replaces stay
 * allocated, as a captured graph may still refer to them), so at a fixed token count its addresses are
 * stable.
 *
 * <p>Per chunk of at most {@link #CHUNK_TOKENS} tokens (bounding the workspace): zero the per-expert
 * counts, route, place (row ranges, work lists, gather of the bf16 operand rows), gate_up with the gelu
 * product, down, combine. Experts with at most {@code gemvMax} rows go to the GEMV kernels (all of them
 * in decode), the others to the tensor-core GEMM kernels; the GEMM pair is launched only when some expert
 * can have more rows than that, i.e. when the chunk has more tokens.
 */
final class MoeKernels {
    static final int MAX_EXPERTS = 1024;
    static final int MAX_TOP_K = 32;
    /** moe.cu's JEMMA_MOE_GEMV_MAX: the most rows an expert may have for the GEMV kernels. */
    static final int GEMV_MAX = 8;
    static final int CHUNK_TOKENS = 2048;
    private static final int GEMV_WARPS = 8;
    private static final int TILE = 64;
    private static final int GEMM_THREADS = 128;
    private static final int PLACE_THREADS = 256;
    private static final int COMBINE_THREADS = 256;

    private final CudaContext context;
    /** Rows up to which an expert is computed by the GEMV kernels; 0 sends all to the GEMMs (tests). */
    private int gemvMax = GEMV_MAX;
    private Workspace workspace;
    /** Replaced workspaces stay allocated: a captured graph may still refer to them. */
    private final List<Workspace> retired = new ArrayList<>();

    MoeKernels(CudaContext context) {
        this.context = context;
    }

    /** Tests: route every expert to the GEMV kernels (up to {@link #GEMV_MAX} rows) or none (0). */
    void gemvMax(int rows) {
        if (rows < 0 || rows > GEMV_MAX) {
            throw new IllegalArgumentException("gemvMax " + rows + " outside [0, " + GEMV_MAX + "]");
        }
        gemvMax = rows;
    }

    /**
     * @param x       [tokens, hidden]
     * @param logits  [tokens, experts] router logits
     * @param scale   fp32 [experts] per-expert scale
     * @param gateUp  bf16 [experts, 2 * inter, hidden]
     * @param down    bf16 [experts, hidden, inter]
     * @param out     [tokens, hidden]
     */
    void apply(CudaTensor x, CudaTensor logits, int topK, CudaWeight scale, CudaWeight gateUp, CudaWeight down,
               CudaTensor out) {
        int experts = logits.cols();
        int hidden = x.cols();
        int inter = Math.toIntExact(gateUp.dim(1) / 2);
        for (int t0 = 0; t0 < x.rows(); t0 += CHUNK_TOKENS) {
            int tokens = Math.min(CHUNK_TOKENS, x.rows() - t0);
            chunk(rows(x, t0, tokens), rows(logits, t0, tokens), topK, scale, gateUp, down, rows(out, t0, tokens),
                    experts, hidden, inter);
        }
    }

    private void chunk(CudaTensor x, CudaTensor logits, int topK, CudaWeight scale, CudaWeight gateUp,
                       CudaWeight down, CudaTensor out, int experts, int hidden, int inter) {
        int tokens = x.rows();
        int pairs = tokens * topK;
        int maxTiles = Grid.ceilDiv(pairs, TILE) + Math.min(experts, pairs);
        Workspace w = workspace(experts, pairs, maxTiles, hidden, inter);
        long counts = w.ints(0);
        long offsets = w.ints(experts);
        long smallList = w.ints(2L * experts);
        long totals = w.ints(3L * experts);
        long topkExpert = w.ints(3L * experts + 2);
        long pairRow = topkExpert + 4L * pairs;
        long rowToken = pairRow + 4L * pairs;
        long tileExpert = rowToken + 4L * pairs;
        long tileRow0 = tileExpert + 4L * maxTiles;
        long topkWeight = tileRow0 + 4L * maxTiles;

        context.fill32(w.meta, 0, experts, 0);
        context.launch("jemma_moe_route", tokens, 1, Grid.reductionThreads(experts, MAX_EXPERTS), new KernelArgs()
                .ptr(logits.address()).i64(logits.rowStride()).i32(experts).i32(topK)
                .ptr(scale.address()).ptr(topkExpert).ptr(topkWeight).ptr(counts));
        boolean vec4 = Grid.vec4(x.address(), x.rowStride(), hidden);
        context.launch("jemma_moe_place", experts, 1, PLACE_THREADS, new KernelArgs()
                .ptr(topkExpert).i32(pairs).i32(topK).i32(experts).ptr(counts).i32(gemvMax)
                .ptr(offsets).ptr(smallList).ptr(tileExpert).ptr(tileRow0).ptr(totals).ptr(rowToken).ptr(pairRow)
                .ptr(x.address()).i64(x.rowStride()).i32(hidden).i32(vec4 ? 1 : 0).ptr(w.xa.address()));

        // An expert has at most `tokens` rows (a token picks an expert once).
        boolean gemv = gemvMax > 0;
        boolean gemm = tokens > gemvMax;
        int slots = Math.min(experts, pairs);
        if (gemv) {
            context.launch("jemma_moe_gemv_gate_up", Grid.ceilDiv(inter, GEMV_WARPS), slots, GEMV_WARPS * 32,
                    new KernelArgs().ptr(w.xa.address()).ptr(gateUp.address()).i32(hidden).i32(inter)
                            .ptr(offsets).ptr(counts).ptr(smallList).ptr(totals).ptr(w.act.address()));
        }
        if (gemm) {
            context.launch("jemma_moe_gemm_gate_up", Grid.ceilDiv(inter, TILE), maxTiles, GEMM_THREADS,
                    new KernelArgs().ptr(w.xa.address()).ptr(gateUp.address()).i32(hidden).i32(inter)
                            .ptr(offsets).ptr(counts).ptr(tileExpert).ptr(tileRow0).ptr(totals).ptr(w.act.address()));
        }
        if (gemv) {
            context.launch("jemma_moe_gemv_down", Grid.ceilDiv(hidden, GEMV_WARPS), slots, GEMV_WARPS * 32,
                    new KernelArgs().ptr(w.act.address()).ptr(down.address()).i32(hidden).i32(inter)
                            .ptr(offsets).ptr(counts).ptr(smallList).ptr(totals).ptr(w.y.address()));
        }
        if (gemm) {
            context.launch("jemma_moe_gemm_down", Grid.ceilDiv(hidden, TILE), maxTiles, GEMM_THREADS,
                    new KernelArgs().ptr(w.act.address()).ptr(down.address()).i32(hidden).i32(inter)
                            .ptr(offsets).ptr(counts).ptr(tileExpert).ptr(tileRow0).ptr(totals).ptr(w.y.address()));
        }
        context.launch("jemma_moe_combine", Grid.ceilDiv(hidden, COMBINE_THREADS), tokens, COMBINE_THREADS,
                new KernelArgs().ptr(w.y.address()).i32(hidden).ptr(topkWeight).ptr(pairRow).i32(topK)
                        .ptr(out.address()).i64(out.rowStride()));
    }

    private static CudaTensor rows(CudaTensor t, int from, int count) {
        return new CudaTensor(t.buffer(), t.offset() + (long) from * t.rowStride(), count, t.cols(), t.rowStride());
    }

    /**
     * The per-call device buffers: meta (ints: counts, offsets, GEMV list, totals, picks, rows, tiles;
     * then the pick weights as floats), xa (bf16 operand rows), act (bf16 gelu products), y (fp32 expert
     * outputs). Sized by the largest call so far.
     */
    private record Workspace(DeviceBuffer meta, DeviceBuffer xa, DeviceBuffer act, DeviceBuffer y) {
        long ints(long index) {
            return meta.address() + 4 * index;
        }
    }

    private Workspace workspace(int experts, int pairs, int maxTiles, int hidden, int inter) {
        long metaBytes = 4L * (3L * experts + 2 + 4L * pairs + 2L * maxTiles);
        long xaBytes = 2L * pairs * hidden;
        long actBytes = 2L * pairs * inter;
        long yBytes = 4L * pairs * hidden;
        Workspace w = workspace;
        if (w != null && w.meta.bytes() >= metaBytes && w.xa.bytes() >= xaBytes && w.act.bytes() >= actBytes
                && w.y.bytes() >= yBytes) {
            return w;
        }
        if (w != null) {
            // At least doubling: the retired workspaces add up to less than the current one.
            retired.add(w);
            metaBytes = Math.max(metaBytes, 2 * w.meta.bytes());
            xaBytes = Math.max(xaBytes, 2 * w.xa.bytes());
            actBytes = Math.max(actBytes, 2 * w.act.bytes());
            yBytes = Math.max(yBytes, 2 * w.y.bytes());
        }
        DeviceMemory m = context.memory();
        workspace = new Workspace(m.allocate(metaBytes), m.allocate(xaBytes), m.allocate(actBytes), m.allocate(yBytes));
        return workspace;
    }
}
