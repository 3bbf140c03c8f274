package io.jemma.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * The {@code {"String": ...}} or {@code {"Regex": ...}} pattern of Replace and Split components.
 *
 * <p>Hugging Face compiles both with Oniguruma, where {@code \s \w \d} are Unicode-aware; Java needs
 * {@link Pattern#UNICODE_CHARACTER_CLASS} for the same meaning.
 */
sealed interface TextPattern {

    /** A match or the text between two matches; together the spans cover the input in order. */
    record Span(int start, int end, boolean isMatch) {}

    /** Spans covering {@code text}, as Hugging Face's {@code Pattern::find_matches}: empty text gives one empty non-match. */
    List<Span> spans(String text);

    String replaceAll(String text, String replacement);

    static TextPattern literal(String text) {
        // An empty literal matches the empty string everywhere, as the escaped regex does in
        // Hugging Face.
        return text.isEmpty() ? new Regex(Pattern.compile("")) : new Literal(text);
    }

    static TextPattern regex(String regex) {
        try {
            return new Regex(Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS));
        } catch (PatternSyntaxException e) {
            throw new IllegalArgumentException(
                    "invalid regex " + Json.quote(regex) + ": " + e.getDescription(), e);
        }
    }

    record Literal(String text) implements TextPattern {

        @Override
        public List<Span> spans(String input) {
            List<Span> spans = new ArrayList<>();
            if (input.isEmpty()) {
                spans.add(new Span(0, 0, false));
                return spans;
            }
            int previous = 0;
            int at = input.indexOf(text);
            while (at >= 0) {
                if (at > previous) {
                    spans.add(new Span(previous, at, false));
                }
                spans.add(new Span(at, at + text.length(), true));
                previous = at + text.length();
                at = input.indexOf(text, previous);
            }
            if (previous < input.length()) {
                spans.add(new Span(previous, input.length(), false));
            }
            return spans;
        }

        @Override
        public String replaceAll(String input, String replacement) {
            if (text.length() == 1 && replacement.length() == 1) {
                return input.replace(
                        text.charAt(0),
                        replacement.charAt(0)); // the Gemma space -> U+2581 fast path
            }
            return input.replace(text, replacement);
        }
    }

    record Regex(Pattern pattern) implements TextPattern {

        @Override
        public List<Span> spans(String input) {
            List<Span> spans = new ArrayList<>();
            if (input.isEmpty()) {
                spans.add(new Span(0, 0, false));
                return spans;
            }
            int previous = 0;
            Matcher m = pattern.matcher(input);
            while (m.find()) {
                if (m.start() > previous) {
                    spans.add(new Span(previous, m.start(), false));
                }
                spans.add(new Span(m.start(), m.end(), true));
                previous = m.end();
            }
            if (previous < input.length()) {
                spans.add(new Span(previous, input.length(), false));
            }
            return spans;
        }

        @Override
        public String replaceAll(String input, String replacement) {
            return pattern.matcher(input).replaceAll(Matcher.quoteReplacement(replacement));
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Regex r && r.pattern.pattern().equals(pattern.pattern());
        }

        @Override
        public int hashCode() {
            return pattern.pattern().hashCode();
        }
    }
}
