package io.jemma.backend.cuda;

import static io.jemma.backend.cuda.GpuTests.BF16_BOUND;
import static io.jemma.backend.cuda.GpuTests.assertClose;
import static io.jemma.backend.cuda.GpuTests.cpu;
import static io.jemma.backend.cuda.GpuTests.gpu;
import static io.jemma.backend.cuda.GpuTests.randomBf16;
import static io.jemma.backend.cuda.GpuTests.tensor;
import static io.jemma.backend.cuda.GpuTests.uniform;

import io.jemma.backend.Backend;
import io.jemma.backend.DType;
import io.jemma.backend.HostTensor;
import io.jemma.backend.Tensor;
import io.jemma.backend.Weight;
import java.util.Locale;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * CUDA graphs: a decoder layer's feed-forward block (norm, three cuBLASLt GEMMs, gelu, fused residual
 * norm, scale) captured once and replayed on new inputs written into the captured input tensor; each
 * replay must match the CPU backend running the block eagerly. Also times eager against replayed at
 * one decode token.
 */
@Tag("gpu")
class GraphGpuTest {
    private static final float EPS = 1e-6f;

    /** The block's weights on one backend. */
    private record Block(Weight preNorm, Weight postNorm, Weight gate, Weight up, Weight down) {
        static Block load(Backend b, HostTensor pre, HostTensor post, HostTensor gate, HostTensor up, HostTensor down) {
            return new Block(b.load(pre), b.load(post), b.load(gate), b.load(up), b.load(down));
        }
    }

    /** h += norm(down(gelu(gate(norm(h))) * up(norm(h)))); h *= 0.5: all temporaries preallocated. */
    private static void feedForward(Backend b, Block w, Tensor h, Tensor x, Tensor g, Tensor u, Tensor o) {
        b.rmsNorm(h, w.preNorm(), EPS, x);
        b.matmul(x, w.gate(), g);
        b.matmul(x, w.up(), u);
        b.geluTanhMul(g, u, g);
        b.matmul(g, w.down(), o);
        b.addRmsNorm(h, o, w.postNorm(), EPS);
        b.scale(h, 0.5f);
    }

    @Test
    void capturedFeedForwardMatchesEagerCpu() {
        SplittableRandom r = GpuTests.random("graph");
        int hidden = 2816;
        int inter = 2112;
        HostTensor pre = tensor("pre", DType.BF16, new long[] {hidden}, uniform(r, hidden, 0.5, 1.5));
        HostTensor post = tensor("post", DType.BF16, new long[] {hidden}, uniform(r, hidden, 0.5, 1.5));
        HostTensor gate = randomBf16(r, "gate", inter, hidden, 1 / Math.sqrt(hidden));
        HostTensor up = randomBf16(r, "up", inter, hidden, 1 / Math.sqrt(hidden));
        HostTensor down = randomBf16(r, "down", hidden, inter, 1 / Math.sqrt(inter));
        Block cw = Block.load(cpu(), pre, post, gate, up, down);
        Block gw = Block.load(gpu(), pre, post, gate, up, down);

        for (int tokens : new int[] {1, 8}) {
            Tensor h = gpu().allocate(tokens, hidden);
            Tensor x = gpu().allocate(tokens, hidden);
            Tensor g = gpu().allocate(tokens, inter);
            Tensor u = gpu().allocate(tokens, inter);
            Tensor o = gpu().allocate(tokens, hidden);
            feedForward(gpu(), gw, h, x, g, u, o);       // eager warm-up: cuBLASLt plans, GEMM operand buffer
            try (CudaGraph graph = gpu().capture(() -> feedForward(gpu(), gw, h, x, g, u, o))) {
                for (int round = 0; round < 3; round++) {
                    float[] input = uniform(r, tokens * hidden, -2, 2);
                    gpu().copy(gpu().fromHost(input, tokens, hidden), h);
                    graph.replay();
                    Tensor ch = cpu().fromHost(input, tokens, hidden);
                    feedForward(cpu(), cw, ch, cpu().allocate(tokens, hidden), cpu().allocate(tokens, inter),
                            cpu().allocate(tokens, inter), cpu().allocate(tokens, hidden));
                    assertClose("graph", "feed-forward replay " + round + " tokens " + tokens, gpu().toHost(h),
                            cpu().toHost(ch), BF16_BOUND);
                }
                if (tokens == 1) {
                    CudaContext context = gpu().context();
                    boolean sync = context.debugSync();
                    context.debugSync(false);
                    try {
                        EventTimer timer = new EventTimer(gpu());
                        double eager = timer.medianMillis(() -> feedForward(gpu(), gw, h, x, g, u, o), 10, 50) * 1e3;
                        double replay = timer.medianMillis(graph::replay, 10, 50) * 1e3;
                        GpuReport.time("graph", "26B-A4B dense FFN, 1 token: eager", eager, "7 ops, 10 kernels");
                        GpuReport.time("graph", "26B-A4B dense FFN, 1 token: graph replay", replay,
                                String.format(Locale.ROOT, "%.2fx eager", eager / replay));
                    } finally {
                        context.debugSync(sync);
                    }
                }
            }
        }
    }
}
