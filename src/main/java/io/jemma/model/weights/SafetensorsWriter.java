package io.jemma.model.weights;

import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jemma.backend.DType;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Writes safetensors files: for test fixtures, dummy weights at real shapes, and tools. Tensors are
 * collected first and written in one go, laid out as the reference implementation does (sorted by element
 * size, largest first, then by name; packed without gaps; header padded with spaces to a multiple of 8),
 * so that every tensor starts at a multiple of its element size and Python's {@code safetensors} reads the
 * result too.
 *
 * <p>Content comes from a {@code float[]} (converted to the dtype, rounding to nearest even), from raw
 * little-endian bytes, or from a filler that writes straight into the mapped output file; the last keeps
 * tens of gigabytes of dummy weights off the heap.
 */
public final class SafetensorsWriter {

    private static final JsonMapper MAPPER = new JsonMapper();
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private record Pending(String name, DType dtype, long[] shape, long bytes, Consumer<MemorySegment> filler) { }

    private final Map<String, Pending> tensors = new LinkedHashMap<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    /** Adds a tensor from fp32 values, converted to {@code dtype}. */
    public SafetensorsWriter add(String name, DType dtype, long[] shape, float[] values) {
        long n = numel(name, shape);
        if (values.length != n) {
            throw new IllegalArgumentException("tensor " + name + ": " + values.length + " values for shape "
                    + Arrays.toString(shape));
        }
        float[] copy = values.clone();
        return addFilled(name, dtype, shape, segment -> {
            for (int i = 0; i < copy.length; i++) {
                switch (dtype) {
                    case F32 -> segment.setAtIndex(FLOAT_LE, i, copy[i]);
                    case BF16 -> segment.setAtIndex(SHORT_LE, i, DType.floatToBf16(copy[i]));
                    case F16 -> segment.setAtIndex(SHORT_LE, i, Float.floatToFloat16(copy[i]));
                }
            }
        });
    }

    /** Adds a tensor from raw little-endian bytes of {@code dtype}. */
    public SafetensorsWriter addBytes(String name, DType dtype, long[] shape, byte[] data) {
        long bytes = Math.multiplyExact(numel(name, shape), (long) dtype.bytes());
        if (data.length != bytes) {
            throw new IllegalArgumentException("tensor " + name + ": " + data.length + " bytes for shape "
                    + Arrays.toString(shape) + " of " + dtype + " (expected " + bytes + ")");
        }
        byte[] copy = data.clone();
        return addFilled(name, dtype, shape, segment -> MemorySegment.copy(copy, 0, segment, ValueLayout.JAVA_BYTE, 0,
                copy.length));
    }

    /**
     * Adds a tensor whose bytes {@code filler} writes into the given segment (exactly the tensor's bytes,
     * little-endian, zeroed beforehand) during {@link #write(Path)}.
     */
    public SafetensorsWriter addFilled(String name, DType dtype, long[] shape, Consumer<MemorySegment> filler) {
        if (name.equals(SafetensorsHeader.METADATA_KEY)) {
            throw new IllegalArgumentException(name + " is reserved for metadata");
        }
        if (tensors.containsKey(name)) {
            throw new IllegalArgumentException("tensor " + name + " added twice");
        }
        long bytes = Math.multiplyExact(numel(name, shape), (long) dtype.bytes());
        tensors.put(name, new Pending(name, dtype, shape.clone(), bytes, filler));
        return this;
    }

    /** Names added so far, in insertion order. */
    public Set<String> names() {
        return new LinkedHashSet<>(tensors.keySet());
    }

    /** Writes (or overwrites) {@code file}; returns its size in bytes. */
    public long write(Path file) {
        List<Pending> order = new ArrayList<>(tensors.values());
        order.sort(Comparator.comparingInt((Pending p) -> -p.dtype().bytes()).thenComparing(Pending::name));
        ObjectNode header = MAPPER.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = header.putObject(SafetensorsHeader.METADATA_KEY);
            metadata.forEach(meta::put);
        }
        long[] begins = new long[order.size()];
        long offset = 0;
        for (int i = 0; i < order.size(); i++) {
            Pending p = order.get(i);
            ObjectNode entry = header.putObject(p.name());
            entry.put("dtype", p.dtype().safetensorsName());
            ArrayNode shape = entry.putArray("shape");
            for (long d : p.shape()) {
                shape.add(d);
            }
            begins[i] = offset;
            offset = Math.addExact(offset, p.bytes());
            entry.putArray("data_offsets").add(begins[i]).add(offset);
        }
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        long total = Math.addExact(Long.BYTES + (long) padded, offset);
        try (Arena arena = Arena.ofConfined();
             FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                     StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            MemorySegment out = channel.map(FileChannel.MapMode.READ_WRITE, 0, total, arena);
            out.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, padded);
            MemorySegment.copy(json, 0, out, ValueLayout.JAVA_BYTE, Long.BYTES, json.length);
            out.asSlice(Long.BYTES + json.length, padded - json.length).fill((byte) ' ');
            long dataStart = Long.BYTES + padded;
            for (int i = 0; i < order.size(); i++) {
                Pending p = order.get(i);
                p.filler().accept(out.asSlice(dataStart + begins[i], p.bytes()));
            }
            out.force();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
        return total;
    }

    /**
     * Writes a {@code model.safetensors.index.json}.
     *
     * @param weightMap tensor name -> shard file name (relative to the index's directory)
     * @param totalSize bytes of tensor data over all shards, as transformers records it
     */
    public static void writeIndex(Path indexFile, Map<String, String> weightMap, long totalSize) {
        ObjectNode root = MAPPER.createObjectNode();
        root.putObject("metadata").put("total_size", totalSize);
        ObjectNode map = root.putObject("weight_map");
        weightMap.forEach(map::put);
        try {
            Files.writeString(indexFile, root.toPrettyString());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + indexFile, e);
        }
    }

    private static long numel(String name, long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("tensor " + name + ": negative dimension in "
                        + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }
}
