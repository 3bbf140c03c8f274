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
     * The map of a KV pool buffer at device address {@code address}: {@code slots} rows of {@code cols} bf16 (kv heads x
     * head dim, rows {@code cols * 2} bytes apart), seen as the 4-D tensor [slots / 8][8][cols / 64][64] and read in
     * boxes of {@code boxSlots} slots x {@code boxCols} columns with the 128-byte swizzle. A box lands in shared memory
     * as [boxSlots / 8 slot octets][boxCols / 64 column blocks][8][64]: every 1 KB atom (8 slots x 64 columns, 16-byte
     * chunk c of row r at chunk c ^ (r % 8)) where the wgmma descriptors of attention_prefill_sm90.cu read it (its
     * TMA comment). One box of a page's 16 slots x 256 columns, not four of 16 x 64: the copy engine's cost is per
     * box more than per byte (NOTES.md version 7). Boxes wholly or partly outside the pool read zeros there.
     */
    static long[] kvPool(long address, long slots, long cols, int boxSlots, int boxCols) {
        if ((address & 15) != 0 || cols % 64 != 0 || slots % 8 != 0 || boxSlots % 8 != 0 || boxCols % 64 != 0
                || boxSlots > 8 * 256 || boxCols > cols || slots <= 0 || slots > (1L << 32)) {
            throw new IllegalArgumentException("no tensor map for " + slots + " x " + cols + " bf16 at 0x"
                    + Long.toHexString(address) + " in boxes of " + boxSlots + " x " + boxCols);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment map = arena.allocate(WORDS * 8L, 128);
            // Innermost first: 64 columns, 8 slots of an octet, column blocks, octets.
            MemorySegment dims = arena.allocate(JAVA_LONG, 4);
            dims.setAtIndex(JAVA_LONG, 0, 64);
            dims.setAtIndex(JAVA_LONG, 1, 8);
            dims.setAtIndex(JAVA_LONG, 2, cols / 64);
            dims.setAtIndex(JAVA_LONG, 3, slots / 8);
            MemorySegment strides = arena.allocate(JAVA_LONG, 3);      // bytes, of dims 1 .. 3
            strides.setAtIndex(JAVA_LONG, 0, cols * 2);
            strides.setAtIndex(JAVA_LONG, 1, 128);
            strides.setAtIndex(JAVA_LONG, 2, cols * 16);
            MemorySegment box = arena.allocate(JAVA_INT, 4);
            box.setAtIndex(JAVA_INT, 0, 64);
            box.setAtIndex(JAVA_INT, 1, 8);
            box.setAtIndex(JAVA_INT, 2, boxCols / 64);
            box.setAtIndex(JAVA_INT, 3, boxSlots / 8);
            MemorySegment elementStrides = arena.allocate(JAVA_INT, 4);
            for (int i = 0; i < 4; i++) {
                elementStrides.setAtIndex(JAVA_INT, i, 1);
            }
            int status = (int) handle().invokeExact(map, BFLOAT16, 4, MemorySegment.ofAddress(address), dims, strides,
                    box, elementStrides, INTERLEAVE_NONE, SWIZZLE_128B, L2_PROMOTION_256B, OOB_FILL_ZEROS);
            if (status != 0) {
                throw new CudaException("cuTensorMapEncodeTiled failed (CUresult " + status + ") for " + slots + " x "
                        + cols + " bf16 in boxes of " + boxSlots + " x " + boxCols);
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
