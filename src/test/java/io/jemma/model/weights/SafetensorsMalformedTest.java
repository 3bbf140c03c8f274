package io.jemma.model.weights;

import io.jemma.backend.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every way a checkpoint can be broken ends in a CheckpointException that names the file and the tensor. */
class SafetensorsMalformedTest {

    @TempDir
    Path dir;

    private static CheckpointException fails(Supplier<?> action, String... mentions) {
        CheckpointException e = assertThrows(CheckpointException.class, action::get);
        for (String m : mentions) {
            assertTrue(e.getMessage().contains(m), () -> "message \"" + e.getMessage() + "\" should mention " + m);
        }
        return e;
    }

    private Path raw(String name, String header, int dataBytes) throws IOException {
        return RawSafetensors.write(dir.resolve(name), header, dataBytes);
    }

    private static String entry(String name, String dtype, String shape, long begin, long end) {
        return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" + begin + ","
                + end + "]}";
    }

    // ---- tensors a valid file lacks or has in another form

    @Test
    void missingTensor() {
        new SafetensorsWriter().add("present", DType.F32, new long[] {1}, new float[] {1})
                .write(dir.resolve(Checkpoint.SINGLE_FILE));
        try (Checkpoint c = Checkpoint.open(dir)) {
            fails(() -> c.tensor("model.layers.0.mlp.up_proj.weight"), Checkpoint.SINGLE_FILE,
                    "model.layers.0.mlp.up_proj.weight", "missing");
        }
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(Checkpoint.SINGLE_FILE))) {
            fails(() -> f.tensor("absent"), Checkpoint.SINGLE_FILE, "absent", "missing");
        }
    }

    @Test
    void wrongShapeOrDtype() {
        new SafetensorsWriter().add("w", DType.BF16, new long[] {2, 3}, new float[6])
                .write(dir.resolve(Checkpoint.SINGLE_FILE));
        try (Checkpoint c = Checkpoint.open(dir)) {
            fails(() -> c.tensor("w", 3, 2), Checkpoint.SINGLE_FILE, "'w'", "[2, 3]", "expected [3, 2]");
            fails(() -> c.tensor("w", 2, 3, 1), Checkpoint.SINGLE_FILE, "'w'", "expected [2, 3, 1]");
            fails(() -> c.tensor("w", DType.F32, 2, 3), Checkpoint.SINGLE_FILE, "'w'", "BF16", "expected F32");
        }
    }

    // ---- the header length

    @Test
    void headerLengthBeyondTheFile() throws IOException {
        Path f = RawSafetensors.write(dir.resolve("long.safetensors"), 5000, "{}".getBytes(StandardCharsets.UTF_8),
                new byte[0]);
        fails(() -> SafetensorsFile.open(f), "long.safetensors", "5000", "beyond the file size");
    }

    @ParameterizedTest
    @ValueSource(longs = {SafetensorsFile.MAX_HEADER_BYTES + 1, Long.MAX_VALUE, -1L, Long.MIN_VALUE})
    void headerLengthBeyondTheSaneBound(long declared) throws IOException {
        Path f = RawSafetensors.write(dir.resolve("huge.safetensors"), declared, "{}".getBytes(StandardCharsets.UTF_8),
                new byte[0]);
        fails(() -> SafetensorsFile.open(f), "huge.safetensors", Long.toUnsignedString(declared), "sane bound");
    }

    @Test
    void fileShorterThanTheLengthField() throws IOException {
        Path f = Files.write(dir.resolve("tiny.safetensors"), new byte[] {1, 2, 3});
        fails(() -> SafetensorsFile.open(f), "tiny.safetensors", "truncated");
        Path empty = Files.write(dir.resolve("empty.safetensors"), new byte[0]);
        fails(() -> SafetensorsFile.open(empty), "empty.safetensors", "truncated");
    }

    // ---- the JSON

    @Test
    void headerNotJson() throws IOException {
        Path f = raw("garbled.safetensors", "{\"w\":{\"dtype\":", 0);
        fails(() -> SafetensorsFile.open(f), "garbled.safetensors", "not valid JSON");
        Path trailing = raw("trailing.safetensors", "{} x", 0);
        fails(() -> SafetensorsFile.open(trailing), "trailing.safetensors", "not valid JSON");
        Path bad = RawSafetensors.write(dir.resolve("utf8.safetensors"), 4,
                new byte[] {'{', '"', (byte) 0xC3, '"'}, new byte[0]);
        fails(() -> SafetensorsFile.open(bad), "utf8.safetensors", "not valid JSON");
        Path dup = raw("dup.safetensors", "{" + entry("w", "F32", "[1]", 0, 4) + "," + entry("w", "F32", "[1]", 0, 4)
                + "}", 4);
        fails(() -> SafetensorsFile.open(dup), "dup.safetensors", "not valid JSON", "w");
    }

    @Test
    void emptyHeader() throws IOException {
        Path f = raw("nothing.safetensors", "", 0);
        fails(() -> SafetensorsFile.open(f), "nothing.safetensors", "empty");
        Path blank = raw("blank.safetensors", "        ", 0);
        fails(() -> SafetensorsFile.open(blank), "blank.safetensors", "empty");
    }

    @ParameterizedTest
    @ValueSource(strings = {"[1,2]", "\"text\"", "42", "null", "true"})
    void headerNotAnObject(String json) throws IOException {
        Path f = raw("notobject.safetensors", json, 0);
        fails(() -> SafetensorsFile.open(f), "notobject.safetensors", "not a JSON object");
    }

    @Test
    void entryNotAnObjectOrMissingFields() throws IOException {
        Path a = raw("a.safetensors", "{\"w\":[1,2]}", 0);
        fails(() -> SafetensorsFile.open(a), "a.safetensors", "'w'", "not a JSON object");
        Path b = raw("b.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
        fails(() -> SafetensorsFile.open(b), "b.safetensors", "'w'", "dtype");
        Path c = raw("c.safetensors", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4);
        fails(() -> SafetensorsFile.open(c), "c.safetensors", "'w'", "shape");
        Path d = raw("d.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4);
        fails(() -> SafetensorsFile.open(d), "d.safetensors", "'w'", "data_offsets");
        Path e = raw("e.safetensors", "{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
        fails(() -> SafetensorsFile.open(e), "e.safetensors", "'w'", "dtype");
    }

    @Test
    void metadataMustBeStrings() throws IOException {
        Path a = raw("meta.safetensors", "{\"__metadata__\":{\"format\":1}}", 0);
        fails(() -> SafetensorsFile.open(a), "meta.safetensors", "__metadata__", "format");
        Path b = raw("meta2.safetensors", "{\"__metadata__\":[\"pt\"]}", 0);
        fails(() -> SafetensorsFile.open(b), "meta2.safetensors", "__metadata__");
    }

    @ParameterizedTest
    @ValueSource(strings = {"I8", "U8", "F8_E4M3", "F8_E5M2", "F64", "BOOL", "bf16", "i64", ""})
    void unsupportedDtype(String dtype) throws IOException {
        Path f = raw("quant.safetensors", "{" + entry("layers.0.w", dtype, "[4]", 0, 4) + "}", 4);
        fails(() -> SafetensorsFile.open(f), "quant.safetensors", "'layers.0.w'", "unsupported dtype", "\"" + dtype + "\"");
    }

    @Test
    void integerTensorsAreIndexTablesNotWeights() throws IOException {
        // I64 [3] = 5, -1, 2^40 then I32 [2] = 7, -3, little-endian.
        java.nio.ByteBuffer data = java.nio.ByteBuffer.allocate(32).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        data.putLong(5).putLong(-1).putLong(1L << 40).putInt(7).putInt(-3);
        byte[] header = ("{" + entry("order", "I64", "[3]", 0, 24) + "," + entry("small", "I32", "[2]", 24, 32) + "}")
                .getBytes(StandardCharsets.UTF_8);
        Path f = RawSafetensors.write(dir.resolve("ints.safetensors"), header.length, header, data.array());
        try (SafetensorsFile file = SafetensorsFile.open(f)) {
            org.junit.jupiter.api.Assertions.assertArrayEquals(new long[] {5, -1, 1L << 40},
                    file.integers("order").orElseThrow());
            org.junit.jupiter.api.Assertions.assertArrayEquals(new long[] {7, -3}, file.integers("small").orElseThrow());
            fails(() -> file.tensor("order"), "ints.safetensors", "'order'", "missing");
            org.junit.jupiter.api.Assertions.assertTrue(file.names().isEmpty(), "no weights in the file");
        }
        Path bad = raw("badints.safetensors", "{" + entry("order", "I64", "[3]", 0, 12) + "}", 12);
        fails(() -> SafetensorsFile.open(bad), "badints.safetensors", "'order'", "I64", "needs 24");
    }

    // ---- shapes and offsets

    @ParameterizedTest
    @ValueSource(strings = {"[-1]", "[1.5]", "[\"2\"]", "[null]", "[18446744073709551616]", "{}", "7"})
    void shapeNotNonNegativeIntegers(String shape) throws IOException {
        Path f = raw("shape.safetensors", "{" + entry("w", "F32", shape, 0, 4) + "}", 4);
        fails(() -> SafetensorsFile.open(f), "shape.safetensors", "'w'", "shape");
    }

    @Test
    void shapeOverflowingLong() throws IOException {
        Path f = raw("overflow.safetensors", "{" + entry("w", "F32", "[4294967296,4294967296]", 0, 0) + "}", 0);
        fails(() -> SafetensorsFile.open(f), "overflow.safetensors", "'w'", "overflows");
        Path g = raw("overflow2.safetensors", "{" + entry("w", "BF16", "[4611686018427387904]", 0, 0) + "}", 0);
        fails(() -> SafetensorsFile.open(g), "overflow2.safetensors", "'w'", "overflows");
    }

    @Test
    void offsetsOutsideTheDataRegion() throws IOException {
        Path f = raw("outside.safetensors", "{" + entry("w", "F32", "[2]", 4, 12) + "}", 8);
        fails(() -> SafetensorsFile.open(f), "outside.safetensors", "'w'", "beyond the data region");
        Path g = raw("far.safetensors", "{" + entry("w", "F32", "[0]", Long.MAX_VALUE, Long.MAX_VALUE) + "}", 8);
        fails(() -> SafetensorsFile.open(g), "far.safetensors", "'w'", "beyond the data region");
    }

    @Test
    void offsetsBackwards() throws IOException {
        Path f = raw("backwards.safetensors", "{" + entry("w", "F32", "[1]", 8, 4) + "}", 8);
        fails(() -> SafetensorsFile.open(f), "backwards.safetensors", "'w'", "begin after end");
    }

    @ParameterizedTest
    @ValueSource(strings = {"[0]", "[0,4,8]", "[-4,0]", "[0,4.0]", "\"0,4\""})
    void offsetsMalformed(String offsets) throws IOException {
        Path f = raw("offsets.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":" + offsets + "}}", 8);
        fails(() -> SafetensorsFile.open(f), "offsets.safetensors", "'w'", "data_offsets");
    }

    @Test
    void sizeNotMatchingShapeTimesDtype() throws IOException {
        Path f = raw("size.safetensors", "{" + entry("w", "BF16", "[3]", 0, 8) + "}", 8);
        fails(() -> SafetensorsFile.open(f), "size.safetensors", "'w'", "hold 8 bytes", "needs 6");
    }

    @Test
    void overlappingTensorsAreAllowed() throws IOException {
        Path f = raw("overlap.safetensors", "{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[1]", 4, 8)
                + "}", 8);
        try (SafetensorsFile file = SafetensorsFile.open(f)) {
            assertTrue(file.names().containsAll(java.util.List.of("a", "b")));
        }
    }

    @Test
    void truncatedFile() throws IOException {
        Path f = dir.resolve("cut.safetensors");
        new SafetensorsWriter()
                .add("first", DType.F32, new long[] {4}, new float[4])
                .add("second", DType.F32, new long[] {4}, new float[4])
                .write(f);
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.WRITE)) {
            ch.truncate(ch.size() - 3);
        }
        fails(() -> SafetensorsFile.open(f), "cut.safetensors", "'second'", "truncated");
    }

    // ---- directories and indexes

    @Test
    void noWeightsInTheDirectory() throws IOException {
        fails(() -> Checkpoint.open(dir), dir.toString(), "no model.safetensors");
        new SafetensorsWriter().write(dir.resolve("a.safetensors"));
        new SafetensorsWriter().write(dir.resolve("b.safetensors"));
        fails(() -> Checkpoint.open(dir), dir.toString(), "a.safetensors", "b.safetensors");
        fails(() -> Checkpoint.open(dir.resolve("nowhere")), "nowhere", "no such model directory");
    }

    @Test
    void shardNamedByTheIndexDoesNotExist() {
        new SafetensorsWriter().add("a", DType.F32, new long[] {1}, new float[1]).write(dir.resolve("s1.safetensors"));
        SafetensorsWriter.writeIndex(dir.resolve(Checkpoint.INDEX_FILE),
                Map.of("a", "s1.safetensors", "layers.9.w", "s2.safetensors"), 8);
        fails(() -> Checkpoint.open(dir), "s2.safetensors", "'layers.9.w'", "does not exist", Checkpoint.INDEX_FILE);
    }

    @Test
    void tensorNamedByTheIndexMissingFromItsShard() {
        new SafetensorsWriter().add("a", DType.F32, new long[] {1}, new float[1]).write(dir.resolve("s1.safetensors"));
        SafetensorsWriter.writeIndex(dir.resolve(Checkpoint.INDEX_FILE),
                Map.of("a", "s1.safetensors", "lost", "s1.safetensors"), 8);
        fails(() -> Checkpoint.open(dir), "s1.safetensors", "'lost'", "missing from this shard");
    }

    @Test
    void missingTensorOfAShardedCheckpointNamesTheIndex() {
        new SafetensorsWriter().add("a", DType.F32, new long[] {1}, new float[1]).write(dir.resolve("s1.safetensors"));
        SafetensorsWriter.writeIndex(dir.resolve(Checkpoint.INDEX_FILE), Map.of("a", "s1.safetensors"), 4);
        try (Checkpoint c = Checkpoint.open(dir)) {
            fails(() -> c.tensor("b"), Checkpoint.INDEX_FILE, "'b'", "missing");
        }
    }

    @Test
    void brokenShardNamesTheShard() throws IOException {
        raw("s1.safetensors", "{" + entry("a", "I8", "[1]", 0, 1) + "}", 1);
        SafetensorsWriter.writeIndex(dir.resolve(Checkpoint.INDEX_FILE), Map.of("a", "s1.safetensors"), 1);
        fails(() -> Checkpoint.open(dir), "s1.safetensors", "'a'", "unsupported dtype");
    }

    @ParameterizedTest
    @ValueSource(strings = {"{", "[]", "{\"metadata\":{}}", "{\"weight_map\":[]}", "{\"weight_map\":{}}",
            "{\"weight_map\":{\"w\":3}}", "{\"weight_map\":{\"w\":\"\"}}", "{\"weight_map\":{\"w\":\"../x.safetensors\"}}",
            "{\"weight_map\":{\"w\":\"/etc/passwd\"}}", "{\"weight_map\":{\"w\":\".\"}}"})
    void malformedIndex(String json) throws IOException {
        Files.writeString(dir.resolve(Checkpoint.INDEX_FILE), json);
        CheckpointException e = fails(() -> Checkpoint.open(dir), Checkpoint.INDEX_FILE);
        if (json.contains("\"w\"")) {
            assertTrue(e.getMessage().contains("'w'"), e.getMessage());
        }
    }
}
