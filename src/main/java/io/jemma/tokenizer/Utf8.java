package io.jemma.tokenizer;

/** Strict UTF-8 helpers, matching Rust's {@code String::from_utf8}. */
final class Utf8 {

    private Utf8() {}

    /** The text the bytes spell, or null if they are not valid UTF-8 (overlong forms, surrogates and truncation included). */
    static String decodeStrict(byte[] bytes, int length) {
        StringBuilder out = new StringBuilder(length);
        int i = 0;
        while (i < length) {
            int b0 = bytes[i] & 0xFF;
            int cp;
            int need;
            int min;
            if (b0 < 0x80) {
                out.append((char) b0);
                i++;
                continue;
            } else if (b0 >= 0xC2 && b0 <= 0xDF) {
                cp = b0 & 0x1F;
                need = 1;
                min = 0x80;
            } else if (b0 >= 0xE0 && b0 <= 0xEF) {
                cp = b0 & 0x0F;
                need = 2;
                min = 0x800;
            } else if (b0 >= 0xF0 && b0 <= 0xF4) {
                cp = b0 & 0x07;
                need = 3;
                min = 0x10000;
            } else {
                return null;
            }
            if (i + need >= length) { // truncated sequence
                return null;
            }
            for (int k = 1; k <= need; k++) {
                int b = bytes[i + k] & 0xFF;
                if ((b & 0xC0) != 0x80) {
                    return null;
                }
                cp = (cp << 6) | (b & 0x3F);
            }
            if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                return null;
            }
            out.appendCodePoint(cp);
            i += need + 1;
        }
        return out.toString();
    }

    /** Appends the UTF-8 bytes of one code point to {@code out} (at most 4). */
    static int encode(int cp, byte[] out) {
        if (cp < 0x80) {
            out[0] = (byte) cp;
            return 1;
        }
        if (cp < 0x800) {
            out[0] = (byte) (0xC0 | (cp >> 6));
            out[1] = (byte) (0x80 | (cp & 0x3F));
            return 2;
        }
        if (cp < 0x10000) {
            out[0] = (byte) (0xE0 | (cp >> 12));
            out[1] = (byte) (0x80 | ((cp >> 6) & 0x3F));
            out[2] = (byte) (0x80 | (cp & 0x3F));
            return 3;
        }
        out[0] = (byte) (0xF0 | (cp >> 18));
        out[1] = (byte) (0x80 | ((cp >> 12) & 0x3F));
        out[2] = (byte) (0x80 | ((cp >> 6) & 0x3F));
        out[3] = (byte) (0x80 | (cp & 0x3F));
        return 4;
    }
}
