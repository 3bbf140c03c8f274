package io.jemma.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The host-side arithmetic of the CUDA backend, which needs no GPU to be right. */
class CudaPlanningTest {

    @Test
    void sizeClassesWasteAtMostAQuarter() {
        assertEquals(512, DeviceMemory.sizeClass(1));
        assertEquals(512, DeviceMemory.sizeClass(512));
        assertEquals(640, DeviceMemory.sizeClass(513));
        assertEquals(1024, DeviceMemory.sizeClass(1000));
        assertEquals(1024, DeviceMemory.sizeClass(1024));
        assertEquals(1280, DeviceMemory.sizeClass(1025));
        for (long bytes = 1; bytes < 1L << 40; bytes = bytes * 3 + 1) {
            long c = DeviceMemory.sizeClass(bytes);
            assertTrue(c >= bytes && (c <= 512 || c <= bytes * 1.25 + 1), bytes + " -> " + c);
            assertEquals(c, DeviceMemory.sizeClass(c), "a class maps to itself");
        }
    }

    /**
     * K stored once: the 8-dim chunks of each half whose keys the kernels derive (every nonzero frequency's pair,
     * rounded up to whole chunks); Gemma 4's full layers rotate 64 of 256 pairs at head dim 512, 8 of 32 at 64.
     */
    @Test
    void keysFromValuesDeriveTheRotatingChunks() {
        assertEquals(8, PagedKvBuffers.KeySource.derivedChunks(
                io.jemma.model.config.BundledConfigs.load("gemma-4-31b").layers().stream()
                        .filter(l -> l.kEqV()).findFirst().orElseThrow().inverseFrequencies()));
        float[] f = new float[32];
        assertEquals(0, PagedKvBuffers.KeySource.derivedChunks(f));
        f[0] = 1;
        assertEquals(1, PagedKvBuffers.KeySource.derivedChunks(f));
        f[8] = 0.5f;
        assertEquals(2, PagedKvBuffers.KeySource.derivedChunks(f));
        f[31] = 0.1f;
        assertEquals(4, PagedKvBuffers.KeySource.derivedChunks(f));
    }

    @Test
    void extendItemsComeInPairsOfOneChunkHeaviestFirst() {
        // (chunk, first row, weight): chunk 0 with 3 items, chunk 1 with 4, heavier.
        List<int[]> items = List.of(new int[] {0, 0, 10}, new int[] {0, 64, 20}, new int[] {0, 128, 30},
                new int[] {1, 0, 15}, new int[] {1, 64, 25}, new int[] {1, 128, 35}, new int[] {1, 192, 45});
        List<int[]> out = TritonAttention.pairedHeaviestFirst(items);
        int[][] expected = {{1, 192}, {1, 128}, {0, 128}, {0, 64}, {1, 64}, {1, 0}, {0, 0}};
        assertEquals(expected.length, out.size());
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i][0], out.get(i)[0], "chunk of item " + i);
            assertEquals(expected[i][1], out.get(i)[1], "first row of item " + i);
        }
        // One chunk with an even count: the plain heaviest-first order.
        List<int[]> one = TritonAttention.pairedHeaviestFirst(List.of(new int[] {0, 0, 1}, new int[] {0, 64, 2},
                new int[] {0, 128, 3}, new int[] {0, 192, 4}));
        for (int i = 0; i < 4; i++) {
            assertEquals(192 - 64 * i, one.get(i)[1]);
        }
    }

    @Test
    void gemmAlignmentIsTheWeakestOfAddressAndLeadingDimension() {
        assertEquals(256, Gemm.alignment(0x7f0000000000L, 5376 * 2));
        assertEquals(4, Gemm.alignment(0x7f0000000004L, 4096 * 4));
        assertEquals(2, Gemm.alignment(0x7f0000000000L, 33 * 2));
        assertEquals(16, Gemm.alignment(0x7f0000000010L, 8192 * 4));
        assertEquals(256, Gemm.alignment(0, 1 << 20));
    }

    @Test
    void cublasLtSearchPath() {
        List<Path> path = CublasLtLibrary.searchPath(Map.of("CUDA_HOME", "/opt/cuda", "LD_LIBRARY_PATH",
                "/x/lib::/usr/local/cuda/lib64"));
        assertEquals(List.of(Path.of("/opt/cuda/lib64"), Path.of("/usr/local/cuda/lib64"),
                Path.of("/usr/local/cuda-13.0/targets/x86_64-linux/lib"),
                Path.of("/usr/local/cuda/targets/x86_64-linux/lib"), Path.of("/x/lib")), path);
        assertEquals(Path.of("/usr/local/cuda/lib64"), CublasLtLibrary.searchPath(Map.of()).get(0));
    }

    @Test
    void sm90KernelsFitTheSharedMemoryOfAnSmAndKeysFromValuesIsNoAlternative() {
        for (TritonAttention.Sm90Kernel k : TritonAttention.SM90_KERNELS) {
            assertTrue(k.sharedBytes() <= 227 * 1024, k + ": " + k.sharedBytes());
        }
        // K from V (KD): Q 128 x 256 bf16, 3 stages of (K's derived 48 x 64 block + V's 48 x 256 + the other half's
        // 48 x 64 block), the score exchange 2 x 2 x 64 x 48 fp32, 12 + 16 mbarriers, 1 KB of alignment slack.
        TritonAttention.Sm90Kernel kd = TritonAttention.SM90_KERNELS.stream()
                .filter(k -> k.name().equals(TritonAttention.SM90_EXTEND_HD512_KEYS_FROM_VALUES)).findFirst().orElseThrow();
        assertTrue(kd.keysFromValues() && kd.split() && kd.stages() == 3);
        assertEquals(1024 + 128 * 256 * 2 + 3 * (48 * 64 * 2 + 48 * 256 * 2 + 48 * 64 * 2) + 2 * 2 * 64 * 48 * 4
                + 8 * 4 * 3 + 8 * 16, kd.sharedBytes());
        // A layer that stores K never runs a kernel that derives it, whatever alternative a test or timing picks.
        assertTrue(TritonAttention.SM90_SUFFIXES.stream().noneMatch(x -> x.endsWith(TritonAttention.KEYS_FROM_VALUES_SUFFIX)),
                TritonAttention.SM90_SUFFIXES::toString);
        assertEquals(1, TritonAttention.SM90_KERNELS.stream().filter(TritonAttention.Sm90Kernel::keysFromValues).count());
    }

    @Test
    void attentionVariantsFitTheSharedMemoryOfAnSm() {
        int hopper = 227 * 1024;
        for (int bucket : new int[] {64, 256, 512}) {
            TritonAttention.Variant e = TritonAttention.extendVariant(bucket);
            assertTrue(e.sharedBytes() <= hopper, e + ": " + e.sharedBytes());
            assertEquals(bucket, e.headDimBucket());
            for (int rows : new int[] {1, 16, 17, 32, 33, 64, 200}) {
                TritonAttention.Variant d = TritonAttention.decodeVariant(bucket, rows);
                assertTrue(d.sharedBytes() <= hopper, d + ": " + d.sharedBytes());
                assertTrue(d.rows() >= Math.min(rows, 64), d + " for " + rows + " rows");
            }
        }
        assertEquals(213248, TritonAttention.extendVariant(512).sharedBytes(), "attention_general.cu Config::SMEM");
        assertEquals(64, TritonAttention.headDimBucket(16));
        assertEquals(256, TritonAttention.headDimBucket(128));
        assertEquals(512, TritonAttention.headDimBucket(512));
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> TritonAttention.headDimBucket(520));
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> TritonAttention.headDimBucket(36));
    }

    @Test
    void decodeSplitsFillTheGpuInWholeWaves() {
        // Batch 32 x 16 kv heads on 132 SMs x 2 blocks: already two full waves, no split.
        assertEquals(1, TritonAttention.chooseSplits(512, 1024, 264));
        // Batch 32 x 4 kv heads, one block per SM: 128 of 132 slots busy, no split.
        assertEquals(1, TritonAttention.chooseSplits(128, 1024, 132));
        // One sequence x 4 kv heads at 32k: 33 splits fill the 132 SMs exactly.
        assertEquals(33, TritonAttention.chooseSplits(4, 1024, 132));
        // Short contexts cap the splits: 256 keys = 8 tiles, at least 4 tiles per split.
        assertEquals(2, TritonAttention.chooseSplits(4, 8, 132));
        assertEquals(1, TritonAttention.chooseSplits(4, 7, 132));
    }
}
