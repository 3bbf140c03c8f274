package io.jemma.engine;

import java.util.List;

/**
 * Finds stop strings in streamed text across token boundaries. Text that could still turn out to be
 * the start of a stop string is held back; once a stop string appears, the text before it is released
 * and the rest (the stop string included) is dropped.
 */
final class StopStrings {
    private final List<String> stops;
    private final int longest;
    private final StringBuilder pending = new StringBuilder();

    StopStrings(List<String> stops) {
        this.stops = stops.stream().filter(s -> !s.isEmpty()).toList();
        this.longest = this.stops.stream().mapToInt(String::length).max().orElse(0);
    }

    /** Result of feeding text: what may be emitted now, and whether a stop string was found. */
    record Result(String emit, boolean stopped) {
    }

    Result feed(String text) {
        if (stops.isEmpty()) {
            return new Result(text, false);
        }
        pending.append(text);
        int earliest = -1;
        for (String s : stops) {
            int at = pending.indexOf(s);
            if (at >= 0 && (earliest < 0 || at < earliest)) {
                earliest = at;
            }
        }
        if (earliest >= 0) {
            String out = pending.substring(0, earliest);
            pending.setLength(0);
            return new Result(out, true);
        }
        int keep = heldBack();
        String out = pending.substring(0, pending.length() - keep);
        pending.delete(0, pending.length() - keep);
        return new Result(out, false);
    }

    /** What is still held back, released when the sequence ends for another reason. */
    String flush() {
        String out = pending.toString();
        pending.setLength(0);
        return out;
    }

    /** Length of the longest suffix of the pending text that is a proper prefix of some stop string. */
    private int heldBack() {
        int max = Math.min(longest - 1, pending.length());
        for (int n = max; n > 0; n--) {
            String suffix = pending.substring(pending.length() - n);
            for (String s : stops) {
                if (s.startsWith(suffix)) {
                    return n;
                }
            }
        }
        return 0;
    }
}
