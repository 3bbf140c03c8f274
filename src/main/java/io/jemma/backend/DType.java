package io.jemma.backend;

/** Element types of weights as stored in checkpoints. Activations are always fp32 on the CPU. */
public enum DType {
    BF16(2, "BF16"),
    F16(2, "F16"),
    F32(4, "F32");

    private final int bytes;
    private final String safetensorsName;

    DType(int bytes, String safetensorsName) {
        this.bytes = bytes;
        this.safetensorsName = safetensorsName;
    }

    /** Size of one element in bytes. */
    public int bytes() {
        return bytes;
    }

    /** The dtype string safetensors headers use ("BF16", "F16", "F32"). */
    public String safetensorsName() {
        return safetensorsName;
    }

    /** Rounds an fp32 value to this dtype and back, as storing it in this dtype would. */
    public float round(float value) {
        return switch (this) {
            case F32 -> value;
            case F16 -> Float.float16ToFloat(Float.floatToFloat16(value));
            case BF16 -> bf16ToFloat(floatToBf16(value));
        };
    }

    /** fp32 -> bf16 with round-to-nearest-even, as PyTorch does. */
    public static short floatToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int rounding = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }
}
