package io.jemma.deploy;

import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.type.LogicalType;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.PersistentVolumeClaim;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.openshift.api.model.monitoring.v1.ServiceMonitor;

import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The Kubernetes manifests under {@code k8s/} as typed fabric8 objects, read strictly: an unknown field
 * (a typo, a field at the wrong level), a duplicate key, a number or boolean where Kubernetes wants a
 * string (and the reverse) fail the read, as the API server would refuse them. fabric8's model keeps
 * unknown fields in {@code additionalProperties} rather than failing, so every object read is walked
 * and any additional property is reported.
 */
final class Manifests {
    static final Path ROOT = findRoot();
    static final Path K8S = ROOT.resolve("k8s");

    /** The kinds the manifests may use, by apiVersion/kind. */
    static final Map<String, Class<? extends HasMetadata>> KINDS = Map.of(
            "v1/ConfigMap", ConfigMap.class,
            "v1/Service", Service.class,
            "v1/PersistentVolumeClaim", PersistentVolumeClaim.class,
            "apps/v1/Deployment", Deployment.class,
            "autoscaling/v2/HorizontalPodAutoscaler", HorizontalPodAutoscaler.class,
            "policy/v1/PodDisruptionBudget", PodDisruptionBudget.class,
            "networking.k8s.io/v1/NetworkPolicy", NetworkPolicy.class,
            "monitoring.coreos.com/v1/ServiceMonitor", ServiceMonitor.class);

    static final ObjectMapper YAML = strict(new ObjectMapper(new YAMLFactory()));
    static final ObjectMapper JSON = strict(JsonMapper.builder().build());

    private Manifests() {
    }

    private static ObjectMapper strict(ObjectMapper mapper) {
        mapper.configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, true);
        mapper.configure(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY, true);
        mapper.configure(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES, true);
        mapper.configure(StreamReadFeature.STRICT_DUPLICATE_DETECTION.mappedFeature(), true);
        // "8080" for an int, 64 or true for a string: Kubernetes refuses both, so must we.
        mapper.configure(MapperFeature.ALLOW_COERCION_OF_SCALARS, false);
        mapper.coercionConfigFor(LogicalType.Textual)
                .setCoercion(CoercionInputShape.Integer, CoercionAction.Fail)
                .setCoercion(CoercionInputShape.Float, CoercionAction.Fail)
                .setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail);
        return mapper;
    }

    /** The repository root: Maven runs tests there; fall back to walking up to the pom. */
    private static Path findRoot() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !(Files.isRegularFile(p.resolve("pom.xml")) && Files.isDirectory(p.resolve("k8s")))) {
            p = p.getParent();
        }
        if (p == null) {
            throw new IllegalStateException("no repository root (pom.xml beside k8s/) above " + Path.of("").toAbsolutePath());
        }
        return p;
    }

    /** A parsed object and where it came from. */
    record Manifest(String source, HasMetadata object) {
        String id() {
            return object.getApiVersion() + "/" + object.getKind() + " " + object.getMetadata().getName();
        }
    }

    /** Every YAML manifest under k8s/ (kustomization files apart), relative paths, sorted. */
    static List<Path> manifestFiles() throws IOException {
        try (Stream<Path> files = Files.walk(K8S)) {
            return files.filter(Files::isRegularFile)
                    .filter(p -> p.toString().endsWith(".yaml") || p.toString().endsWith(".yml"))
                    .filter(p -> !p.getFileName().toString().startsWith("kustomization."))
                    .map(ROOT::relativize).sorted().toList();
        }
    }

    /** The kustomization directories under k8s/. */
    static List<Path> kustomizations() throws IOException {
        try (Stream<Path> files = Files.walk(K8S)) {
            return files.filter(p -> p.getFileName().toString().equals("kustomization.yaml"))
                    .map(p -> ROOT.relativize(p.getParent())).sorted().toList();
        }
    }

    static List<Manifest> parseFile(Path relative) throws IOException {
        return parse(relative.toString(), Files.readString(ROOT.resolve(relative)));
    }

    /** Parses a (multi-document) YAML stream strictly into typed objects. */
    static List<Manifest> parse(String source, String yaml) throws IOException {
        List<Manifest> out = new ArrayList<>();
        List<JsonNode> docs;
        try (var parser = YAML.getFactory().createParser(yaml)) {
            docs = YAML.readValues(parser, JsonNode.class).readAll();
        }
        int index = 0;
        for (JsonNode doc : docs) {
            index++;
            if (doc == null || doc.isNull() || doc.isMissingNode()) {
                continue;
            }
            String where = source + " (document " + index + ")";
            String type = doc.path("apiVersion").asText() + "/" + doc.path("kind").asText();
            Class<? extends HasMetadata> cls = KINDS.get(type);
            if (cls == null) {
                throw new AssertionError(where + ": " + type + " is not a kind these manifests use " + KINDS.keySet());
            }
            HasMetadata object;
            try {
                object = YAML.treeToValue(doc, cls);
            } catch (IOException e) {
                throw new AssertionError(where + ": not a valid " + type + ": " + e.getMessage(), e);
            }
            List<String> unknown = new ArrayList<>();
            unknownFields(object, type, unknown);
            if (!unknown.isEmpty()) {
                throw new AssertionError(where + ": fields " + type + " does not have: " + unknown);
            }
            if (object.getMetadata() == null || object.getMetadata().getName() == null) {
                throw new AssertionError(where + ": metadata.name is missing");
            }
            out.add(new Manifest(where, object));
        }
        return out;
    }

    /** Walks a fabric8 object and collects the path of every field its class does not have. */
    static void unknownFields(Object o, String path, List<String> out) {
        if (o == null) {
            return;
        }
        if (o instanceof Map<?, ?> map) {
            map.forEach((k, v) -> unknownFields(v, path + "." + k, out));
            return;
        }
        if (o instanceof Collection<?> list) {
            int i = 0;
            for (Object e : list) {
                unknownFields(e, path + "[" + i++ + "]", out);
            }
            return;
        }
        if (!o.getClass().getName().startsWith("io.fabric8.")) {
            return;
        }
        for (Method m : o.getClass().getMethods()) {
            if (m.getParameterCount() != 0 || !m.getName().startsWith("get") || m.getDeclaringClass() == Object.class) {
                continue;
            }
            Class<?> type = m.getReturnType();
            boolean additional = m.getName().equals("getAdditionalProperties");
            if (!additional && !type.getName().startsWith("io.fabric8.") && !Collection.class.isAssignableFrom(type)
                    && !Map.class.isAssignableFrom(type)) {
                continue;
            }
            Object value;
            try {
                value = m.invoke(o);
            } catch (IllegalAccessException | InvocationTargetException e) {
                continue;
            }
            if (additional) {
                if (value instanceof Map<?, ?> extra && !extra.isEmpty()) {
                    for (Object key : extra.keySet()) {
                        out.add(path + "." + key);
                    }
                }
            } else {
                String name = m.getName().substring(3);
                unknownFields(value, path + "." + Character.toLowerCase(name.charAt(0)) + name.substring(1), out);
            }
        }
    }

    /** kubectl on the PATH, if any. */
    static Optional<String> kubectl() {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(java.io.File.pathSeparator)) {
            Path p = Path.of(dir, "kubectl");
            if (!dir.isEmpty() && Files.isExecutable(p)) {
                return Optional.of(p.toString());
            }
        }
        return Optional.empty();
    }

    /** {@code kubectl kustomize dir}: the rendered manifests. */
    static String render(String kubectl, Path kustomization) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(kubectl, "kustomize", ROOT.resolve(kustomization).toString())
                .redirectErrorStream(false).start();
        var stdout = new java.io.ByteArrayOutputStream();
        var stderr = new java.io.ByteArrayOutputStream();
        Thread err = Thread.ofVirtual().start(() -> {
            try {
                p.getErrorStream().transferTo(stderr);
            } catch (IOException ignored) {
                // the exit status says what matters
            }
        });
        p.getInputStream().transferTo(stdout);
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("kubectl kustomize " + kustomization + " did not finish in 60s");
        }
        err.join();
        if (p.exitValue() != 0) {
            throw new AssertionError("kubectl kustomize " + kustomization + " failed: "
                    + stderr.toString(StandardCharsets.UTF_8));
        }
        return stdout.toString(StandardCharsets.UTF_8);
    }

    static <T extends HasMetadata> T one(List<Manifest> manifests, Class<T> type) {
        List<T> found = manifests.stream().map(Manifest::object).filter(type::isInstance).map(type::cast).toList();
        if (found.size() != 1) {
            throw new AssertionError("expected one " + type.getSimpleName() + ", found " + found.size());
        }
        return found.get(0);
    }
}
