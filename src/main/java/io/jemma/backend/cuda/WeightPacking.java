package io.jemma.backend.cuda;

import io.jemma.backend.DType;
import io.jemma.backend.HostTensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Checkpoint bytes into the device's weight format, one chunk at a time (the upload's pinned buffer):
 * bf16 matrices are copied as they are; f32 and f16 matrices are rounded to bf16 (nearest even, as
 * PyTorch's {@code .to(torch.bfloat16)}); vectors are widened to fp32. Pure Java, so it is tested
 * without a GPU.
 */
final class WeightPacking {
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private WeightPacking() {
    }

    /** Bytes the tensor takes on the device. */
    static long deviceBytes(HostTensor t) {
        return t.numel() * CudaWeight.deviceType(t.rank()).bytes();
    }

    /** A source for {@link Transfers#upload} that produces the device form of {@code t}. */
    static Transfers.Source source(HostTensor t) {
        DType target = CudaWeight.deviceType(t.rank());
        if (t.dtype() == target) {
            return (offset, dst) -> MemorySegment.copy(t.data(), offset, dst, 0, dst.byteSize());
        }
        int size = target.bytes();
        return (offset, dst) -> pack(t, offset / size, dst.byteSize() / size, target, dst);
    }

    /** Elements {@code [first, first + count)} of t, converted to {@code target}, into dst. */
    static void pack(HostTensor t, long first, long count, DType target, MemorySegment dst) {
        for (long i = 0; i < count; i++) {
            float v = t.getFloat(first + i);
            switch (target) {
                case BF16 -> dst.set(SHORT_LE, i * 2, DType.floatToBf16(v));
                case F32 -> dst.set(FLOAT_LE, i * 4, v);
                case F16 -> dst.set(SHORT_LE, i * 2, Float.floatToFloat16(v));
            }
        }
    }
}
