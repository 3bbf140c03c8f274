package io.jemma.backend.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * cuBLASLt through java.lang.foreign: hand-written downcalls for the few functions a bf16 GEMM needs
 * (no headers, no JNI). Signatures and enum values are those of NVIDIA's cublasLt.h / library_types.h,
 * stable from CUDA 11 to 13:
 * <pre>
 *   cublasStatus_t cublasLtCreate(cublasLtHandle_t*)
 *   cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t*, cublasComputeType_t, cudaDataType_t scaleType)
 *   cublasStatus_t cublasLtMatmulDescSetAttribute(desc, cublasLtMatmulDescAttributes_t, const void*, size_t)
 *   cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t*, cudaDataType, uint64_t rows, uint64_t cols, int64_t ld)
 *   cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t*)
 *   cublasStatus_t cublasLtMatmulPreferenceSetAttribute(pref, cublasLtMatmulPreferenceAttributes_t, const void*, size_t)
 *   cublasStatus_t cublasLtMatmulAlgoGetHeuristic(handle, desc, A, B, C, D, pref, int requested,
 *                                                 cublasLtMatmulHeuristicResult_t[], int* returned)
 *   cublasStatus_t cublasLtMatmul(handle, desc, const void* alpha, const void* A, Adesc, const void* B, Bdesc,
 *                                 const void* beta, const void* C, Cdesc, void* D, Ddesc,
 *                                 const cublasLtMatmulAlgo_t*, void* workspace, size_t, cudaStream_t)
 * </pre>
 * Enums are C ints. cublasLtMatmulHeuristicResult_t is 96 bytes: algo (64 bytes, 8 x uint64), size_t
 * workspaceSize at 64, cublasStatus_t state at 72, float wavesCount at 76, int reserved[4].
 */
final class CublasLt implements AutoCloseable {

    // cudaDataType_t (library_types.h)
    static final int CUDA_R_32F = 0;
    static final int CUDA_R_16BF = 14;
    // cublasComputeType_t (cublas_api.h)
    static final int CUBLAS_COMPUTE_32F = 68;
    // cublasOperation_t
    static final int CUBLAS_OP_N = 0;
    static final int CUBLAS_OP_T = 1;
    // cublasLtMatmulDescAttributes_t
    static final int CUBLASLT_MATMUL_DESC_TRANSA = 3;
    static final int CUBLASLT_MATMUL_DESC_TRANSB = 4;
    // cublasLtMatmulPreferenceAttributes_t
    static final int CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1;     // uint64_t
    static final int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5;   // uint32_t, default 256
    static final int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6;
    static final int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7;
    static final int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8;

    static final long HEURISTIC_RESULT_BYTES = 96;
    private static final long HEURISTIC_STATE_OFFSET = 72;
    private static final long HEURISTIC_WORKSPACE_OFFSET = 64;
    /** cublasLtMatmulAlgo_t: uint64_t data[8], the start of a heuristic result. */
    private static final long ALGO_BYTES = 64;
    /** NVIDIA's recommendation for Hopper; the heuristics pick among algorithms that fit. */
    static final long WORKSPACE_BYTES = 32L << 20;

    private final Arena arena = Arena.ofShared();
    private final Path path;
    private final MethodHandle create, destroy, getVersion, statusString;
    private final MethodHandle descCreate, descDestroy, descSetAttribute;
    private final MethodHandle layoutCreate, layoutDestroy;
    private final MethodHandle prefCreate, prefDestroy, prefSetAttribute;
    private final MethodHandle algoGetHeuristic, matmul;
    private final MemorySegment handle;
    private final MemorySegment alpha;
    private final MemorySegment beta;
    private final MemorySegment out;        // scratch for out-parameters (one call at a time)
    private final MemorySegment value;      // scratch for attribute values
    private final Map<GemmKey, Plan> plans = new HashMap<>();
    /** Per token bucket ({@link GemmKey#bucket}), the algorithm the tuner chose (cublasLtMatmulAlgo_t bytes). */
    private final Map<GemmKey, byte[]> tunedAlgorithms = new HashMap<>();

    /** The cuBLASLt objects of one GEMM shape: descriptors and the algorithm the heuristics chose. */
    private record Plan(MemorySegment desc, MemorySegment a, MemorySegment b, MemorySegment d, MemorySegment algo,
                        long workspaceBytes, MemorySegment results, int candidates) {
        /** The plan with the heuristics' i-th algorithm (results: {@code candidates} heuristic results). */
        Plan candidate(int i) {
            MemorySegment r = results.asSlice(i * HEURISTIC_RESULT_BYTES, HEURISTIC_RESULT_BYTES);
            return new Plan(desc, a, b, d, r, r.get(JAVA_LONG, HEURISTIC_WORKSPACE_OFFSET), results, candidates);
        }
    }

    CublasLt() {
        path = CublasLtLibrary.find(System.getenv());
        SymbolLookup lib = path != null
                ? SymbolLookup.libraryLookup(path, arena)
                : SymbolLookup.libraryLookup(CublasLtLibrary.SONAME, arena);
        Linker linker = Linker.nativeLinker();
        create = bind(linker, lib, "cublasLtCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        destroy = bind(linker, lib, "cublasLtDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        getVersion = bind(linker, lib, "cublasLtGetVersion", FunctionDescriptor.of(JAVA_LONG));
        statusString = bind(linker, lib, "cublasLtGetStatusString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        descCreate = bind(linker, lib, "cublasLtMatmulDescCreate",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        descDestroy = bind(linker, lib, "cublasLtMatmulDescDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        descSetAttribute = bind(linker, lib, "cublasLtMatmulDescSetAttribute",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG));
        layoutCreate = bind(linker, lib, "cublasLtMatrixLayoutCreate",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        layoutDestroy = bind(linker, lib, "cublasLtMatrixLayoutDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        prefCreate = bind(linker, lib, "cublasLtMatmulPreferenceCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        prefDestroy = bind(linker, lib, "cublasLtMatmulPreferenceDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        prefSetAttribute = bind(linker, lib, "cublasLtMatmulPreferenceSetAttribute",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG));
        algoGetHeuristic = bind(linker, lib, "cublasLtMatmulAlgoGetHeuristic", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        matmul = bind(linker, lib, "cublasLtMatmul", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS));
        out = arena.allocate(64, 16);
        value = arena.allocate(16, 16);
        check(invoke(create, out), "cublasLtCreate");
        handle = out.get(ADDRESS, 0);
        alpha = arena.allocate(JAVA_FLOAT);
        alpha.set(JAVA_FLOAT, 0, 1.0f);
        beta = arena.allocate(JAVA_FLOAT);
        beta.set(JAVA_FLOAT, 0, 0.0f);
    }

    private static MethodHandle bind(Linker linker, SymbolLookup lib, String name, FunctionDescriptor descriptor) {
        MemorySegment symbol = lib.find(name)
                .orElseThrow(() -> new CudaException(CublasLtLibrary.SONAME + " has no symbol " + name));
        return linker.downcallHandle(symbol, descriptor);
    }

    /** Where the library was found (null: loaded by soname through the loader's search). */
    Path path() {
        return path;
    }

    /** cublasLtGetVersion(): 10000 * major + 100 * minor + patch. */
    long version() {
        try {
            return (long) getVersion.invokeExact();
        } catch (Throwable t) {
            throw new CudaException("cublasLtGetVersion", t);
        }
    }

    /**
     * The shape of {@code D = op(A) op(B)} in cuBLASLt's column-major terms, with A transposed:
     * A is K x M (ld lda, bf16), B is K x N (ld ldb, bf16), D is M x N (ld ldd, fp32 or, by dType, bf16:
     * rounded once from the fp32 accumulators, what the prefill's gate and up projections write). The alignments
     * (bytes, powers of two up to 256) let the heuristics pick only algorithms the pointers allow.
     */
    record GemmKey(long m, long n, long k, long lda, long ldb, long ldd, int alignA, int alignB, int alignD,
                   int dType) {
        /** D in fp32. */
        GemmKey(long m, long n, long k, long lda, long ldb, long ldd, int alignA, int alignB, int alignD) {
            this(m, n, k, lda, ldb, ldd, alignA, alignB, alignD, CUDA_R_32F);
        }

        /** The key with n (the tokens) rounded up to a power of two: shapes that share a tuned choice. */
        GemmKey bucket() {
            long bucket = n <= 1 ? 1 : Long.highestOneBit(n - 1) << 1;
            return new GemmKey(m, bucket, k, lda, ldb, ldd, alignA, alignB, alignD, dType);
        }
    }

    /** D = A^T B with fp32 accumulation on {@code stream}; see {@link GemmKey}. Asynchronous. */
    void gemm(GemmKey key, long a, long b, long d, DeviceBuffer workspace, long stream) {
        gemm(key, a, b, d, workspace, stream, null, 1);
    }

    /**
     * Picks one of {@code count} candidate algorithms by running them ({@code run.accept(i)} issues candidate i
     * on the stream): returns the index of the fastest.
     */
    interface Tuner {
        int fastest(int count, java.util.function.IntConsumer run);
    }

    /**
     * The same; a shape seen for the first time with a tuner (not null) asks the heuristics for up to
     * {@code candidates} algorithms and keeps the one the tuner times fastest on these operands (the heuristics'
     * first choice is not always the fastest at a given shape); without one, the heuristics' first.
     */
    void gemm(GemmKey key, long a, long b, long d, DeviceBuffer workspace, long stream, Tuner tuner, int candidates) {
        Plan plan = plans.get(key);
        if (plan == null) {
            plan = plan(key, tuner == null ? 1 : Math.max(1, candidates));
            if (plan.candidates() > 1) {
                Plan all = plan;
                plan = tuned(key, all, tuner, i -> run(key, all.candidate(i), a, b, d, workspace, stream));
            }
            plans.put(key, plan);
        }
        run(key, plan, a, b, d, workspace, stream);
    }

    /**
     * The tuned algorithm of key's token bucket ({@link GemmKey#bucket}): timed once per bucket, at its first shape;
     * a later shape of the bucket takes the same algorithm where the heuristics offer it for that shape too (so it runs
     * there), else their first. Tuning therefore costs a prefill of a new length nothing once its bucket is tuned.
     */
    private Plan tuned(GemmKey key, Plan candidates, Tuner tuner, java.util.function.IntConsumer run) {
        byte[] known = tunedAlgorithms.get(key.bucket());
        if (known != null) {
            for (int i = 0; i < candidates.candidates(); i++) {
                if (java.util.Arrays.equals(algorithm(candidates, i), known)) {
                    return candidates.candidate(i);
                }
            }
            return candidates.candidate(0);
        }
        int best = tuner.fastest(candidates.candidates(), run);
        tunedAlgorithms.put(key.bucket(), algorithm(candidates, best));
        return candidates.candidate(best);
    }

    /** The opaque cublasLtMatmulAlgo_t (the first 64 bytes) of the heuristics' i-th result. */
    private static byte[] algorithm(Plan plan, int i) {
        return plan.results().asSlice(i * HEURISTIC_RESULT_BYTES, ALGO_BYTES).toArray(JAVA_BYTE);
    }

    private void run(GemmKey key, Plan plan, long a, long b, long d, DeviceBuffer workspace, long stream) {
        MemorySegment dSeg = MemorySegment.ofAddress(d);
        int status;
        try {
            // invokeExact: this is the per-GEMM call, keep it free of boxing.
            status = (int) matmul.invokeExact(handle, plan.desc(), alpha, MemorySegment.ofAddress(a), plan.a(),
                    MemorySegment.ofAddress(b), plan.b(), beta, dSeg, plan.d(), dSeg, plan.d(), plan.algo(),
                    MemorySegment.ofAddress(workspace.address()), plan.workspaceBytes(),
                    MemorySegment.ofAddress(stream));
        } catch (Throwable t) {
            throw new CudaException("cublasLtMatmul " + key, t);
        }
        check(status, "cublasLtMatmul " + key);
    }

    private Plan plan(GemmKey key, int candidates) {
        MemorySegment desc = created(descCreate, "cublasLtMatmulDescCreate", CUBLAS_COMPUTE_32F, CUDA_R_32F);
        setInt(descSetAttribute, desc, CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T, "TRANSA");
        setInt(descSetAttribute, desc, CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N, "TRANSB");
        MemorySegment a = layout(CUDA_R_16BF, key.k(), key.m(), key.lda());
        MemorySegment b = layout(CUDA_R_16BF, key.k(), key.n(), key.ldb());
        MemorySegment d = layout(key.dType(), key.m(), key.n(), key.ldd());

        MemorySegment pref = created(prefCreate, "cublasLtMatmulPreferenceCreate");
        try {
            value.set(JAVA_LONG, 0, WORKSPACE_BYTES);
            check(invoke(prefSetAttribute, pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, value, 8L),
                    "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)");
            setInt(prefSetAttribute, pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.alignA(), "ALIGNMENT_A");
            setInt(prefSetAttribute, pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.alignB(), "ALIGNMENT_B");
            setInt(prefSetAttribute, pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.alignD(), "ALIGNMENT_C");
            setInt(prefSetAttribute, pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.alignD(), "ALIGNMENT_D");

            // Kept: the plan's algo is the first 64 bytes of a result; cublasLtMatmul takes a pointer to it.
            MemorySegment results = arena.allocate(HEURISTIC_RESULT_BYTES * candidates, 8);
            MemorySegment returned = value;
            returned.set(JAVA_INT, 0, 0);
            check(invoke(algoGetHeuristic, handle, desc, a, b, d, d, pref, candidates, results, returned),
                    "cublasLtMatmulAlgoGetHeuristic " + key);
            int usable = 0;
            for (int i = 0; i < returned.get(JAVA_INT, 0); i++, usable++) {
                if (results.get(JAVA_INT, i * HEURISTIC_RESULT_BYTES + HEURISTIC_STATE_OFFSET) != 0) {
                    break;
                }
            }
            if (usable < 1) {
                throw new CudaException("cuBLASLt has no algorithm for " + key);
            }
            return new Plan(desc, a, b, d, null, 0, results, usable).candidate(0);
        } finally {
            invoke(prefDestroy, pref);
        }
    }

    private MemorySegment layout(int type, long rows, long cols, long ld) {
        check(invoke(layoutCreate, out, type, rows, cols, ld), "cublasLtMatrixLayoutCreate");
        return out.get(ADDRESS, 0);
    }

    private MemorySegment created(MethodHandle h, String what, Object... args) {
        Object[] all = new Object[args.length + 1];
        all[0] = out;
        System.arraycopy(args, 0, all, 1, args.length);
        check(invoke(h, all), what);
        return out.get(ADDRESS, 0);
    }

    private void setInt(MethodHandle setter, MemorySegment target, int attribute, int value, String what) {
        this.value.set(JAVA_INT, 0, value);
        check(invoke(setter, target, attribute, this.value, 4L), "set attribute " + what);
    }

    private static int invoke(MethodHandle h, Object... args) {
        try {
            return (int) h.invokeWithArguments(args);
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new CudaException("cuBLASLt call failed", t);
        }
    }

    private void check(int status, String call) {
        if (status != 0) {
            String name;
            try {
                MemorySegment s = (MemorySegment) statusString.invokeExact(status);
                name = s.reinterpret(256).getString(0);
            } catch (Throwable t) {
                name = "status " + status;
            }
            throw new CudaException(call + " failed: " + name + " (" + status + ")");
        }
    }

    @Override
    public void close() {
        for (Plan p : plans.values()) {
            invoke(layoutDestroy, p.a());
            invoke(layoutDestroy, p.b());
            invoke(layoutDestroy, p.d());
            invoke(descDestroy, p.desc());
        }
        plans.clear();
        tunedAlgorithms.clear();
        invoke(destroy, handle);
        arena.close();
    }
}
