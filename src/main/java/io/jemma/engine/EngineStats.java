package io.jemma.engine;

/**
 * A snapshot of the engine's state.
 *
 * @param running         sequences being decoded
 * @param queued          requests waiting for admission
 * @param kvPagesInUse    KV pages held, both pools (0 when idle: nothing leaked)
 * @param kvSequences     sequences holding KV reservations
 * @param kvUsage         fraction of full-attention pages in use
 * @param steps           scheduler steps run so far
 */
public record EngineStats(int running, int queued, int kvPagesInUse, int kvSequences, double kvUsage, long steps) {
}
