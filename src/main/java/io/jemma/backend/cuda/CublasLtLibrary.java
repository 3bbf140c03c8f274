package io.jemma.backend.cuda;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;

/**
 * Where libcublasLt lives. Searched in order: $CUDA_HOME/lib64, /usr/local/cuda/lib64,
 * /usr/local/cuda-13.0/targets/x86_64-linux/lib (the H200 hosts' layout, which has no lib64 link),
 * /usr/local/cuda/targets/x86_64-linux/lib, each directory of LD_LIBRARY_PATH; else the plain name, left
 * to the dynamic loader's own search (ldconfig cache).
 */
final class CublasLtLibrary {
    /** The soname of cuBLASLt for CUDA 13. */
    static final String SONAME = "libcublasLt.so.13";

    private CublasLtLibrary() {
    }

    /** The directories searched, in order, for the given environment. */
    static List<Path> searchPath(Map<String, String> env) {
        LinkedHashSet<Path> dirs = new LinkedHashSet<>();
        String cudaHome = env.get("CUDA_HOME");
        if (cudaHome != null && !cudaHome.isBlank()) {
            dirs.add(Path.of(cudaHome, "lib64"));
        }
        dirs.add(Path.of("/usr/local/cuda/lib64"));
        dirs.add(Path.of("/usr/local/cuda-13.0/targets/x86_64-linux/lib"));
        dirs.add(Path.of("/usr/local/cuda/targets/x86_64-linux/lib"));
        String ld = env.get("LD_LIBRARY_PATH");
        if (ld != null) {
            for (String d : ld.split(":")) {
                if (!d.isBlank()) {
                    dirs.add(Path.of(d));
                }
            }
        }
        return new ArrayList<>(dirs);
    }

    /** The first {@link #SONAME} file on the search path, or null (then load by name). */
    static Path find(Map<String, String> env) {
        for (Path dir : searchPath(env)) {
            Path candidate = dir.resolve(SONAME);
            if (Files.isRegularFile(candidate)) {
                return candidate;
            }
        }
        return null;
    }
}
