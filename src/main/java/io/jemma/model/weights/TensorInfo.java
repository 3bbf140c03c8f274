package io.jemma.model.weights;

import io.jemma.backend.DType;

import java.util.Arrays;

/**
 * One entry of a safetensors header, validated: the byte range lies inside the data region and holds
 * exactly {@code numel(shape) * dtype.bytes()} bytes.
 *
 * @param name      the tensor's name in the checkpoint
 * @param dtype     element type
 * @param shape     dimensions, outermost first (a copy is kept and handed out)
 * @param dataBegin first byte, relative to the start of the data region (the byte after the header)
 * @param dataEnd   one past the last byte, relative to the same origin
 */
public record TensorInfo(String name, DType dtype, long[] shape, long dataBegin, long dataEnd) {

    public TensorInfo {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public long byteSize() {
        return dataEnd - dataBegin;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t && name.equals(t.name) && dtype == t.dtype && Arrays.equals(shape, t.shape)
                && dataBegin == t.dataBegin && dataEnd == t.dataEnd;
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return name + " " + dtype + " " + Arrays.toString(shape) + " [" + dataBegin + ", " + dataEnd + ")";
    }
}
