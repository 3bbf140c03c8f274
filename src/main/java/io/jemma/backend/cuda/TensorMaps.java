package io.jemma.backend.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

/**
 * Tensor maps (the driver's CUtensorMap: 128 opaque bytes) that the sm_90a kernels' bulk tensor copies read, encoded
 * by the driver's {@code cuTensorMapEncodeTiled}, called through {@code java.lang.foreign} (JCuda 12.6 has no binding
 * for it). A map goes to a kernel by value, as a {@code __grid_constant__} parameter ({@link KernelArgs#words}).
 */
final class TensorMaps {
    /** cuda.h's CU_TENSOR_MAP_NUM_QWORDS: a map is 16 8-byte words. */
    static final int WORDS = 16;

    // cuda.h's enums: CUtensorMapDataType BFLOAT16, CUtensorMapInterleave NONE, CUtensorMapSwizzle 128B,
    // CUtensorMapL2promotion L2_256B, CUtensorMapFloatOOBfill NONE (out-of-bounds elements read as zeros).
    private static final int BFLOAT16 = 9;
    private static final int INTERLEAVE_NONE = 0;
    private static final int SWIZZLE_128B = 3;
    private static final int L2_PROMOTION_256B = 3;
    private static final int OOB_FILL_ZEROS = 0;

    private static volatile MethodHandle encode;

    private TensorMaps() {
    }

    /**
     * The map of a row-major bf16 matrix of {@code rows x cols} elements at device address {@code address} (rows
     * {@code cols * 2} bytes apart), read in boxes of {@code boxRows x boxCols} into shared memory with the
     * 128-byte swizzle (16-byte chunk c of a 128-byte row r lands at chunk c ^ (r % 8): the layout the wgmma
     * descriptors of attention_prefill_sm90.cu read). Boxes wholly or partly outside the matrix read zeros there.
     */
    static long[] bf16Rows(long address, long rows, long cols, int boxRows, int boxCols) {
        if ((address & 15) != 0 || (cols * 2) % 16 != 0 || boxCols * 2 > 128 || boxRows > 256 || rows <= 0
                || rows > (1L << 32)) {
            throw new IllegalArgumentException("no tensor map for " + rows + " x " + cols + " bf16 at 0x"
                    + Long.toHexString(address) + " in boxes of " + boxRows + " x " + boxCols);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment map = arena.allocate(WORDS * 8L, 128);
            MemorySegment dims = arena.allocate(JAVA_LONG, 2);
            dims.setAtIndex(JAVA_LONG, 0, cols);
            dims.setAtIndex(JAVA_LONG, 1, rows);
            MemorySegment strides = arena.allocate(JAVA_LONG, 1);
            strides.setAtIndex(JAVA_LONG, 0, cols * 2);
            MemorySegment box = arena.allocate(JAVA_INT, 2);
            box.setAtIndex(JAVA_INT, 0, boxCols);
            box.setAtIndex(JAVA_INT, 1, boxRows);
            MemorySegment elementStrides = arena.allocate(JAVA_INT, 2);
            elementStrides.setAtIndex(JAVA_INT, 0, 1);
            elementStrides.setAtIndex(JAVA_INT, 1, 1);
            int status = (int) handle().invokeExact(map, BFLOAT16, 2, MemorySegment.ofAddress(address), dims, strides,
                    box, elementStrides, INTERLEAVE_NONE, SWIZZLE_128B, L2_PROMOTION_256B, OOB_FILL_ZEROS);
            if (status != 0) {
                throw new CudaException("cuTensorMapEncodeTiled failed (CUresult " + status + ") for " + rows + " x "
                        + cols + " bf16 in boxes of " + boxRows + " x " + boxCols);
            }
            return map.toArray(JAVA_LONG);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new CudaException("cuTensorMapEncodeTiled", t);
        }
    }

    private static MethodHandle handle() {
        MethodHandle h = encode;
        if (h == null) {
            synchronized (TensorMaps.class) {
                h = encode;
                if (h == null) {
                    // The driver library JCuda already loaded: dlopen returns the same handle.
                    SymbolLookup driver = SymbolLookup.libraryLookup("libcuda.so.1", Arena.global());
                    MemorySegment symbol = driver.find("cuTensorMapEncodeTiled")
                            .orElseThrow(() -> new CudaException("libcuda.so.1 has no cuTensorMapEncodeTiled"));
                    h = Linker.nativeLinker().downcallHandle(symbol, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT,
                            JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT,
                            JAVA_INT));
                    encode = h;
                }
            }
        }
        return h;
    }
}
