package io.jemma.backend;

/**
 * The absolute position of every token row of a forward batch, as the backend needs it for RoPE and
 * attention masks.
 *
 * @param values one position per row, {@code [tokens]}
 */
public record Positions(int[] values) {
    public Positions {
        values = values.clone();
    }

    public int size() {
        return values.length;
    }

    public int get(int row) {
        return values[row];
    }

    @Override
    public int[] values() {
        return values.clone();
    }
}
