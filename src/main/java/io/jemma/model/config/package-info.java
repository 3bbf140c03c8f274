/**
 * The Gemma 4 text decoder's configuration, read from {@code config.json} the way transformers 5.17's
 * {@code Gemma4TextConfig} reads it (same defaults, same {@code __post_init__} rules), with the per-layer
 * consequences resolved once into {@link io.jemma.model.config.LayerSpec}s, and the checkpoint tensor names
 * and shapes that follow ({@link io.jemma.model.config.WeightNames}). Pure Java: no Quarkus here.
 */
package io.jemma.model.config;
