package io.jemma.engine.sampling;

/**
 * OpenAI's frequency and presence penalties (subtracted from the logits of tokens already generated,
 * per occurrence and once) and the Hugging Face repetition penalty (logits of tokens in the prompt or
 * the output divided by it when positive, multiplied when negative).
 */
public record Penalties(double frequency, double presence, double repetition) {

    public static final Penalties NONE = new Penalties(0, 0, 1);

    public Penalties {
        if (!(frequency >= -2 && frequency <= 2)) {
            throw new IllegalArgumentException("frequency_penalty must be in [-2, 2], got " + frequency);
        }
        if (!(presence >= -2 && presence <= 2)) {
            throw new IllegalArgumentException("presence_penalty must be in [-2, 2], got " + presence);
        }
        if (!(repetition > 0 && repetition <= 2)) {
            throw new IllegalArgumentException("repetition_penalty must be in (0, 2], got " + repetition);
        }
    }

    public boolean none() {
        return frequency == 0 && presence == 0 && repetition == 1;
    }
}
