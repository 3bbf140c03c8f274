package io.jemma.bench;

import io.jemma.tokenizer.SyntheticTokenizers;
import io.jemma.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Encoding throughput with a 262,144-piece Gemma-style vocabulary on one thread.
 *
 * <p>Each operation encodes exactly 1,000,000 bytes, so the reported ops/s are MB/s.
 *
 * <p>No real Gemma vocabulary can be downloaded here, so setup builds a synthetic one: BPE
 * merges trained on generated English-like text (U+2581 word pieces, 256 byte pieces, byte
 * fallback, Gemma's normalizer and decoder), padded to 262,144 pieces with CJK/Hangul pieces and
 * merges, as a multilingual vocabulary has. The tokenizer.json is cached under target/bench.
 *
 * <p>Run: {@code ./mvnw -B -q -Pbench test-compile exec:exec -Dbench=TokenizerBenchmark}
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(1)
@Warmup(iterations = 3, time = 3)
@Measurement(iterations = 5, time = 3)
public class TokenizerBenchmark {

  static final int VOCAB_SIZE = 262_144;
  static final int ENGLISH_PIECES = 80_000;
  static final int TEXT_BYTES = 1_000_000;

  private Tokenizer tokenizer;
  private String english;
  private String rareWords;

  @Setup
  public void setUp() throws IOException {
    List<String> lexicon = SyntheticTokenizers.lexicon(120_000, 2024);
    Path cached = Path.of("target", "bench", "synthetic-gemma-" + VOCAB_SIZE + ".json");
    if (!Files.exists(cached)) {
      String corpus = SyntheticTokenizers.englishLikeText(lexicon, 8_000_000, 1);
      String json = SyntheticTokenizers.gemmaStyleTokenizerJson(corpus, VOCAB_SIZE, ENGLISH_PIECES);
      Files.createDirectories(cached.getParent());
      Files.writeString(cached, json);
    }
    tokenizer = Tokenizer.fromJson(Files.readString(cached), null);
    if (tokenizer.vocabSize() != VOCAB_SIZE) {
      throw new IllegalStateException("vocabulary has " + tokenizer.vocabSize() + " pieces");
    }
    english = SyntheticTokenizers.englishLikeText(lexicon, TEXT_BYTES, 7); // other sentences than the training text
    rareWords = randomWords(TEXT_BYTES, 8);
    check(english);
    check(rareWords);
  }

  /** Text of invented words that are never repeated: every word misses the cache and is merged from characters. */
  private static String randomWords(int bytes, long seed) {
    Random random = new Random(seed);
    StringBuilder text = new StringBuilder(bytes + 16);
    while (text.length() < bytes) {
      int length = 2 + random.nextInt(10);
      for (int i = 0; i < length; i++) {
        text.append((char) ('a' + random.nextInt(26)));
      }
      text.append(' ');
    }
    text.setLength(bytes);
    return text.toString();
  }

  private void check(String text) {
    if (text.getBytes(StandardCharsets.UTF_8).length != TEXT_BYTES || !tokenizer.decode(tokenizer.encode(text)).equals(text)) {
      throw new IllegalStateException("benchmark text does not round-trip");
    }
  }

  /** English-like prose: words repeat, as in real text, so most are served from the word cache. */
  @Benchmark
  public int[] encodeEnglish() {
    return tokenizer.encode(english);
  }

  /** A worst case: random letter strings, every one merged from scratch. */
  @Benchmark
  public int[] encodeRandomWords() {
    return tokenizer.encode(rareWords);
  }
}
