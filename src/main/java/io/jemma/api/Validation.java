package io.jemma.api;

import com.fasterxml.jackson.databind.JsonNode;
import io.jemma.api.dto.GenerationFields;
import io.jemma.engine.sampling.Penalties;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Checks the fields chat and completions share and turns them into {@link Settings}. Every refusal is
 * an {@link ApiError} (400) naming the field, so the engine's own checks never see a bad value.
 */
final class Validation {
    private Validation() {
    }

    /**
     * @param maxTokens      max_tokens (or max_completion_tokens) as sent, or null
     * @param maxTokensParam the name of the field it came from
     * @param topLogprobs    -1 for no logprobs, else the alternatives per token (already range-checked)
     * @param vocabSize      for stop_token_ids
     */
    static Settings settings(GenerationFields f, Integer maxTokens, String maxTokensParam, int topLogprobs,
                             int vocabSize) {
        double temperature = orDefault(f.temperature(), 1.0);
        if (!Double.isFinite(temperature) || temperature < 0 || temperature > Limits.MAX_TEMPERATURE) {
            throw ApiError.invalid("temperature", "temperature must be a number between 0 and "
                    + (int) Limits.MAX_TEMPERATURE + " (0 = greedy), got " + f.temperature());
        }
        double topP = orDefault(f.topP(), 1.0);
        if (!(topP > 0 && topP <= 1)) {
            throw ApiError.invalid("top_p", "top_p must be greater than 0 and at most 1, got " + f.topP());
        }
        double minP = orDefault(f.minP(), 0.0);
        if (!(minP >= 0 && minP <= 1)) {
            throw ApiError.invalid("min_p", "min_p must be between 0 and 1, got " + f.minP());
        }
        int topK = f.topK() == null ? -1 : f.topK();
        if (topK == 0 || topK < -1) {
            throw ApiError.invalid("top_k", "top_k must be -1 (no limit) or at least 1, got " + topK);
        }
        double frequency = penalty(f.frequencyPenalty(), "frequency_penalty");
        double presence = penalty(f.presencePenalty(), "presence_penalty");
        double repetition = orDefault(f.repetitionPenalty(), 1.0);
        if (!(repetition > 0 && repetition <= 2)) {
            throw ApiError.invalid("repetition_penalty", "repetition_penalty must be greater than 0 and at most 2, got "
                    + f.repetitionPenalty());
        }
        if (maxTokens != null && maxTokens < 1) {
            throw ApiError.invalid(maxTokensParam, maxTokensParam + " must be at least 1, got " + maxTokens);
        }
        int minTokens = f.minTokens() == null ? 0 : f.minTokens();
        if (minTokens < 0) {
            throw ApiError.invalid("min_tokens", "min_tokens must be at least 0, got " + minTokens);
        }
        if (maxTokens != null && minTokens > maxTokens) {
            throw ApiError.invalid("min_tokens", "min_tokens (" + minTokens + ") must not exceed " + maxTokensParam
                    + " (" + maxTokens + ")");
        }
        int n = f.n() == null ? 1 : f.n();
        if (n < 1 || n > Limits.MAX_CHOICES) {
            throw ApiError.invalid("n", "n must be between 1 and " + Limits.MAX_CHOICES + ", got " + n);
        }
        boolean stream = Boolean.TRUE.equals(f.stream());
        boolean includeUsage = stream && f.streamOptions() != null
                && Boolean.TRUE.equals(f.streamOptions().includeUsage());
        return new Settings(temperature, topK == -1 ? 0 : topK, topP, minP, f.seed(),
                new Penalties(frequency, presence, repetition), maxTokens, maxTokensParam, minTokens,
                Boolean.TRUE.equals(f.ignoreEos()), stops(f.stop()), stopTokenIds(f.stopTokenIds(), vocabSize),
                !Boolean.FALSE.equals(f.skipSpecialTokens()), topLogprobs, n, stream, includeUsage);
    }

    private static double penalty(Double value, String param) {
        double v = orDefault(value, 0.0);
        if (!(v >= -2 && v <= 2)) {
            throw ApiError.invalid(param, param + " must be between -2 and 2, got " + value);
        }
        return v;
    }

    private static double orDefault(Double value, double fallback) {
        return value == null ? fallback : value;
    }

    /** stop: null, a string or a list of strings. */
    static List<String> stops(JsonNode stop) {
        List<String> out = new ArrayList<>();
        if (stop == null || stop.isNull()) {
            return out;
        }
        if (stop.isTextual()) {
            out.add(stop.textValue());
        } else if (stop.isArray()) {
            for (JsonNode s : stop) {
                if (!s.isTextual()) {
                    throw ApiError.wrongType("stop", "stop must be a string or a list of strings");
                }
                out.add(s.textValue());
            }
        } else {
            throw ApiError.wrongType("stop", "stop must be a string or a list of strings");
        }
        if (out.size() > Limits.MAX_STOP_STRINGS) {
            throw ApiError.invalid("stop", "stop may hold at most " + Limits.MAX_STOP_STRINGS + " strings, got "
                    + out.size());
        }
        for (String s : out) {
            if (s.length() > Limits.MAX_STOP_LENGTH) {
                throw ApiError.invalid("stop", "each stop string may have at most " + Limits.MAX_STOP_LENGTH
                        + " characters");
            }
        }
        return out;
    }

    private static Set<Integer> stopTokenIds(List<Integer> ids, int vocabSize) {
        Set<Integer> out = new LinkedHashSet<>();
        if (ids == null) {
            return out;
        }
        if (ids.size() > Limits.MAX_STOP_TOKEN_IDS) {
            throw ApiError.invalid("stop_token_ids", "stop_token_ids may hold at most " + Limits.MAX_STOP_TOKEN_IDS
                    + " ids");
        }
        for (Integer id : ids) {
            if (id == null || id < 0 || id >= vocabSize) {
                throw ApiError.invalid("stop_token_ids", "stop_token_ids must be token ids between 0 and "
                        + (vocabSize - 1) + ", got " + id);
            }
            out.add(id);
        }
        return out;
    }
}
