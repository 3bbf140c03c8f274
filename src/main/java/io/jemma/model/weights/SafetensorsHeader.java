package io.jemma.model.weights;

import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.jemma.backend.DType;

import java.io.IOException;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The parsed and validated JSON header of a safetensors file. Every number is checked before it is used,
 * so that a corrupt or hostile header ends in a {@link CheckpointException}, never in an index exception,
 * an arithmetic overflow or an allocation the size of a made-up number.
 *
 * @param tensors  entries in header order
 * @param metadata the optional {@code __metadata__} map of strings
 * @param integers integer tensors (I64, I32): not weights but index tables, such as the token ordering of a
 *                 Gemma 4 assistant's centroid head; kept apart so that nothing computes with them as floats
 */
record SafetensorsHeader(Map<String, TensorInfo> tensors, Map<String, String> metadata,
                         Map<String, IntegerTensorInfo> integers) {

    static final String METADATA_KEY = "__metadata__";

    /**
     * Duplicate names are refused (the Rust reference reads the header into a map, so one of two
     * duplicates would silently vanish); text after the JSON object is refused like serde_json does;
     * whitespace padding, which writers use to align the data region, is fine.
     */
    private static final JsonMapper MAPPER = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    SafetensorsHeader {
        tensors = Collections.unmodifiableMap(tensors);
        metadata = Collections.unmodifiableMap(metadata);
        integers = Collections.unmodifiableMap(integers);
    }

    /**
     * @param json           the header bytes (UTF-8 JSON)
     * @param dataRegionSize bytes after the header; every tensor must lie inside
     * @param file           how to name the file in messages
     */
    static SafetensorsHeader parse(byte[] json, long dataRegionSize, String file) {
        JsonNode root;
        try {
            root = MAPPER.readTree(json);
        } catch (IOException | RuntimeException e) {
            // Jackson reports syntax errors, bad UTF-8, duplicate keys and its own size limits (nesting
            // depth, number length) as exceptions; all of them mean the same thing here.
            throw new CheckpointException(file + ": header is not valid JSON: " + firstLine(e.getMessage()), e);
        }
        if (root == null || root.isMissingNode()) {
            throw new CheckpointException(file + ": header is empty");
        }
        if (!root.isObject()) {
            throw new CheckpointException(file + ": header is not a JSON object but " + root.getNodeType());
        }
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        Map<String, IntegerTensorInfo> integers = new LinkedHashMap<>();
        Map<String, String> metadata = Map.of();
        for (Map.Entry<String, JsonNode> field : root.properties()) {
            String name = field.getKey();
            if (name.equals(METADATA_KEY)) {
                metadata = parseMetadata(field.getValue(), file);
            } else if (integerBytes(field.getValue()) > 0) {
                TensorInfo raw = parseTensor(name, field.getValue(), dataRegionSize, file);
                integers.put(name, new IntegerTensorInfo(name, integerBytes(field.getValue()), raw.shape(),
                        raw.dataBegin(), raw.dataEnd()));
            } else {
                tensors.put(name, parseTensor(name, field.getValue(), dataRegionSize, file));
            }
        }
        return new SafetensorsHeader(tensors, metadata, integers);
    }

    private static Map<String, String> parseMetadata(JsonNode node, String file) {
        if (node.isNull()) {
            return Map.of();
        }
        if (!node.isObject()) {
            throw new CheckpointException(file + ": " + METADATA_KEY + " is not a JSON object of strings");
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            if (!e.getValue().isTextual()) {
                throw new CheckpointException(file + ": " + METADATA_KEY + " entry '" + e.getKey()
                        + "' is not a string");
            }
            metadata.put(e.getKey(), e.getValue().textValue());
        }
        return metadata;
    }

    private static TensorInfo parseTensor(String name, JsonNode node, long dataRegionSize, String file) {
        String where = file + ": tensor '" + name + "'";
        if (!node.isObject()) {
            throw new CheckpointException(where + ": entry is not a JSON object");
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw new CheckpointException(where + ": missing or non-string \"dtype\"");
        }
        int integerBytes = integerBytes(node);
        DType dtype = integerBytes > 0 ? null : dtype(dtypeNode.textValue(), where);
        long[] shape = nonNegativeLongs(node.get("shape"), "shape", -1, where);
        long[] offsets = nonNegativeLongs(node.get("data_offsets"), "data_offsets", 2, where);
        long begin = offsets[0];
        long end = offsets[1];
        if (begin > end) {
            throw new CheckpointException(where + ": data_offsets [" + begin + ", " + end + "] begin after end");
        }
        if (end > dataRegionSize) {
            throw new CheckpointException(where + ": data_offsets [" + begin + ", " + end
                    + "] end beyond the data region of " + dataRegionSize + " bytes (file truncated?)");
        }
        long expected;
        try {
            long numel = 1;
            for (long d : shape) {
                numel = Math.multiplyExact(numel, d);
            }
            expected = Math.multiplyExact(numel, (long) (integerBytes > 0 ? integerBytes : dtype.bytes()));
        } catch (ArithmeticException e) {
            throw new CheckpointException(where + ": shape " + Arrays.toString(shape) + " overflows a 64-bit size");
        }
        if (end - begin != expected) {
            throw new CheckpointException(where + ": data_offsets [" + begin + ", " + end + "] hold "
                    + (end - begin) + " bytes but shape " + Arrays.toString(shape) + " of "
                    + (dtype == null ? dtypeNode.textValue() : dtype) + " needs "
                    + expected);
        }
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    /** Bytes per element of an integer entry (I64: 8, I32: 4), else 0. */
    private static int integerBytes(JsonNode entry) {
        JsonNode d = entry.isObject() ? entry.get("dtype") : null;
        if (d == null || !d.isTextual()) {
            return 0;
        }
        return switch (d.textValue()) {
            case "I64" -> 8;
            case "I32" -> 4;
            default -> 0;
        };
    }

    private static DType dtype(String text, String where) {
        for (DType d : DType.values()) {
            if (d.safetensorsName().equals(text)) {
                return d;
            }
        }
        // F64, the integer types, BOOL and the 8/6/4-bit float formats are valid safetensors but not
        // something this engine computes with; say so rather than calling the file corrupt.
        throw new CheckpointException(where + ": unsupported dtype \"" + text
                + "\" (supported: BF16, F16, F32; I64 and I32 as index tables)");
    }

    /** A JSON array of integers in [0, Long.MAX_VALUE]; {@code length} -1 for any length. */
    private static long[] nonNegativeLongs(JsonNode node, String key, int length, String where) {
        if (node == null || !node.isArray()) {
            throw new CheckpointException(where + ": missing or non-array \"" + key + "\"");
        }
        if (length >= 0 && node.size() != length) {
            throw new CheckpointException(where + ": \"" + key + "\" has " + node.size() + " values, expected "
                    + length);
        }
        long[] values = new long[node.size()];
        for (int i = 0; i < values.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
                throw new CheckpointException(where + ": \"" + key + "\" value " + abbreviate(v.toString(), 40)
                        + " is not an integer in [0, 2^63)");
            }
            values[i] = v.longValue();
        }
        return values;
    }

    private static String abbreviate(String s, int max) {
        return s.length() <= max ? s : s.substring(0, max) + "...";
    }

    private static String firstLine(String message) {
        if (message == null) {
            return "(no detail)";
        }
        int nl = message.indexOf('\n');
        return abbreviate(nl < 0 ? message : message.substring(0, nl), 200);
    }
}
