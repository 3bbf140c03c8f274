package io.jemma.model.config;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;

/**
 * Typed reads of one JSON object of a config file, with defaults for absent keys and messages that name
 * the file and the key. "Absent" means the key is missing; an explicit null is absent only for the fields
 * transformers declares as optional ({@code int | None}), and an error for the others, as transformers'
 * strict dataclass validation would make it.
 */
record JsonFields(JsonNode node, String where) {

    private JsonNode value(String key) {
        JsonNode v = node.get(key);
        return v == null || v.isMissingNode() ? null : v;
    }

    boolean has(String key) {
        return value(key) != null;
    }

    boolean isNull(String key) {
        JsonNode v = value(key);
        return v != null && v.isNull();
    }

    int intOr(String key, int fallback) {
        JsonNode v = value(key);
        return v == null ? fallback : toInt(key, v);
    }

    int requiredInt(String key) {
        JsonNode v = value(key);
        if (v == null) {
            throw new ConfigException(where + ": required field " + key + " is missing");
        }
        return toInt(key, v);
    }

    /** An {@code int | None} field: absent -> fallback, null -> empty. */
    OptionalInt optionalInt(String key, OptionalInt fallback) {
        JsonNode v = value(key);
        if (v == null) {
            return fallback;
        }
        return v.isNull() ? OptionalInt.empty() : OptionalInt.of(toInt(key, v));
    }

    OptionalDouble optionalDouble(String key) {
        JsonNode v = value(key);
        return v == null || v.isNull() ? OptionalDouble.empty() : OptionalDouble.of(toDouble(key, v));
    }

    double doubleOr(String key, double fallback) {
        JsonNode v = value(key);
        return v == null ? fallback : toDouble(key, v);
    }

    boolean boolOr(String key, boolean fallback) {
        JsonNode v = value(key);
        if (v == null) {
            return fallback;
        }
        if (!v.isBoolean()) {
            throw new ConfigException(where + ": " + key + " must be true or false, got " + v);
        }
        return v.booleanValue();
    }

    String stringOr(String key, String fallback) {
        JsonNode v = value(key);
        if (v == null) {
            return fallback;
        }
        if (!v.isTextual()) {
            throw new ConfigException(where + ": " + key + " must be a string, got " + v);
        }
        return v.textValue();
    }

    Optional<String> optionalString(String key) {
        JsonNode v = value(key);
        return v == null || v.isNull() ? Optional.empty() : Optional.of(stringOr(key, null));
    }

    /** An {@code int | list[int] | None} field such as eos_token_id: absent -> fallback, null -> empty. */
    List<Integer> intOrIntList(String key, List<Integer> fallback) {
        JsonNode v = value(key);
        if (v == null) {
            return fallback;
        }
        if (v.isNull()) {
            return List.of();
        }
        if (!v.isArray()) {
            return List.of(toInt(key, v));
        }
        List<Integer> ids = new ArrayList<>();
        for (JsonNode e : v) {
            ids.add(toInt(key, e));
        }
        return List.copyOf(ids);
    }

    int toInt(String key, JsonNode v) {
        if (!v.isIntegralNumber() || !v.canConvertToInt()) {
            throw new ConfigException(where + ": " + key + " must be an integer, got " + v);
        }
        return v.intValue();
    }

    double toDouble(String key, JsonNode v) {
        if (!v.isNumber()) {
            throw new ConfigException(where + ": " + key + " must be a number, got " + v);
        }
        return v.doubleValue();
    }
}
