package io.jemma.tokenizer;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

import java.nio.file.Path;
import java.util.List;

/** Property-based checks (jqwik) of the golden Gemma tokenizer: round trip and streaming decode. */
class TokenizerProperties {
    private static final Tokenizer GOLDEN = Tokenizer.load(Path.of("src/test/resources/golden/tiny-31b"));

    /** Any code point but lone surrogates and U+2581 (the space mark, which decodes to a space by design). */
    @Provide
    Arbitrary<String> unicode() {
        Arbitrary<Integer> cp = Arbitraries.frequencyOf(
                net.jqwik.api.Tuple.of(4, Arbitraries.integers().between(0x20, 0x7E)),
                net.jqwik.api.Tuple.of(1, Arbitraries.integers().between(0, 0x1F)),
                net.jqwik.api.Tuple.of(2, Arbitraries.integers().between(0x80, 0xFFFF)),
                net.jqwik.api.Tuple.of(1, Arbitraries.integers().between(0x10000, 0x10FFFF)))
                .filter(c -> (c < 0xD800 || c > 0xDFFF) && c != 0x2581);
        return cp.list().ofMaxSize(60).map(l -> {
            StringBuilder b = new StringBuilder();
            l.forEach(b::appendCodePoint);
            return b.toString();
        });
    }

    @Property(tries = 2000)
    void encodeThenDecodeGivesTheTextBack(@ForAll("unicode") String text) {
        String back = GOLDEN.decode(GOLDEN.encode(text, false));
        if (!back.equals(text)) {
            throw new AssertionError("round trip of " + Json.quote(text) + " gave " + Json.quote(back));
        }
    }

    @Provide
    Arbitrary<List<Integer>> ids() {
        // Include ids past the vocabulary's end: they have no piece and are skipped by both decoders.
        return Arbitraries.integers().between(0, GOLDEN.vocabSize() + 10).list().ofMaxSize(80);
    }

    @Property(tries = 2000)
    void streamingDecodeEqualsTheFullDecode(@ForAll("ids") List<Integer> ids, @ForAll boolean skipSpecial) {
        IncrementalDetokenizer d = GOLDEN.newDetokenizer(skipSpecial);
        StringBuilder streamed = new StringBuilder();
        for (int id : ids) {
            streamed.append(d.push(id));
        }
        streamed.append(d.flush());
        int[] array = ids.stream().mapToInt(Integer::intValue).toArray();
        String full = GOLDEN.decode(array, skipSpecial);
        if (!streamed.toString().equals(full)) {
            throw new AssertionError(ids + ": streamed " + Json.quote(streamed.toString()) + " but decoded "
                    + Json.quote(full));
        }
    }
}
