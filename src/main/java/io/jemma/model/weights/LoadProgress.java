package io.jemma.model.weights;

/**
 * Told how far {@link Checkpoint#open(java.nio.file.Path, LoadProgress)} has come, so that a server can log
 * the percentage of a multi-file checkpoint that has been mapped and checked. Called on the opening thread:
 * once with {@code bytesChecked == 0} before the first file, then after each file, the last call having
 * {@code bytesChecked == bytesTotal}.
 */
@FunctionalInterface
public interface LoadProgress {

    LoadProgress NONE = (bytesChecked, bytesTotal) -> { };

    /**
     * @param bytesChecked file bytes mapped and validated so far
     * @param bytesTotal   the size of all files of the checkpoint together
     */
    void progress(long bytesChecked, long bytesTotal);
}
