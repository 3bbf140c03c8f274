package io.jemma.engine.sampling;

import java.util.ArrayList;
import java.util.List;

/** The rows of one step's logits to sample, in logits-row order. */
public record SamplingBatch(List<SamplingRow> rows) {

    public SamplingBatch {
        rows = List.copyOf(rows);
    }

    public int size() {
        return rows.size();
    }

    public SamplingRow row(int i) {
        return rows.get(i);
    }

    /** This batch followed by greedy rows up to {@code n} (a CUDA graph bucket's padding rows). */
    public SamplingBatch padded(int n) {
        if (n <= rows.size()) {
            return this;
        }
        List<SamplingRow> all = new ArrayList<>(rows);
        while (all.size() < n) {
            all.add(SamplingRow.greedy());
        }
        return new SamplingBatch(all);
    }

    /** All rows greedy, e.g. a benchmark's or a test's. */
    public static SamplingBatch greedy(int n) {
        return new SamplingBatch(List.of()).padded(n);
    }
}
