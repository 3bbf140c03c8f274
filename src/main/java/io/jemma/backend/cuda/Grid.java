package io.jemma.backend.cuda;

/** Launch-shape arithmetic shared by the launchers. */
final class Grid {
    /** The largest grid y (and z) dimension CUDA allows; row loops stride by it. */
    static final int MAX_Y = 65535;

    private Grid() {
    }

    static int ceilDiv(long a, long b) {
        return Math.toIntExact((a + b - 1) / b);
    }

    /** Threads for a block that reduces over n items: a multiple of 32 (whole warps), 32 to max. */
    static int reductionThreads(int n, int max) {
        int t = (n + 31) / 32 * 32;
        return Math.max(32, Math.min(max, t));
    }

    /** Whether 16-byte vector accesses are possible at every row start of a float tensor. */
    static boolean vec4(long address, int rowStride, int width) {
        return (address & 15) == 0 && (rowStride & 3) == 0 && (width & 3) == 0;
    }
}
