package io.jemma.model.weights;

import java.util.Arrays;

/**
 * A header entry of an integer tensor (I64 or I32), validated like {@link TensorInfo}: an index table, such as
 * a Gemma 4 assistant's {@code token_ordering}, read whole with {@link SafetensorsFile#integers}.
 *
 * @param bytesPerElement 8 for I64, 4 for I32
 */
public record IntegerTensorInfo(String name, int bytesPerElement, long[] shape, long dataBegin, long dataEnd) {

    public IntegerTensorInfo {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public long numel() {
        return (dataEnd - dataBegin) / bytesPerElement;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof IntegerTensorInfo t && name.equals(t.name) && bytesPerElement == t.bytesPerElement
                && Arrays.equals(shape, t.shape) && dataBegin == t.dataBegin && dataEnd == t.dataEnd;
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return name + " I" + 8 * bytesPerElement + " " + Arrays.toString(shape);
    }
}
