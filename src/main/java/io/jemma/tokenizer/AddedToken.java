package io.jemma.tokenizer;

/**
 * A piece matched whole in the text before BPE runs ({@code added_tokens} in tokenizer.json).
 *
 * @param normalized matched in the normalized text instead of the raw text
 * @param singleWord only matched when not glued to word characters on either side
 * @param lstrip swallows the whitespace before it
 * @param rstrip swallows the whitespace after it
 */
record AddedToken(
    int id,
    String content,
    boolean special,
    boolean singleWord,
    boolean lstrip,
    boolean rstrip,
    boolean normalized) {}
