/**
 * Hugging Face checkpoints on disk: {@link io.jemma.model.weights.Checkpoint} memory-maps a model
 * directory's safetensors files (single or sharded) and hands out weights as
 * {@link io.jemma.backend.HostTensor} slices of the mappings, after validating every header so that a broken
 * file fails at start-up with a message naming the file and the tensor.
 * {@link io.jemma.model.weights.SafetensorsWriter} writes such files for tests, tools and dummy weights.
 * Pure Java: no Quarkus here.
 */
package io.jemma.model.weights;
