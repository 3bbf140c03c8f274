package io.jemma.model.weights;

import io.jemma.backend.DType;
import io.jemma.backend.HostTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafetensorsRoundTripTest {

    @TempDir
    Path dir;

    /** Values chosen to be exact in bf16 and f16 as well, so that every dtype returns them unchanged. */
    private static final float[] SIX = {1f, -2f, 0.5f, 3.25f, -0.125f, 1024f};

    @Test
    void writesAndReadsEveryDtype() {
        Path file = dir.resolve("model.safetensors");
        new SafetensorsWriter()
                .add("a.f32", DType.F32, new long[] {2, 3}, SIX)
                .add("b.bf16", DType.BF16, new long[] {3, 2}, SIX)
                .add("c.f16", DType.F16, new long[] {6}, SIX)
                .metadata("format", "pt")
                .write(file);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(Set.of("a.f32", "b.bf16", "c.f16"), f.names());
            assertEquals(Map.of("format", "pt"), f.metadata());
            check(f.tensor("a.f32"), DType.F32, new long[] {2, 3});
            check(f.tensor("b.bf16"), DType.BF16, new long[] {3, 2});
            check(f.tensor("c.f16"), DType.F16, new long[] {6});
        }
    }

    private static void check(HostTensor t, DType dtype, long[] shape) {
        assertEquals(dtype, t.dtype());
        assertArrayEquals(shape, t.shape());
        assertArrayEquals(SIX, t.toFloatArray());
        assertEquals(SIX.length * (long) dtype.bytes(), t.data().byteSize());
        assertTrue(t.data().isReadOnly(), "weights are mapped read-only");
    }

    @Test
    void convertsToBf16AndF16WithRoundToNearestEven() {
        float[] values = {1.00390625f, 1.01171875f, (float) Math.PI, 65504f * 2, 1e-8f};
        Path file = dir.resolve("x.safetensors");
        new SafetensorsWriter()
                .add("bf", DType.BF16, new long[] {5}, values)
                .add("h", DType.F16, new long[] {5}, values)
                .write(file);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            float[] bf = f.tensor("bf").toFloatArray();
            float[] h = f.tensor("h").toFloatArray();
            for (int i = 0; i < values.length; i++) {
                assertEquals(DType.BF16.round(values[i]), bf[i]);
                assertEquals(DType.F16.round(values[i]), h[i]);
            }
        }
        // 1 + 2^-8 is halfway between two bf16 values and rounds to the even one, 1.0.
        assertEquals(1.0f, DType.BF16.round(1.00390625f));
    }

    @Test
    void layoutMatchesTheReferenceWriter() throws IOException {
        Path file = dir.resolve("layout.safetensors");
        new SafetensorsWriter()
                .add("z.half", DType.BF16, new long[] {3}, new float[] {1, 2, 3})
                .add("a.half", DType.F16, new long[] {1}, new float[] {1})
                .add("m.full", DType.F32, new long[] {2}, new float[] {1, 2})
                .write(file);
        byte[] bytes = Files.readAllBytes(file);
        long headerLength = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, headerLength % 8, "header padded so that the data region is 8-aligned");
        byte last = bytes[(int) (8 + headerLength - 1)];
        assertTrue(last == ' ' || last == '}', "padding is spaces");
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            // Largest elements first, then by name; packed without gaps.
            assertEquals(0, f.info("m.full").orElseThrow().dataBegin());
            assertEquals(8, f.info("a.half").orElseThrow().dataBegin());
            assertEquals(10, f.info("z.half").orElseThrow().dataBegin());
            assertEquals(16, f.info("z.half").orElseThrow().dataEnd());
            assertEquals(8 + headerLength + 16, f.fileSize());
        }
    }

    @Test
    void scalarsEmptyTensorsAndRawBytes() {
        Path file = dir.resolve("odd.safetensors");
        byte[] raw = new byte[8];
        ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).putFloat(1.5f).putFloat(-4f);
        new SafetensorsWriter()
                .add("scalar", DType.F32, new long[] {}, new float[] {7f})
                .add("empty", DType.BF16, new long[] {0, 16}, new float[0])
                .addBytes("raw", DType.F32, new long[] {2}, raw)
                .addFilled("filled", DType.BF16, new long[] {4}, s -> {
                    for (int i = 0; i < 4; i++) {
                        s.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, DType.floatToBf16(i * 10f));
                    }
                })
                .write(file);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(0, f.tensor("scalar").rank());
            assertArrayEquals(new float[] {7f}, f.tensor("scalar").toFloatArray());
            assertEquals(0, f.tensor("empty").numel());
            assertEquals(0, f.tensor("empty").data().byteSize());
            assertArrayEquals(new float[] {1.5f, -4f}, f.tensor("raw").toFloatArray());
            assertArrayEquals(new float[] {0, 10, 20, 30}, f.tensor("filled").toFloatArray());
        }
    }

    @Test
    void writerRefusesInconsistentInput() {
        SafetensorsWriter w = new SafetensorsWriter().add("a", DType.F32, new long[] {1}, new float[] {1});
        assertThrows(IllegalArgumentException.class, () -> w.add("a", DType.F32, new long[] {1}, new float[] {1}));
        assertThrows(IllegalArgumentException.class, () -> w.add("b", DType.F32, new long[] {2}, new float[] {1}));
        assertThrows(IllegalArgumentException.class, () -> w.addBytes("c", DType.BF16, new long[] {2}, new byte[3]));
        assertThrows(IllegalArgumentException.class, () -> w.add("d", DType.F32, new long[] {-1}, new float[0]));
        assertThrows(IllegalArgumentException.class, () -> w.add("__metadata__", DType.F32, new long[] {}, new float[1]));
    }

    @Test
    void checkpointOpensTheSingleFile() {
        new SafetensorsWriter()
                .add("w", DType.BF16, new long[] {2, 3}, SIX)
                .add("n", DType.F32, new long[] {3}, new float[] {1, 2, 3})
                .write(dir.resolve(Checkpoint.SINGLE_FILE));
        List<long[]> progress = new ArrayList<>();
        try (Checkpoint c = Checkpoint.open(dir, (done, total) -> progress.add(new long[] {done, total}))) {
            assertEquals(Set.of("w", "n"), c.names());
            assertEquals(12 + 12, c.totalBytes());
            assertArrayEquals(SIX, c.tensor("w", 2, 3).toFloatArray());
            assertArrayEquals(new float[] {1, 2, 3}, c.tensor("n", DType.F32, 3).toFloatArray());
            assertTrue(c.find("absent").isEmpty());
            assertEquals(List.of(dir.resolve(Checkpoint.SINGLE_FILE)), c.files());
            assertEquals(dir.resolve(Checkpoint.SINGLE_FILE), c.fileOf("w").orElseThrow());
            assertEquals(2, progress.size());
            assertArrayEquals(new long[] {0, c.fileBytes()}, progress.get(0));
            assertArrayEquals(new long[] {c.fileBytes(), c.fileBytes()}, progress.get(1));
        }
    }

    @Test
    void checkpointOpensTheOnlySafetensorsFileOrAFilePath() {
        Path file = dir.resolve("weights-only.safetensors");
        new SafetensorsWriter().add("w", DType.F16, new long[] {6}, SIX).write(file);
        try (Checkpoint c = Checkpoint.open(dir)) {
            assertArrayEquals(SIX, c.tensor("w").toFloatArray());
        }
        try (Checkpoint c = Checkpoint.open(file)) {
            assertArrayEquals(SIX, c.tensor("w").toFloatArray());
        }
    }

    @Test
    void checkpointOpensShardsThroughTheIndex() {
        Map<String, String> weightMap = new LinkedHashMap<>();
        long total = 0;
        for (int shard = 1; shard <= 3; shard++) {
            String file = "model-0000" + shard + "-of-00003.safetensors";
            SafetensorsWriter w = new SafetensorsWriter();
            for (int t = 0; t < 2; t++) {
                String name = "layers." + shard + ".t" + t;
                float[] values = {shard, t, shard * 10 + t};
                DType dtype = DType.values()[(shard + t) % 3];
                w.add(name, dtype, new long[] {3}, values);
                weightMap.put(name, file);
                total += 3L * dtype.bytes();
            }
            w.write(dir.resolve(file));
        }
        SafetensorsWriter.writeIndex(dir.resolve(Checkpoint.INDEX_FILE), weightMap, total);
        List<long[]> progress = new ArrayList<>();
        try (Checkpoint c = Checkpoint.open(dir, (done, all) -> progress.add(new long[] {done, all}))) {
            assertEquals(List.copyOf(weightMap.keySet()), List.copyOf(c.names()));
            assertEquals(total, c.totalBytes());
            assertEquals(3, c.files().size());
            for (int shard = 1; shard <= 3; shard++) {
                for (int t = 0; t < 2; t++) {
                    String name = "layers." + shard + ".t" + t;
                    assertArrayEquals(new float[] {shard, t, shard * 10 + t}, c.tensor(name, 3).toFloatArray());
                    assertEquals(dir.resolve(weightMap.get(name)), c.fileOf(name).orElseThrow());
                }
            }
            assertEquals(4, progress.size(), "start + one report per shard");
            for (int i = 1; i < progress.size(); i++) {
                assertTrue(progress.get(i)[0] > progress.get(i - 1)[0]);
            }
            assertEquals(c.fileBytes(), progress.getLast()[0]);
            assertEquals(c.fileBytes(), progress.getLast()[1]);
        }
    }

    @Test
    void closingUnmapsTheTensors() {
        new SafetensorsWriter().add("w", DType.F32, new long[] {6}, SIX).write(dir.resolve(Checkpoint.SINGLE_FILE));
        HostTensor t;
        try (Checkpoint c = Checkpoint.open(dir)) {
            t = c.tensor("w");
            assertEquals(1f, t.getFloat(0));
        }
        assertThrows(IllegalStateException.class, () -> t.getFloat(0));
    }
}
