package io.jemma.tokenizer;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Applies jinja2's lexical whitespace rules before jinjava parses a template, with the settings
 * transformers uses: universal newlines, {@code keep_trailing_newline=False}, {@code
 * trim_blocks=True}, {@code lstrip_blocks=True}, and the {@code -}/{@code +} markers of tags.
 *
 * <p>jinjava implements these options differently in places (its lstrip also eats spaces before a
 * tag in the middle of a line, and {@code {#- -#}} comments behave differently), so the text
 * between tags is cut here exactly as jinja2's lexer cuts it, comments are dropped, and jinjava
 * receives tags without markers and with its own trimming switched off.
 */
final class JinjaSource {

    private static final Pattern RAW_BEGIN = Pattern.compile("\\{%([-+]?)\\s*raw\\s*(-?)%}");
    private static final Pattern RAW_END = Pattern.compile("\\{%([-+]?)\\s*endraw\\s*([-+]?)%}");

    private final String s;
    private final StringBuilder out;
    private int pos;

    /** As jinja2's lexer: the previous token ended with a newline, or nothing came before. */
    private boolean lineStarting = true;

    private JinjaSource(String source) {
        this.s = source;
        this.out = new StringBuilder(source.length());
    }

    static String prepare(String source) {
        String normalized = source.replace("\r\n", "\n").replace('\r', '\n');
        if (normalized.endsWith("\n")) {
            normalized = normalized.substring(0, normalized.length() - 1);
        }
        JinjaSource lexer = new JinjaSource(normalized);
        lexer.run();
        return lexer.out.toString();
    }

    private void run() {
        while (pos < s.length()) {
            int tag = nextTagStart(pos);
            if (tag < 0) {
                out.append(s, pos, s.length());
                return;
            }
            char kind = s.charAt(tag + 1);
            char sign = markerAt(tag + 2);
            Matcher raw = RAW_BEGIN.matcher(s).region(tag, s.length());
            if (kind == '%' && raw.lookingAt()) {
                out.append(textBefore(s.substring(pos, tag), sign, true));
                rawBlock(raw);
                continue;
            }
            int end = kind == '#' ? commentEnd(tag) : tagEnd(tag, kind);
            if (end < 0) { // unterminated: pass the rest through for jinjava to report
                out.append(s, pos, s.length());
                return;
            }
            out.append(textBefore(s.substring(pos, tag), sign, kind != '{'));
            char endSign = s.charAt(end - 3);
            if (kind != '#') {
                int innerStart = tag + 2 + (sign != 0 ? 1 : 0);
                int innerEnd =
                        end - 2 - (endSign == '-' || (endSign == '+' && kind == '%') ? 1 : 0);
                out.append(kind == '{' ? "{{" : "{%");
                appendExpression(innerStart, Math.max(innerStart, innerEnd));
                out.append(kind == '{' ? "}}" : "%}");
            }
            pos = end;
            afterTag(endSign, kind != '{');
        }
    }

    /** {% raw %}...{% endraw %}: the content is text, with the same whitespace rules at its edges. */
    private void rawBlock(Matcher begin) {
        pos = begin.end();
        lineStarting = false;
        if (!begin.group(2).isEmpty()) {
            afterTag('-', true);
        }
        Matcher end = RAW_END.matcher(s).region(pos, s.length());
        if (!end.find()) {
            out.append("{% raw %}").append(s, pos, s.length());
            pos = s.length();
            return;
        }
        char sign = end.group(1).isEmpty() ? 0 : end.group(1).charAt(0);
        out.append("{% raw %}")
                .append(textBefore(s.substring(pos, end.start()), sign, true))
                .append("{% endraw %}");
        pos = end.end();
        afterTag(end.group(2).isEmpty() ? '%' : end.group(2).charAt(0), true);
    }

    /**
     * Copies an expression, separating doubled braces outside strings: jinjava's scanner ends a tag
     * at the first "}}" even inside a nested dict literal, which jinja2 does not.
     */
    private void appendExpression(int from, int to) {
        for (int i = from; i < to; i++) {
            char c = s.charAt(i);
            if (c == '\'' || c == '"') {
                int close = stringEnd(i);
                int stop = close < 0 || close >= to ? to - 1 : close;
                out.append(s, i, stop + 1);
                i = stop;
                continue;
            }
            out.append(c);
            if ((c == '}' || c == '{') && i + 1 < to && s.charAt(i + 1) == c) {
                out.append(' ');
            }
        }
    }

    /**
     * The text before a tag: all trailing whitespace goes before a '-' tag, the line's indentation
     * before a block or comment (lstrip_blocks).
     */
    private String textBefore(String text, char sign, boolean blockOrComment) {
        if (sign == '-') {
            int end = text.length();
            while (end > 0 && PythonStringMethods.isPythonSpace(text.charAt(end - 1))) {
                end--;
            }
            return text.substring(0, end);
        }
        if (sign == '+' || !blockOrComment) {
            return text;
        }
        int lineStart = text.lastIndexOf('\n') + 1;
        if ((lineStart > 0 || lineStarting)
                && lineStart < text.length()
                && allSpace(text, lineStart)) {
            return text.substring(0, lineStart);
        }
        return text;
    }

    /** What follows a tag's end: '-' swallows whitespace, a block or comment swallows one newline (trim_blocks) unless '+'. */
    private void afterTag(char endSign, boolean blockOrComment) {
        int start = pos;
        if (endSign == '-') {
            while (pos < s.length() && PythonStringMethods.isPythonSpace(s.charAt(pos))) {
                pos++;
            }
        } else if (blockOrComment && endSign != '+' && pos < s.length() && s.charAt(pos) == '\n') {
            pos++;
        }
        lineStarting = pos > start && s.charAt(pos - 1) == '\n';
    }

    private char markerAt(int i) {
        return i < s.length() && (s.charAt(i) == '-' || s.charAt(i) == '+') ? s.charAt(i) : 0;
    }

    private static boolean allSpace(String text, int from) {
        for (int i = from; i < text.length(); i++) {
            if (!PythonStringMethods.isPythonSpace(text.charAt(i))) {
                return false;
            }
        }
        return true;
    }

    private int nextTagStart(int from) {
        for (int i = s.indexOf('{', from);
                i >= 0 && i + 1 < s.length();
                i = s.indexOf('{', i + 1)) {
            char c = s.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') {
                return i;
            }
        }
        return -1;
    }

    private int commentEnd(int tag) {
        int close = s.indexOf("#}", tag + 2);
        return close < 0 ? -1 : close + 2;
    }

    /**
     * The index after the closing delimiter of a {@code {{ }}} or {@code {% %}} tag, or -1. Strings
     * are skipped and brackets must balance, as jinja2's lexer requires.
     */
    private int tagEnd(int tag, char kind) {
        char closer = kind == '{' ? '}' : '%';
        int depth = 0;
        for (int i = tag + 2; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\'' || c == '"') {
                i = stringEnd(i);
                if (i < 0) {
                    return -1;
                }
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (depth > 0 && (c == ')' || c == ']' || c == '}')) {
                depth--;
            } else if (depth == 0 && c == closer && i + 1 < s.length() && s.charAt(i + 1) == '}') {
                return i + 2;
            }
        }
        return -1;
    }

    private int stringEnd(int open) {
        char quote = s.charAt(open);
        for (int i = open + 1; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\') {
                i++;
            } else if (c == quote) {
                return i;
            }
        }
        return -1;
    }
}
