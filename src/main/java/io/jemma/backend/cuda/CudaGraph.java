package io.jemma.backend.cuda;

import static jcuda.driver.JCudaDriver.cuGraphDestroy;
import static jcuda.driver.JCudaDriver.cuGraphExecDestroy;
import static jcuda.driver.JCudaDriver.cuGraphLaunch;

import io.jemma.backend.Graph;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;

/**
 * A captured sequence of backend operations, replayed with one launch: the launch gaps between many
 * small kernels (decode runs about ten per layer) go away. Created by {@link CudaBackend#capture}.
 *
 * <p>A graph replays the captured kernels with the captured arguments: the same device addresses, the
 * same scalars. So everything it touches must stay allocated (keep the tensors and weights reachable
 * while the graph lives), new inputs are written into the captured input tensors before a replay, and
 * operations that upload host arrays (embed, gatherRows, qkvNorm: ids, rows, positions) replay only
 * when their inputs are the step's ({@link CudaBackend#beginStep}), which live in fixed device buffers
 * filled before each replay; any other upload during capture is refused.
 */
public final class CudaGraph implements Graph {
    private final CudaContext context;
    private final CUgraph graph;
    private final CUgraphExec exec;
    private final long generation;
    private boolean closed;

    CudaGraph(CudaContext context, CUgraph graph, CUgraphExec exec, long generation) {
        this.context = context;
        this.graph = graph;
        this.exec = exec;
        this.generation = generation;
    }

    /** False once a fixed-address step buffer the recording may refer to has moved. */
    @Override
    public boolean valid() {
        return !closed && context.generation() == generation;
    }

    /** Enqueues one replay on the backend's stream (asynchronous, like any operation). */
    @Override
    public void replay() {
        context.enter();
        Cu.check(cuGraphLaunch(exec, context.stream()), "cuGraphLaunch");
        if (context.debugSync()) {
            context.synchronize();
        }
    }

    @Override
    public void close() {
        // After the context's close (a model closed before the assistant whose graphs ran on its backend) there
        // is nothing left to destroy: the primary context was released with everything made in it.
        if (!closed && !context.isClosed()) {
            closed = true;
            context.enter();
            cuGraphExecDestroy(exec);
            cuGraphDestroy(graph);
        }
    }
}
