package io.jemma.model.config;

/** The {@code model_type} values this engine loads, with where each keeps its decoder's tensors. */
public enum ModelType {
    /** A full (multimodal) model: the decoder's settings under {@code text_config}. */
    GEMMA4("gemma4", "model.language_model."),
    /** A text-only model: the decoder's settings at the top level. */
    GEMMA4_TEXT("gemma4_text", "model.");

    private final String configName;
    private final String tensorPrefix;

    ModelType(String configName, String tensorPrefix) {
        this.configName = configName;
        this.tensorPrefix = tensorPrefix;
    }

    public String configName() {
        return configName;
    }

    /** What the decoder's tensor names start with, e.g. {@code model.language_model.layers.0...}. */
    public String tensorPrefix() {
        return tensorPrefix;
    }

    public static ModelType fromConfigName(String name) {
        for (ModelType t : values()) {
            if (t.configName.equals(name)) {
                return t;
            }
        }
        if (AssistantConfig.MODEL_TYPE.equals(name)) {
            throw new ConfigException("model_type gemma4_assistant is a speculative-decoding drafter, not a model to "
                    + "serve: give it as jemma.speculative-draft-model-path next to its target model");
        }
        throw new ConfigException("unknown model_type \"" + name + "\" (supported: gemma4, gemma4_text)");
    }
}
