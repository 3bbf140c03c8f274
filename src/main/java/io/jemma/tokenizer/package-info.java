/**
 * Text to token ids and back for Gemma checkpoints, following Hugging Face {@code tokenizers}
 * semantics so that ids match the reference implementation exactly.
 *
 * <ul>
 *   <li>{@link io.jemma.tokenizer.Tokenizer}: loads tokenizer.json (BPE with byte fallback,
 *       added tokens, normalizers, pre-tokenizers, decoders) and tokenizer_config.json.
 *   <li>{@link io.jemma.tokenizer.IncrementalDetokenizer}: streaming decode of generated ids.
 *   <li>{@link io.jemma.tokenizer.ChatTemplate}: renders the checkpoint's Jinja chat template as
 *       transformers does.
 * </ul>
 *
 * <p>Plain Java: nothing here depends on Quarkus.
 */
package io.jemma.tokenizer;
