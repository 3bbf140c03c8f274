package io.jemma.backend.cuda;

import static io.jemma.backend.cuda.GpuTests.gpu;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.jemma.attention.ForwardBatch;
import io.jemma.backend.Tensor;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * One launch of each main attention kernel at the benchmark shapes, for a profiler (Nsight Compute
 * filtering on jemma_attn_): decode at batch 32 and 8k context (head dims 256 and 512), then the 8k
 * causal prefill at both. Runs only with {@code -Djemma.attention.profile=true}; checks nothing.
 */
@Tag("gpu")
class AttentionProfileGpuTest {

    @Test
    void oneLaunchEach() {
        assumeTrue(Boolean.getBoolean("jemma.attention.profile"), "profiling run only");
        for (int[] shape : new int[][] {{16, 256}, {4, 512}}) {
            AttentionTimingsGpuTest.Setup s = AttentionTimingsGpuTest.setup(shape[0], shape[1], 0, 32, 8192);
            int[][] chunks = new int[32][];
            for (int i = 0; i < 32; i++) {
                chunks[i] = new int[] {i, 8191, 1};
            }
            run(s, ForwardBatch.of(chunks));
        }
        for (int[] shape : new int[][] {{16, 256}, {4, 512}}) {
            AttentionTimingsGpuTest.Setup s = AttentionTimingsGpuTest.setup(shape[0], shape[1], 0, 1, 8192);
            run(s, ForwardBatch.of(new int[][] {{0, 0, 8192}}));
        }
    }

    private static void run(AttentionTimingsGpuTest.Setup s, ForwardBatch b) {
        int n = b.totalTokens();
        int qw = 32 * s.reader().headDim();
        Tensor q = gpu().fromHost(GpuTests.uniform(new SplittableRandom(1), n * qw, -0.3, 0.3), n, qw);
        Tensor out = gpu().allocate(n, qw);
        s.backend().beginStep(b, s.pages());
        s.backend().attend(s.reader(), b, s.pages(), q, null, null, out);
        gpu().synchronize();
    }
}
