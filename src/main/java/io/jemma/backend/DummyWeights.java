package io.jemma.backend;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.stream.LongStream;

/**
 * The shared dummy-weight generator (sglang's and vLLM's {@code --load-format dummy}): every element of
 * every tensor is a hash of (seed, tensor name, element index), so the CUDA kernel (dummy.cu), this CPU
 * version and the torch side-by-side script produce the same bits without exchanging files. The spec,
 * bit for bit (all arithmetic on uint32, wrapping):
 * <pre>
 *   fmix32(h):      h ^= h >> 16; h *= 0x85ebca6b; h ^= h >> 13; h *= 0xc2b2ae35; h ^= h >> 16
 *   fnv1a32(bytes): h = 0x811c9dc5; per byte b: h ^= b; h *= 0x01000193
 *   key(name)     = fmix32(seed32 ^ fnv1a32(utf8(name)))        (name: the checkpoint tensor name)
 *   element i:      h = fmix32(key ^ (uint32)(i * 0x9E3779B9))   (i: row-major index, numel < 2^32)
 *                   u = (h >> 8) * 2^-24                          (exact in fp32, in [0, 1))
 *                   x = (2u - 1) * range                          (rank >= 2; one fp32 multiply)
 *                   x = 1.0                                       (rank 1: norms, scalars, scales)
 *   range = fp32(1 / sqrt(last dim)), computed in double and rounded to fp32 once (what torch does with
 *   a Python float scalar times an fp32 tensor); stored rounded to the config's dtype (bf16: nearest even).
 * </pre>
 */
public final class DummyWeights {
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long MAX_NUMEL = 1L << 32;

    private DummyWeights() {
    }

    public static int fmix32(int h) {
        h ^= h >>> 16;
        h *= 0x85ebca6b;
        h ^= h >>> 13;
        h *= 0xc2b2ae35;
        h ^= h >>> 16;
        return h;
    }

    public static int fnv1a32(byte[] bytes) {
        int h = 0x811c9dc5;
        for (byte b : bytes) {
            h ^= b & 0xff;
            h *= 0x01000193;
        }
        return h;
    }

    /** The per-tensor key: {@code fmix32(seed32 ^ fnv1a32(utf8(name)))}. */
    public static int key(long seed, String name) {
        return fmix32((int) seed ^ fnv1a32(name.getBytes(StandardCharsets.UTF_8)));
    }

    /** {@code fp32(1 / sqrt(lastDim))}: the half-width of a rank >= 2 tensor's uniform values. */
    public static float range(long[] shape) {
        return (float) (1.0 / Math.sqrt(shape[shape.length - 1]));
    }

    /** Element {@code index} of a rank >= 2 tensor with this key and range, in fp32 (before the dtype). */
    public static float value(int key, long index, float range) {
        int h = fmix32(key ^ ((int) index * 0x9E3779B9));
        float u = (h >>> 8) * 0x1p-24f;
        return (2f * u - 1f) * range;
    }

    /** Element {@code index} of the named tensor as stored in {@code dtype}, widened back to fp32. */
    public static float element(long seed, String name, long[] shape, long index, DType dtype) {
        if (shape.length <= 1) {
            return 1f;
        }
        return dtype.round(value(key(seed, name), index, range(shape)));
    }

    /**
     * The whole tensor in host memory, in {@code dtype} (the CPU backend computes on it; large tensors are
     * generated on all cores). Not for the CUDA backend, which generates on the device.
     */
    public static HostTensor host(String name, long[] shape, DType dtype, long seed) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        long numel = n;
        check(name, numel);
        MemorySegment data = Arena.ofAuto().allocate(Math.max(1, numel * dtype.bytes()), 64)
                .asSlice(0, numel * dtype.bytes());
        int key = key(seed, name);
        float range = shape.length <= 1 ? 1f : range(shape);
        boolean vector = shape.length <= 1;
        long chunk = 1 << 16;
        LongStream.range(0, (numel + chunk - 1) / chunk).parallel().forEach(c -> {
            long end = Math.min(numel, (c + 1) * chunk);
            for (long i = c * chunk; i < end; i++) {
                float x = vector ? 1f : value(key, i, range);
                switch (dtype) {
                    case BF16 -> data.set(SHORT_LE, i * 2, DType.floatToBf16(x));
                    case F16 -> data.set(SHORT_LE, i * 2, Float.floatToFloat16(x));
                    case F32 -> data.set(FLOAT_LE, i * 4, x);
                }
            }
        });
        return new HostTensor(name, dtype, shape, data);
    }

    /** The spec's index is a uint32: tensors must have fewer than 2^32 elements. */
    public static void check(String name, long numel) {
        if (numel >= MAX_NUMEL) {
            throw new IllegalArgumentException("dummy tensor " + name + " has " + numel
                    + " elements; the generator's index is 32-bit");
        }
    }
}
