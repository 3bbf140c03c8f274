package io.jemma.model.config;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/** Derives {@link LayerSpec}s from the global settings, following transformers' Gemma 4 modules. */
final class LayerDerivation {

    private LayerDerivation() {
    }

    static List<LayerSpec> derive(int numLayers, List<AttentionType> layerTypes, Map<Integer, LayerOverride> overrides,
                                  int headDim, int numHeads, int numKvHeads, boolean attentionKEqV,
                                  int numKvSharedLayers, int slidingWindow, int intermediateSize,
                                  boolean useDoubleWideMlp, Map<AttentionType, RopeSpec> ropes, boolean moe) {
        // Gemma4TextAttention: is_kv_shared_layer = layer_idx >= first_kv_shared_layer_idx >= 0.
        int firstShared = numLayers - numKvSharedLayers;
        List<LayerSpec> layers = new ArrayList<>(numLayers);
        Map<AttentionType, LayerSpec> firstOfType = new EnumMap<>(AttentionType.class);
        for (int i = 0; i < numLayers; i++) {
            AttentionType type = layerTypes.get(i);
            LayerOverride o = overrides.getOrDefault(i, LayerOverride.NONE);
            int dim = o.headDim().orElse(headDim);
            int kvHeads = o.numKeyValueHeads().orElse(numKvHeads);
            String where = "layer " + i + " (" + type.configName() + ")";
            if (dim % 2 != 0) {
                throw new ConfigException(where + ": head dim " + dim + " is odd; RoPE rotates pairs of dimensions");
            }
            if (numHeads % kvHeads != 0) {
                throw new ConfigException(where + ": num_attention_heads " + numHeads
                        + " is not divisible by its " + kvHeads + " key/value heads");
            }
            if ((long) numHeads * dim > Integer.MAX_VALUE) {
                throw new ConfigException(where + ": num_attention_heads * head dim is too large");
            }
            boolean kvShared = i >= firstShared;
            int source = kvShared ? lastOfTypeBefore(layerTypes, type, firstShared, where) : i;
            // Gemma4TextMLP tests layer_idx >= first_kv_shared_layer_idx > 0: with every layer shared (first
            // index 0) the MLP is not widened, though attention is shared. Mirrored as written.
            boolean doubleWide = useDoubleWideMlp && i >= firstShared && firstShared > 0;
            long width = (long) intermediateSize * (doubleWide ? 2 : 1);
            if (width > Integer.MAX_VALUE) {
                throw new ConfigException(where + ": MLP width " + width + " is too large");
            }
            LayerSpec spec = new LayerSpec(i, type, dim, numHeads, kvHeads, attentionKEqV && type == AttentionType.FULL,
                    kvShared, source, type == AttentionType.SLIDING ? slidingWindow : 0, (int) width, ropes.get(type),
                    moe);
            // transformers builds one rotary embedding per layer type from that type's per-layer config and
            // refuses a type whose layers differ; a KV-shared layer must also match the layer it reads from.
            LayerSpec first = firstOfType.putIfAbsent(type, spec);
            if (first != null && (first.headDim() != dim || first.numKvHeads() != kvHeads)) {
                throw new ConfigException(where + ": head dim " + dim + " / " + kvHeads + " KV heads differ from layer "
                        + first.index() + " (" + first.headDim() + " / " + first.numKvHeads()
                        + "); layers of one attention type must share their geometry");
            }
            layers.add(spec);
        }
        return List.copyOf(layers);
    }

    /** The last layer of {@code type} before {@code end}: the one whose KV the shared layers of that type read. */
    private static int lastOfTypeBefore(List<AttentionType> layerTypes, AttentionType type, int end, String where) {
        for (int j = end - 1; j >= 0; j--) {
            if (layerTypes.get(j) == type) {
                return j;
            }
        }
        throw new ConfigException(where + " is KV-shared but no earlier non-shared layer is " + type.configName()
                + " to share KV with");
    }
}
