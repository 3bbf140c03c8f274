package io.jemma.backend;

/**
 * Backend work recorded once and replayed with one launch (a CUDA graph): the replay repeats the recorded
 * operations on the same memory, so new inputs must be in place (the step's ids, positions and attention
 * metadata, which a graph-capable backend keeps at fixed addresses) before each replay.
 */
public interface Graph extends AutoCloseable {

    /** Enqueues one replay (asynchronous, like any backend operation). */
    void replay();

    /**
     * False once the backend has moved memory the recording refers to (a step-input buffer had to grow):
     * the graph must then be recorded again.
     */
    boolean valid();

    @Override
    void close();
}
