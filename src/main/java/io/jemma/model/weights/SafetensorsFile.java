package io.jemma.model.weights;

import io.jemma.backend.DType;
import io.jemma.backend.HostTensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * One safetensors file, memory-mapped read-only. Layout: an unsigned 64-bit little-endian header length
 * {@code n}, {@code n} bytes of JSON ({@code name -> {dtype, shape, data_offsets}} plus an optional
 * {@code __metadata__}), then the data region that the offsets are relative to.
 *
 * <p>Tensors are {@link HostTensor} slices of the mapping: no weight is copied onto the Java heap, and the
 * operating system pages the file in as the tensors are read. They stay valid until {@link #close()},
 * which unmaps the file; reading one afterwards throws {@link IllegalStateException}. The mapping belongs
 * to a shared arena, so tensors may be read from any thread.
 */
public final class SafetensorsFile implements AutoCloseable {

    /**
     * Real headers are a few hundred kilobytes (one short JSON entry per tensor); a length beyond this is
     * corruption, and refusing it keeps a flipped bit from asking for a gigabyte of heap.
     */
    public static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;

    private static final ValueLayout.OfLong LONG_LE =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT_LE =
            ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final Arena arena;
    private final MemorySegment mapping;
    private final long dataStart;
    private final SafetensorsHeader header;

    private SafetensorsFile(Path path, Arena arena, MemorySegment mapping, long dataStart, SafetensorsHeader header) {
        this.path = path;
        this.arena = arena;
        this.mapping = mapping;
        this.dataStart = dataStart;
        this.header = header;
    }

    /** Maps {@code path} and validates its header and every tensor entry. */
    public static SafetensorsFile open(Path path) {
        String file = path.toString();
        long size;
        try {
            size = Files.size(path);
        } catch (IOException e) {
            throw new CheckpointException(file + ": cannot read: " + e, e);
        }
        if (size < Long.BYTES) {
            throw new CheckpointException(file + ": truncated: " + size + " bytes, too short for the header length");
        }
        Arena arena = Arena.ofShared();
        try {
            MemorySegment mapping;
            try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
                mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            }
            long headerLength = mapping.get(LONG_LE, 0); // unsigned on disk: "negative" means >= 2^63
            if (headerLength < 0 || headerLength > MAX_HEADER_BYTES) {
                throw new CheckpointException(file + ": header length " + Long.toUnsignedString(headerLength)
                        + " is beyond the sane bound of " + MAX_HEADER_BYTES + " bytes (corrupt file?)");
            }
            if (headerLength > size - Long.BYTES) {
                throw new CheckpointException(file + ": header length " + headerLength + " is beyond the file size "
                        + size + " (truncated file?)");
            }
            byte[] json = mapping.asSlice(Long.BYTES, headerLength).toArray(ValueLayout.JAVA_BYTE);
            long dataStart = Long.BYTES + headerLength;
            SafetensorsHeader header = SafetensorsHeader.parse(json, size - dataStart, file);
            return new SafetensorsFile(path, arena, mapping, dataStart, header);
        } catch (IOException e) {
            arena.close();
            throw new CheckpointException(file + ": cannot map: " + e, e);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    public Path path() {
        return path;
    }

    /** Size of the whole file in bytes. */
    public long fileSize() {
        return mapping.byteSize();
    }

    /** The {@code __metadata__} strings (empty when the header has none). */
    public Map<String, String> metadata() {
        return header.metadata();
    }

    /** Tensor names in header order. */
    public Set<String> names() {
        return header.tensors().keySet();
    }

    /** The header entry of {@code name}, without touching the data. */
    public Optional<TensorInfo> info(String name) {
        return Optional.ofNullable(header.tensors().get(name));
    }

    public Optional<HostTensor> find(String name) {
        return info(name).map(this::slice);
    }

    /** The tensor {@code name}; a {@link CheckpointException} naming this file when it has none. */
    public HostTensor tensor(String name) {
        return find(name).orElseThrow(() -> new CheckpointException(path + ": tensor '" + name + "' is missing"));
    }

    private HostTensor slice(TensorInfo info) {
        DType dtype = info.dtype();
        return new HostTensor(info.name(), dtype, info.shape(),
                mapping.asSlice(dataStart + info.dataBegin(), info.byteSize()));
    }

    /** Whether the file holds an integer tensor (I64/I32) of this name. */
    public boolean hasIntegers(String name) {
        return header.integers().containsKey(name);
    }

    /** The integer tensor {@code name} (I64 or I32), flattened, when the file has one. */
    public Optional<long[]> integers(String name) {
        IntegerTensorInfo info = header.integers().get(name);
        if (info == null) {
            return Optional.empty();
        }
        long n = info.numel();
        if (n > Integer.MAX_VALUE - 8) {
            throw new CheckpointException(path + ": integer tensor '" + name + "' is too large to read whole");
        }
        long[] out = new long[(int) n];
        MemorySegment data = mapping.asSlice(dataStart + info.dataBegin(), info.dataEnd() - info.dataBegin());
        for (int i = 0; i < out.length; i++) {
            out[i] = info.bytesPerElement() == 8 ? data.get(LONG_LE, 8L * i) : data.get(INT_LE, 4L * i);
        }
        return Optional.of(out);
    }

    /** Unmaps the file; tensors handed out before become unreadable. Idempotent. */
    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "SafetensorsFile[" + path + ", " + header.tensors().size() + " tensors]";
    }
}
