package io.jemma.bench;

import io.jemma.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class WorkloadsTest {

    private static final Path TINY = Path.of("src/test/resources/golden/tiny-31b");

    @Test
    void randomLengthsStayInTheRange() {
        List<Prompt> prompts = Workloads.random(RandomText.words(), 500, 100, 40, 0.5, new Random(1));
        assertEquals(500, prompts.size());
        Set<Integer> inputs = new HashSet<>();
        for (Prompt p : prompts) {
            assertTrue(p.inputLen() >= 50 && p.inputLen() <= 100, "input " + p.inputLen());
            assertTrue(p.outputLen() >= 20 && p.outputLen() <= 40, "output " + p.outputLen());
            assertEquals(p.inputLen(), RandomText.words().count(p.text()), "one word per token");
            inputs.add(p.inputLen());
        }
        assertTrue(inputs.contains(50) && inputs.contains(100), "both ends of the range are drawn");
    }

    @Test
    void rangeRatioOneGivesExactLengthsAndZeroStartsAtOne() {
        for (Prompt p : Workloads.random(RandomText.words(), 50, 16, 8, 1.0, new Random(3))) {
            assertEquals(16, p.inputLen());
            assertEquals(8, p.outputLen());
        }
        for (Prompt p : Workloads.random(RandomText.words(), 200, 4, 4, 0.0, new Random(3))) {
            assertTrue(p.inputLen() >= 1 && p.outputLen() >= 1);
        }
    }

    @Test
    void theSeedFixesTheWorkload() {
        assertEquals(Workloads.random(RandomText.words(), 20, 64, 16, 0.3, new Random(42)),
                Workloads.random(RandomText.words(), 20, 64, 16, 0.3, new Random(42)));
        assertNotEquals(Workloads.random(RandomText.words(), 20, 64, 16, 0.3, new Random(42)),
                Workloads.random(RandomText.words(), 20, 64, 16, 0.3, new Random(43)));
    }

    @Test
    void tokenizerPromptsAreDecodedRandomTokens() {
        RandomText text = RandomText.of(Tokenizer.load(TINY));
        List<Prompt> prompts = Workloads.random(text, 10, 32, 8, 1.0, new Random(5));
        assertEquals(prompts, Workloads.random(RandomText.of(Tokenizer.load(TINY)), 10, 32, 8, 1.0, new Random(5)));
        for (Prompt p : prompts) {
            assertEquals(32, p.inputLen());
            assertTrue(!p.text().isEmpty());
            // Re-encoding decoded random ids merges some pieces, but it stays close to the drawn length.
            int count = text.count(p.text());
            assertTrue(count >= 8 && count <= 64, "re-encoded " + count);
        }
    }

    @Test
    void sharedPrefixGroupsReallyShareTheirSystemPrompt() {
        var shape = new Workloads.SharedPrefixShape(4, 5, 30, 6, 12);
        List<Prompt> prompts = Workloads.sharedPrefix(RandomText.words(), shape, new Random(9));
        assertEquals(20, prompts.size());
        Map<String, Integer> perPrefix = new HashMap<>();
        Set<String> questions = new HashSet<>();
        for (Prompt p : prompts) {
            int split = p.text().indexOf("\n\n");
            String system = p.text().substring(0, split);
            assertEquals(30, RandomText.words().count(system));
            assertEquals(6, RandomText.words().count(p.text().substring(split + 2)));
            assertEquals(36, p.inputLen());
            assertEquals(12, p.outputLen());
            perPrefix.merge(system, 1, Integer::sum);
            questions.add(p.text().substring(split + 2));
        }
        assertEquals(4, perPrefix.size(), "one system prompt per group");
        perPrefix.values().forEach(n -> assertEquals(5, n, "each shared by the group's prompts"));
        assertEquals(20, questions.size(), "every question is its own");
        assertNotEquals(prompts.subList(0, 5).stream().map(p -> p.text().substring(0, 20)).distinct().count(), 1L,
                "the groups are shuffled together");
        assertEquals(prompts, Workloads.sharedPrefix(RandomText.words(), shape, new Random(9)));
    }

    @Test
    void sharedPrefixWithTheTokenizerCountsTokens() {
        RandomText text = RandomText.of(Tokenizer.load(TINY));
        var shape = new Workloads.SharedPrefixShape(2, 3, 40, 8, 4);
        List<Prompt> prompts = Workloads.sharedPrefix(text, shape, new Random(11));
        Set<String> systems = new HashSet<>();
        for (Prompt p : prompts) {
            systems.add(p.text().substring(0, p.text().indexOf("\n\n")));
            assertEquals(text.count(p.text()), p.inputLen());
        }
        assertEquals(2, systems.size());
    }

    @Test
    void poissonArrivalsHaveTheRateAndTheSeed() {
        double[] at = Arrivals.schedule(4001, 20, new Random(1));
        assertEquals(0, at[0]);
        for (int i = 1; i < at.length; i++) {
            assertTrue(at[i] >= at[i - 1]);
        }
        assertEquals(1.0 / 20, at[4000] / 4000, 0.005, "mean gap 1/rate");
        assertArrayEquals(at, Arrivals.schedule(4001, 20, new Random(1)));
        assertArrayEquals(new double[5], Arrivals.schedule(5, Double.POSITIVE_INFINITY, new Random(1)),
                "inf sends all at once");
    }
}
