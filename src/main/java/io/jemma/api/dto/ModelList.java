package io.jemma.api.dto;

import java.util.List;

/** {@code GET /v1/models}: {@code {"object": "list", "data": [...]}}. */
public record ModelList(String object, List<ModelInfo> data) {

    public static ModelList of(List<ModelInfo> models) {
        return new ModelList("list", models);
    }
}
