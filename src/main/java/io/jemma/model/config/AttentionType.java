package io.jemma.model.config;

/** What a decoder layer attends to: the last {@code sliding_window} positions, or everything before it. */
public enum AttentionType {
    SLIDING("sliding_attention"),
    FULL("full_attention");

    private final String configName;

    AttentionType(String configName) {
        this.configName = configName;
    }

    /** The spelling in {@code layer_types} and as a key of {@code rope_parameters}. */
    public String configName() {
        return configName;
    }

    public static AttentionType fromConfigName(String name) {
        for (AttentionType t : values()) {
            if (t.configName.equals(name)) {
                return t;
            }
        }
        throw new ConfigException("unknown layer type \"" + name + "\" (expected sliding_attention or full_attention)");
    }
}
