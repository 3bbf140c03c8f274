package io.jemma.model.weights;

import io.jemma.backend.DType;
import io.jemma.backend.HostTensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;

/**
 * The weights of a Hugging Face model directory, all files memory-mapped: {@code model.safetensors}, or the
 * shards listed by {@code model.safetensors.index.json}, or the single {@code *.safetensors} file when
 * there is exactly one. Opening validates every header (and, for sharded checkpoints, that every tensor the
 * index names is in its shard), so that a broken download fails at start-up with a message naming the
 * file and the tensor, not halfway through the first request.
 *
 * <p>Tensors are slices of the mappings; they stay readable until {@link #close()}.
 */
public final class Checkpoint implements AutoCloseable {

    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private final Path directory;
    /** How messages name the checkpoint as a whole: the single file, or the index of a sharded one. */
    private final String origin;
    private final List<SafetensorsFile> files;
    /** Tensor name -> the file that holds it, in index (or header) order. */
    private final Map<String, SafetensorsFile> fileOf;

    private Checkpoint(Path directory, String origin, List<SafetensorsFile> files,
                       Map<String, SafetensorsFile> fileOf) {
        this.directory = directory;
        this.origin = origin;
        this.files = List.copyOf(files);
        this.fileOf = Collections.unmodifiableMap(fileOf);
    }

    public static Checkpoint open(Path modelDir) {
        return open(modelDir, LoadProgress.NONE);
    }

    /**
     * Opens a model directory (or a single {@code .safetensors} file), reporting progress in file bytes
     * mapped and checked.
     */
    public static Checkpoint open(Path modelDir, LoadProgress progress) {
        if (Files.isRegularFile(modelDir)) {
            return openFiles(modelDir.toAbsolutePath().getParent(), List.of(modelDir), null, progress);
        }
        if (!Files.isDirectory(modelDir)) {
            throw new CheckpointException(modelDir + ": no such model directory");
        }
        Path single = modelDir.resolve(SINGLE_FILE);
        if (Files.isRegularFile(single)) {
            return openFiles(modelDir, List.of(single), null, progress);
        }
        Path index = modelDir.resolve(INDEX_FILE);
        if (Files.isRegularFile(index)) {
            ShardIndex shards = ShardIndex.read(index);
            return openFiles(modelDir, shards.shardPaths(), shards, progress);
        }
        List<Path> candidates;
        try (Stream<Path> listing = Files.list(modelDir)) {
            candidates = listing.filter(p -> p.getFileName().toString().endsWith(".safetensors"))
                    .filter(Files::isRegularFile).sorted().toList();
        } catch (IOException e) {
            throw new CheckpointException(modelDir + ": cannot list: " + e, e);
        }
        if (candidates.size() == 1) {
            return openFiles(modelDir, candidates, null, progress);
        }
        throw new CheckpointException(modelDir + ": no " + SINGLE_FILE + " and no " + INDEX_FILE + ", and "
                + candidates.size() + " *.safetensors files where exactly one would do " + candidates.stream()
                .map(p -> p.getFileName().toString()).toList());
    }

    private static Checkpoint openFiles(Path directory, List<Path> paths, ShardIndex index, LoadProgress progress) {
        long total = 0;
        for (Path p : paths) {
            if (index != null && !Files.isRegularFile(p)) {
                throw new CheckpointException(p + ": shard does not exist; " + index.path() + " names it for tensor '"
                        + index.firstTensorIn(p) + "'");
            }
            try {
                total = Math.addExact(total, Files.size(p));
            } catch (IOException e) {
                String tensor = index == null ? "" : ", named by " + index.path() + " for tensor '"
                        + index.firstTensorIn(p) + "'";
                throw new CheckpointException(p + ": shard cannot be read (" + e.getClass().getSimpleName() + ")"
                        + tensor, e);
            }
        }
        List<SafetensorsFile> opened = new ArrayList<>();
        try {
            progress.progress(0, total);
            long done = 0;
            Map<Path, SafetensorsFile> byPath = new LinkedHashMap<>();
            for (Path p : paths) {
                SafetensorsFile f = SafetensorsFile.open(p);
                opened.add(f);
                byPath.put(p, f);
                done += f.fileSize();
                progress.progress(done, total);
            }
            Map<String, SafetensorsFile> fileOf = new LinkedHashMap<>();
            if (index == null) {
                for (SafetensorsFile f : opened) {
                    for (String name : f.names()) {
                        SafetensorsFile previous = fileOf.putIfAbsent(name, f);
                        if (previous != null) {
                            throw new CheckpointException(f.path() + ": tensor '" + name + "' is also in "
                                    + previous.path());
                        }
                    }
                }
            } else {
                for (Map.Entry<String, Path> e : index.weightMap().entrySet()) {
                    SafetensorsFile f = byPath.get(e.getValue());
                    if (f.hasIntegers(e.getKey())) {
                        continue; // an index table, read through integers()
                    }
                    if (f.info(e.getKey()).isEmpty()) {
                        throw new CheckpointException(f.path() + ": tensor '" + e.getKey() + "' named by "
                                + index.path() + " is missing from this shard");
                    }
                    fileOf.put(e.getKey(), f);
                }
            }
            String origin = index != null ? index.path().toString() : opened.getFirst().path().toString();
            return new Checkpoint(directory, origin, opened, fileOf);
        } catch (RuntimeException | Error e) {
            opened.forEach(SafetensorsFile::close);
            throw e;
        }
    }

    /** The tensor {@code name}; a {@link CheckpointException} when the checkpoint has none. */
    public HostTensor tensor(String name) {
        SafetensorsFile f = fileOf.get(name);
        if (f == null) {
            throw new CheckpointException(origin + ": tensor '" + name + "' is missing");
        }
        return f.tensor(name);
    }

    /** The tensor {@code name}, which must have exactly {@code expectedShape}. */
    public HostTensor tensor(String name, long... expectedShape) {
        HostTensor t = tensor(name);
        if (!Arrays.equals(t.shape(), expectedShape)) {
            throw new CheckpointException(fileOf.get(name).path() + ": tensor '" + name + "' has shape "
                    + Arrays.toString(t.shape()) + ", expected " + Arrays.toString(expectedShape));
        }
        return t;
    }

    /** The tensor {@code name}, which must have {@code expectedDType} and exactly {@code expectedShape}. */
    public HostTensor tensor(String name, DType expectedDType, long... expectedShape) {
        HostTensor t = tensor(name, expectedShape);
        if (t.dtype() != expectedDType) {
            throw new CheckpointException(fileOf.get(name).path() + ": tensor '" + name + "' has dtype "
                    + t.dtype() + ", expected " + expectedDType);
        }
        return t;
    }

    public Optional<HostTensor> find(String name) {
        SafetensorsFile f = fileOf.get(name);
        return f == null ? Optional.empty() : f.find(name);
    }

    /** An integer tensor (I64 or I32: an index table, not a weight), flattened, when a file holds it. */
    public Optional<long[]> integers(String name) {
        for (SafetensorsFile f : files) {
            if (f.hasIntegers(name)) {
                return f.integers(name);
            }
        }
        return Optional.empty();
    }

    /** The header entry of {@code name} (dtype, shape, offsets) without touching its data. */
    public Optional<TensorInfo> info(String name) {
        SafetensorsFile f = fileOf.get(name);
        return f == null ? Optional.empty() : f.info(name);
    }

    /** The file that holds {@code name}. */
    public Optional<Path> fileOf(String name) {
        return Optional.ofNullable(fileOf.get(name)).map(SafetensorsFile::path);
    }

    /** All tensor names, in index order for sharded checkpoints, header order otherwise. */
    public Set<String> names() {
        return fileOf.keySet();
    }

    /** Bytes of tensor data over all tensors (what a backend will upload or page in). */
    public long totalBytes() {
        long sum = 0;
        for (Map.Entry<String, SafetensorsFile> e : fileOf.entrySet()) {
            sum += e.getValue().info(e.getKey()).orElseThrow().byteSize();
        }
        return sum;
    }

    /** Bytes of all mapped files, headers included. */
    public long fileBytes() {
        return files.stream().mapToLong(SafetensorsFile::fileSize).sum();
    }

    public List<Path> files() {
        return files.stream().map(SafetensorsFile::path).toList();
    }

    public Path directory() {
        return directory;
    }

    /** Unmaps every file; tensors handed out before become unreadable. Idempotent. */
    @Override
    public void close() {
        files.forEach(SafetensorsFile::close);
    }

    @Override
    public String toString() {
        return "Checkpoint[" + origin + ", " + fileOf.size() + " tensors]";
    }
}
