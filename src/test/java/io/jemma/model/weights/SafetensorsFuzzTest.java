package io.jemma.model.weights;

import io.jemma.backend.DType;
import io.jemma.backend.HostTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Seeded random corruption of the header (and of the length field in front of it): opening the result may
 * succeed or throw CheckpointException, and nothing else, and a file that opens has readable tensors.
 */
class SafetensorsFuzzTest {

    private static final int MUTATIONS = 2_000;
    private static final String PUNCTUATION = "{}[]\",:-. e";

    @TempDir
    Path dir;

    @Test
    void mutatedHeadersOnlyEverYieldCheckpointException() throws IOException {
        Path original = dir.resolve("original.safetensors");
        new SafetensorsWriter()
                .metadata("format", "pt")
                .add("model.embed_tokens.weight", DType.BF16, new long[] {4, 3}, new float[12])
                .add("model.layers.0.self_attn.q_norm.weight", DType.F32, new long[] {3}, new float[] {1, 2, 3})
                .add("model.layers.0.layer_scalar", DType.F16, new long[] {1}, new float[] {0.5f})
                .add("model.norm.weight", DType.BF16, new long[] {}, new float[] {2})
                .write(original);
        byte[] bytes = Files.readAllBytes(original);
        int headerEnd = 8 + (int) ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        Path mutated = dir.resolve("mutated.safetensors");
        int opened = 0;
        for (int seed = 0; seed < MUTATIONS; seed++) {
            Random random = new Random(seed);
            byte[] m = mutate(bytes, headerEnd, random);
            Files.write(mutated, m);
            try (SafetensorsFile f = SafetensorsFile.open(mutated)) {
                opened++;
                for (String name : f.names()) {
                    HostTensor t = f.tensor(name);
                    for (long i = 0; i < Math.min(t.numel(), 64); i++) {
                        t.getFloat(i);
                    }
                }
            } catch (CheckpointException expected) {
                assertNotNull(expected.getMessage());
            } catch (Throwable other) {
                fail("seed " + seed + " threw " + other + " for header "
                        + new String(m, 8, Math.max(0, Math.min(m.length, headerEnd + 8) - 8), StandardCharsets.UTF_8),
                        other);
            }
        }
        // Some mutations (in padding, in names, in metadata) leave a valid file: the loop tested both paths.
        if (opened == 0 || opened == MUTATIONS) {
            fail("expected a mix of valid and invalid mutations, got " + opened + " valid");
        }
    }

    private static byte[] mutate(byte[] original, int headerEnd, Random random) {
        byte[] m = original.clone();
        int rounds = 1 + random.nextInt(3);
        for (int r = 0; r < rounds; r++) {
            if (m.length < 8) {
                break; // truncated into the length field: nothing left to mutate
            }
            int kind = random.nextInt(8);
            int at = random.nextInt(Math.min(headerEnd, m.length));
            switch (kind) {
                case 0 -> m[at] = (byte) random.nextInt(256);                          // any byte
                case 1 -> m[at] = (byte) "0123456789".charAt(random.nextInt(10));      // another digit
                case 2 -> m[at] = (byte) PUNCTUATION.charAt(random.nextInt(PUNCTUATION.length()));
                case 3 -> m = splice(m, at, 1, new byte[0]);                            // delete a byte
                case 4 -> m = splice(m, at, 0, new byte[] {(byte) "9-\",{[".charAt(random.nextInt(6))}); // insert
                case 5 -> {                                                              // a random length field
                    long length = switch (random.nextInt(3)) {
                        case 0 -> random.nextLong();
                        case 1 -> random.nextInt(m.length + 16);
                        default -> headerEnd - 8 + random.nextInt(9) - 4;
                    };
                    ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN).putLong(0, length);
                }
                case 6 -> m = Arrays.copyOf(m, random.nextInt(m.length + 1));           // truncate anywhere
                default -> {                                                             // a huge number
                    int digits = 1 + random.nextInt(25);
                    byte[] big = new byte[digits];
                    Arrays.fill(big, (byte) '9');
                    m = splice(m, Math.max(8, at), 0, big);
                }
            }
        }
        return m;
    }

    private static byte[] splice(byte[] b, int at, int remove, byte[] insert) {
        at = Math.min(at, b.length);
        remove = Math.min(remove, b.length - at);
        byte[] out = new byte[b.length - remove + insert.length];
        System.arraycopy(b, 0, out, 0, at);
        System.arraycopy(insert, 0, out, at, insert.length);
        System.arraycopy(b, at + remove, out, at + insert.length, b.length - at - remove);
        return out;
    }

    @Test
    void mutatedIndexesOnlyEverYieldCheckpointException() throws IOException {
        Map<String, String> weightMap = new LinkedHashMap<>();
        for (int s = 1; s <= 2; s++) {
            String file = "model-0000" + s + "-of-00002.safetensors";
            new SafetensorsWriter().add("w" + s, DType.F32, new long[] {2}, new float[] {s, s}).write(dir.resolve(file));
            weightMap.put("w" + s, file);
        }
        SafetensorsWriter.writeIndex(dir.resolve(Checkpoint.INDEX_FILE), weightMap, 16);
        byte[] index = Files.readAllBytes(dir.resolve(Checkpoint.INDEX_FILE));
        for (int seed = 0; seed < 500; seed++) {
            Random random = new Random(seed);
            byte[] m = index.clone();
            for (int r = 0; r < 1 + random.nextInt(3); r++) {
                int at = random.nextInt(m.length);
                if (random.nextBoolean()) {
                    m[at] = (byte) random.nextInt(256);
                } else {
                    m = splice(m, at, 1, new byte[0]);
                }
            }
            Files.write(dir.resolve(Checkpoint.INDEX_FILE), m);
            try (Checkpoint c = Checkpoint.open(dir)) {
                for (String name : c.names()) {
                    c.tensor(name).toFloatArray();
                }
            } catch (CheckpointException expected) {
                assertNotNull(expected.getMessage());
            } catch (Throwable other) {
                fail("seed " + seed + " threw " + other + " for index " + new String(m, StandardCharsets.UTF_8), other);
            }
        }
    }
}
