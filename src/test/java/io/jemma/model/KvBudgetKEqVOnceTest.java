package io.jemma.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.jemma.attention.KvGeometry;
import io.jemma.model.config.BundledConfigs;
import io.jemma.model.config.LayerSpec;
import io.jemma.model.config.TextConfig;
import org.junit.jupiter.api.Test;

/**
 * K stored once (jemma.kv-store-k-eq-v-once): the k_eq_v layers (31B's and 26B-A4B's full layers) cost V only, so
 * the full pool's bytes per token halve and a byte budget buys twice the full-attention pages; sliding layers and
 * models without k_eq_v layers are unchanged.
 */
class KvBudgetKEqVOnceTest {

    @Test
    void kEqVLayersCostValuesOnly() {
        TextConfig c31 = BundledConfigs.load("gemma-4-31b");
        // 10 full layers x 4 KV heads x 512 x bf16: 80 KiB of K and V per token, 40 KiB of V.
        assertEquals(10 * 4 * 512 * 2 * 2, new KvBudget(c31, 2).fullBytesPerToken());
        assertEquals(10 * 4 * 512 * 2, new KvBudget(c31, 2, true).fullBytesPerToken());
        assertEquals(new KvBudget(c31, 2).slidingBytesPerToken(), new KvBudget(c31, 2, true).slidingBytesPerToken());
        long budget = 40L << 30;
        KvGeometry both = new KvBudget(c31, 2).forBytes(budget, 8, 16, 256);
        KvGeometry once = new KvBudget(c31, 2, true).forBytes(budget, 8, 16, 256);
        assertEquals(both.slidingPages(), once.slidingPages());
        assertEquals(2 * both.fullPages(), once.fullPages(), 1);

        TextConfig e4b = BundledConfigs.load("gemma-4-e4b");
        assertEquals(false, e4b.layers().stream().anyMatch(LayerSpec::kEqV));
        assertEquals(new KvBudget(e4b, 2).fullBytesPerToken(), new KvBudget(e4b, 2, true).fullBytesPerToken());
    }
}
