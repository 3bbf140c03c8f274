package io.jemma.engine;

import io.jemma.attention.SequenceChunk;
import io.jemma.engine.sampling.Sampler;
import io.jemma.model.Gemma4Assistant;
import io.jemma.model.Gemma4Model;
import io.jemma.model.config.AssistantConfig;
import io.jemma.model.config.ConfigException;
import io.jemma.model.weights.Checkpoint;
import io.jemma.speculative.DraftSource;
import io.jemma.speculative.DraftTree;
import io.jemma.speculative.Drafter;
import io.jemma.speculative.SpeculativeLimits;
import io.jemma.speculative.SpeculativeSettings;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The scheduler's speculative rounds (NEXTN with a Gemma 4 assistant): before the step's forward, the running
 * decodes get drafts; the forward verifies each draft as one chunk of the sequence (a chain, or a tree with
 * its mask); the scheduler then walks each draft with the target's logits ({@code Scheduler#verified}) and this
 * class rolls the rejected positions' KV back.
 */
final class SpeculativeDecoding {
    private final Gemma4Model model;
    private final Gemma4Assistant assistant;
    private final DraftSource drafter;
    private final SpeculativeLimits limits;
    private final EngineMetrics metrics;

    SpeculativeDecoding(Gemma4Model model, Gemma4Assistant assistant, SpeculativeLimits limits, EngineMetrics metrics) {
        this(model, assistant, new Drafter(assistant, limits), limits, metrics);
    }

    /** With drafts from another source (tests: drafts that are mostly right). */
    SpeculativeDecoding(Gemma4Model model, Gemma4Assistant assistant, DraftSource drafter, SpeculativeLimits limits,
                        EngineMetrics metrics) {
        this.model = model;
        this.assistant = assistant;
        this.drafter = drafter;
        this.limits = limits;
        this.metrics = metrics;
        // Rolled-back draft positions may have pushed the sliding window past what the next query needs.
        int retained = retainedBehindWindow(limits);
        if (model.kvCache().retainedBehindWindow() < retained) {
            model.kvCache().retainBehindWindow(retained);
        }
    }

    /**
     * Loads the assistant of {@code settings} for the served model: a
     * {@link io.jemma.model.config.ConfigException} or {@link io.jemma.model.weights.CheckpointException} says why it
     * cannot be (not an assistant, not this model's: backbone width, vocabulary, attention geometry; missing weights).
     */
    static SpeculativeDecoding load(SpeculativeSettings settings, Gemma4Model model, EngineMetrics metrics) {
        Path dir = settings.embeddedDraft() ? EmbeddedModel.extractAssistant() : settings.draftModel();
        AssistantConfig config = AssistantConfig.load(dir);
        Gemma4Assistant assistant;
        try {
            assistant = new Gemma4Assistant(config, Checkpoint.open(dir), model);
        } catch (ConfigException e) {
            throw new ConfigException((settings.embeddedDraft() ? EmbeddedModel.ASSISTANT_NAME + " (the embedded "
                    + "model's assistant)" : dir) + ": the assistant does not fit the served model: " + e.getMessage(), e);
        }
        return new SpeculativeDecoding(model, assistant, settings.limits(), metrics);
    }

    Gemma4Assistant assistant() {
        return assistant;
    }

    /**
     * Positions the KV cache must keep behind the sliding window: a verify writes {@code numDraftTokens}
     * positions of which all but one may be rolled back, and the assistant looks two positions further back than
     * the target's next query.
     */
    static int retainedBehindWindow(SpeculativeLimits limits) {
        return limits.numDraftTokens() + Gemma4Assistant.RETAINED_BEHIND_WINDOW - 1;
    }

    SpeculativeLimits limits() {
        return limits;
    }

    /** Rows one request may add to a step (its verify chunk): what its KV reservation must allow for. */
    int rowsPerRequest() {
        return limits.numDraftTokens();
    }

    /**
     * Drafts for the running decodes that can speculate: those with the target's hidden state of their last
     * token and at least two tokens left to generate. The chain is cut to the tokens the request may still emit;
     * a tree that would not fit becomes a chain.
     */
    Map<Sequence, DraftTree> draft(List<Sequence> running) {
        List<Sequence> drafting = new ArrayList<>();
        List<Drafter.Request> requests = new ArrayList<>();
        for (Sequence s : running) {
            int budget = s.request.maxTokens() - s.generated;
            if (s.prefilling() || s.draftHidden == null || s.cancelled || budget < 2) {
                continue;
            }
            // A verify writes positions [cached, cached + rows): within the request's reservation of
            // prompt + max_tokens positions when rows <= budget + 1.
            boolean tree = limits.tree() && limits.numDraftTokens() <= budget + 1;
            int depth = Math.min(limits.numSteps(), budget - 1);
            Sampler sampler = s.sampler.params().greedy() ? null : s.sampler;
            drafting.add(s);
            requests.add(new Drafter.Request(s.id, s.cachedLength(), s.lastToken, s.draftHidden, depth, tree, sampler));
        }
        Map<Sequence, DraftTree> drafts = new IdentityHashMap<>();
        if (requests.isEmpty()) {
            return drafts;
        }
        long start = System.nanoTime();
        List<DraftTree> trees = drafter.draft(requests);
        metrics.speculativeDraft(System.nanoTime() - start);
        for (int i = 0; i < trees.size(); i++) {
            drafts.put(drafting.get(i), trees.get(i));
        }
        return drafts;
    }

    /** The verify chunk of a draft: its rows start at {@code row}, its root at the sequence's cached length. */
    SequenceChunk chunk(Sequence s, DraftTree draft, int row) {
        return new SequenceChunk(s.id, s.cachedLength(), draft.size(), row, draft.isChain() ? null : draft.mask());
    }

    /**
     * After a draft was walked: the KV of the root and the accepted nodes stays, moved to consecutive positions
     * when they came from a tree; the rest is given back.
     *
     * @param start    the root's position (the sequence's cached length before the verify)
     * @param accepted the accepted drafted nodes, root's child first
     */
    void rollBack(Sequence s, DraftTree draft, int start, int[] accepted) {
        int moves = 0;
        for (int j = 0; j < accepted.length; j++) {
            if (accepted[j] != j + 1) {
                moves++;
            }
        }
        if (moves > 0) {
            int[] from = new int[moves];
            int[] to = new int[moves];
            int m = 0;
            for (int j = 0; j < accepted.length; j++) {
                if (accepted[j] != j + 1) {
                    from[m] = start + accepted[j];
                    to[m++] = start + j + 1;
                }
            }
            model.attention().copyKv(model.kvCache(), s.id, from, to);
        }
        model.kvCache().truncate(s.id, start + accepted.length + 1);
        metrics.speculativeRound(accepted.length, draft.maxDepth());
    }

    /** The verify forward's time, once per step that verified drafts. */
    void verified(long forwardNanos) {
        metrics.speculativeVerify(forwardNanos);
    }
}
