package io.jemma.model.config;

/** The RoPE variants Gemma 4 uses ({@code rope_type} in {@code rope_parameters}). */
public enum RopeType {
    /** Every frequency pair of the head rotates: the original RoPE. Sliding layers. */
    DEFAULT("default"),
    /** Only the first {@code partial_rotary_factor} of the pairs rotate; the rest get frequency 0. Full layers. */
    PROPORTIONAL("proportional");

    private final String configName;

    RopeType(String configName) {
        this.configName = configName;
    }

    public String configName() {
        return configName;
    }

    public static RopeType fromConfigName(String name) {
        for (RopeType t : values()) {
            if (t.configName.equals(name)) {
                return t;
            }
        }
        throw new ConfigException("unknown rope_type \"" + name + "\" (supported: default, proportional)");
    }
}
