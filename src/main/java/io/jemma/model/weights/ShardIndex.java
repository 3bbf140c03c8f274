package io.jemma.model.weights;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;

/**
 * {@code model.safetensors.index.json}: {@code {"metadata": {...}, "weight_map": {tensor name: shard file}}}.
 *
 * @param path      the index file
 * @param weightMap tensor name -> shard path (resolved against the index's directory, never outside it)
 */
record ShardIndex(Path path, Map<String, Path> weightMap) {

    private static final JsonMapper MAPPER = new JsonMapper();

    ShardIndex {
        weightMap = Collections.unmodifiableMap(weightMap);
    }

    static ShardIndex read(Path path) {
        JsonNode root;
        try {
            root = MAPPER.readTree(path.toFile());
        } catch (IOException | RuntimeException e) {
            throw new CheckpointException(path + ": not valid JSON: " + e.getMessage(), e);
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject()) {
            throw new CheckpointException(path + ": no \"weight_map\" object");
        }
        Path dir = path.toAbsolutePath().getParent().normalize();
        Map<String, Path> weightMap = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : map.properties()) {
            String tensor = e.getKey();
            if (!e.getValue().isTextual() || e.getValue().textValue().isEmpty()) {
                throw new CheckpointException(path + ": tensor '" + tensor + "' maps to " + e.getValue()
                        + ", not a shard file name");
            }
            Path shard;
            try {
                shard = dir.resolve(e.getValue().textValue()).normalize();
            } catch (RuntimeException bad) { // InvalidPathException: NUL and the like
                throw new CheckpointException(path + ": tensor '" + tensor + "' maps to an invalid file name "
                        + e.getValue());
            }
            // The index is data from the internet: it must not point the server at files outside the model.
            if (!shard.startsWith(dir) || shard.equals(dir)) {
                throw new CheckpointException(path + ": tensor '" + tensor + "' maps to " + e.getValue()
                        + ", outside the model directory");
            }
            weightMap.put(tensor, shard);
        }
        if (weightMap.isEmpty()) {
            throw new CheckpointException(path + ": \"weight_map\" is empty");
        }
        return new ShardIndex(path, weightMap);
    }

    /** The distinct shard files, in order of first mention. */
    List<Path> shardPaths() {
        return new ArrayList<>(new LinkedHashSet<>(weightMap.values()));
    }

    /** A tensor the index places in {@code shard}, for messages. */
    String firstTensorIn(Path shard) {
        return weightMap.entrySet().stream().filter(e -> e.getValue().equals(shard)).map(Map.Entry::getKey)
                .findFirst().orElse("?");
    }
}
