package io.jemma.model;

import io.jemma.backend.Backend;
import io.jemma.backend.Weight;
import io.jemma.model.config.LayerSpec;
import io.jemma.model.config.TextConfig;
import io.jemma.model.config.WeightNames;

import java.util.ArrayList;
import java.util.List;

/**
 * All weights of a Gemma 4 text decoder, checked against the config's shapes and handed to a backend.
 * The output head is tied to the embedding table.
 */
record Gemma4Weights(
        Weight embedTokens,               // [vocab, hidden]
        Weight lmHead,                    // [vocab, hidden]: embedTokens itself when tied
        Weight finalNorm,                 // [hidden]
        Weight embedTokensPerLayer,       // [pleVocab, layers * pleDim] (PLE only)
        Weight perLayerModelProjection,   // [layers * pleDim, hidden]   (PLE only)
        Weight perLayerProjectionNorm,    // [pleDim]                   (PLE only)
        List<LayerWeights> layers) {

    static Gemma4Weights load(TextConfig config, WeightSource source, Backend backend) {
        var names = new WeightNames(config.tensorPrefix());
        var loader = new Loader(source, backend);
        long hidden = config.hiddenSize();
        Weight embed = loader.get(names.embedTokens(), config.vocabSize(), hidden);
        Weight norm = loader.get(names.finalNorm(), hidden);
        Weight head = config.tieWordEmbeddings() ? embed : loader.get(names.lmHead(), config.vocabSize(), hidden);
        Weight ple = null;
        Weight pleProjection = null;
        Weight pleNorm = null;
        if (config.hasPerLayerEmbeddings()) {
            long pleWidth = (long) config.numHiddenLayers() * config.hiddenSizePerLayerInput();
            ple = loader.get(names.embedTokensPerLayer(), config.vocabSizePerLayerInput(), pleWidth);
            pleProjection = loader.get(names.perLayerModelProjection(), pleWidth, hidden);
            pleNorm = loader.get(names.perLayerProjectionNorm(), config.hiddenSizePerLayerInput());
        }
        List<LayerWeights> layers = new ArrayList<>();
        for (LayerSpec spec : config.layers()) {
            layers.add(layer(config, spec, names, loader));
        }
        return new Gemma4Weights(embed, head, norm, ple, pleProjection, pleNorm, List.copyOf(layers));
    }

    /** One decoder layer's weights (also an assistant's, whose KV-shared layers have no k/v). */
    static LayerWeights layer(TextConfig config, LayerSpec s, WeightNames names, Loader l) {
        int i = s.index();
        long hidden = config.hiddenSize();
        long qWidth = (long) s.numHeads() * s.headDim();
        long kvWidth = (long) s.numKvHeads() * s.headDim();
        boolean ownsKv = !s.kvShared();
        LayerWeights.Moe moe = null;
        if (s.moe()) {
            long experts = config.numExperts().orElseThrow();
            long inter = config.moeIntermediateSize().orElseThrow();
            moe = new LayerWeights.Moe(
                    l.get(names.routerScale(i), hidden),
                    l.get(names.routerProj(i), experts, hidden),
                    l.get(names.routerPerExpertScale(i), experts),
                    l.get(names.expertsGateUpProj(i), experts, 2 * inter, hidden),
                    l.get(names.expertsDownProj(i), experts, hidden, inter),
                    l.get(names.preFeedforwardLayernorm2(i), hidden),
                    l.get(names.postFeedforwardLayernorm1(i), hidden),
                    l.get(names.postFeedforwardLayernorm2(i), hidden));
        }
        LayerWeights.PerLayerInput ple = null;
        if (config.hasPerLayerEmbeddings()) {
            long d = config.hiddenSizePerLayerInput();
            ple = new LayerWeights.PerLayerInput(
                    l.get(names.perLayerInputGate(i), d, hidden),
                    l.get(names.perLayerProjection(i), hidden, d),
                    l.get(names.postPerLayerInputNorm(i), hidden));
        }
        return new LayerWeights(
                l.get(names.inputLayernorm(i), hidden),
                l.get(names.qProj(i), qWidth, hidden),
                ownsKv ? l.get(names.kProj(i), kvWidth, hidden) : null,
                ownsKv && !s.kEqV() ? l.get(names.vProj(i), kvWidth, hidden) : null,
                l.get(names.qNorm(i), s.headDim()),
                ownsKv ? l.get(names.kNorm(i), s.headDim()) : null,
                l.get(names.oProj(i), hidden, qWidth),
                l.get(names.postAttentionLayernorm(i), hidden),
                l.get(names.preFeedforwardLayernorm(i), hidden),
                l.get(names.gateProj(i), s.mlpWidth(), hidden),
                l.get(names.upProj(i), s.mlpWidth(), hidden),
                l.get(names.downProj(i), hidden, s.mlpWidth()),
                l.get(names.postFeedforwardLayernorm(i), hidden),
                l.layerScalar(names.layerScalar(i)),
                moe,
                ple);
    }

    /** Fetches tensors with their expected shapes (a mismatch names the tensor and file). */
    record Loader(WeightSource source, Backend backend) {
        Weight get(String name, long... shape) {
            return source.load(backend, name, shape);
        }

        /** The per-layer scalar buffer; checkpoints written before it existed default to 1. */
        float layerScalar(String name) {
            return source.layerScalar(name);
        }

        /** An integer index table (I64/I32) of exactly {@code length} entries. */
        long[] integers(String name, long length) {
            return source.integers(name, length);
        }
    }
}
