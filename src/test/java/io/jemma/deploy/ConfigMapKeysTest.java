package io.jemma.deploy;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.jemma.deploy.Manifests.Manifest;
import io.smallrye.config.ConfigMapping;
import io.smallrye.config.ConfigMappings;
import io.smallrye.config.EnvConfigSource;
import io.smallrye.config.SmallRyeConfig;
import io.smallrye.config.SmallRyeConfigBuilder;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.lang.reflect.Method;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Every key of every ConfigMap in k8s/ (the base, the overlays' patches, and the rendered overlays when
 * kubectl is there) is the environment variable of a real configuration property of the application:
 * one of the {@code jemma.*} properties of its {@code @ConfigMapping} interfaces (EngineConfig, and any
 * other under io.jemma), by SmallRye Config's own environment-variable rule (JEMMA_MAX_RUNNING_REQUESTS
 * is jemma.max-running-requests). And each value converts to the property's type: the mappings are
 * built from the ConfigMap's data as the environment, the way the pod will start.
 */
class ConfigMapKeysTest {

    /** The application's @ConfigMapping interfaces with a jemma prefix, found in its compiled classes. */
    static List<Class<?>> mappings() throws IOException, URISyntaxException {
        Path classes = Path.of(io.jemma.engine.EngineConfig.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        List<Class<?>> found = new ArrayList<>();
        try (Stream<Path> files = Files.walk(classes.resolve("io/jemma"))) {
            for (Path f : files.filter(p -> p.toString().endsWith(".class")).toList()) {
                String name = classes.relativize(f).toString().replace('/', '.').replaceAll("\\.class$", "");
                try {
                    Class<?> c = Class.forName(name, false, ConfigMapKeysTest.class.getClassLoader());
                    ConfigMapping m = c.getAnnotation(ConfigMapping.class);
                    if (c.isInterface() && m != null && (m.prefix().equals("jemma") || m.prefix().startsWith("jemma."))) {
                        found.add(c);
                    }
                } catch (ClassNotFoundException | LinkageError e) {
                    // not loadable on its own (e.g. a JMH-generated class): not a config mapping
                }
            }
        }
        return found;
    }

    /** Property name -> its environment variable name, for every property of the mappings. */
    static Map<String, String> properties() throws IOException, URISyntaxException {
        Map<String, String> names = new TreeMap<>();
        for (Class<?> c : mappings()) {
            String prefix = c.getAnnotation(ConfigMapping.class).prefix();
            for (String property : ConfigMappings.getProperties(ConfigMappings.ConfigClass.configClass(c, prefix)).keySet()) {
                names.put(property, envName(property));
            }
        }
        return names;
    }

    /** SmallRye Config's rule: every character other than a letter or digit becomes _, then upper case. */
    static String envName(String property) {
        return property.replaceAll("[^A-Za-z0-9]", "_").toUpperCase(java.util.Locale.ROOT);
    }

    @Test
    void theMappingsAreFound() throws Exception {
        Map<String, String> properties = properties();
        assertTrue(mappings().contains(io.jemma.engine.EngineConfig.class), "EngineConfig is among " + mappings());
        assertEquals("JEMMA_MAX_RUNNING_REQUESTS", properties.get("jemma.max-running-requests"));
        assertEquals("JEMMA_DRAIN_TIMEOUT", properties.get("jemma.drain-timeout"));
        assertEquals("JEMMA_MODEL_PATH", properties.get("jemma.model-path"));
    }

    @TestFactory
    Stream<DynamicTest> everyConfigMapKeyIsARealProperty() throws Exception {
        List<Manifest> maps = new ArrayList<>();
        for (Path f : Manifests.manifestFiles()) {
            Manifests.parseFile(f).stream().filter(m -> m.object() instanceof ConfigMap).forEach(maps::add);
        }
        var kubectl = Manifests.kubectl();
        if (kubectl.isPresent()) {
            for (Path dir : Manifests.kustomizations()) {
                Manifests.parse("kubectl kustomize " + dir, Manifests.render(kubectl.get(), dir)).stream()
                        .filter(m -> m.object() instanceof ConfigMap)
                        .filter(m -> m.object().getMetadata().getName().equals("jemma-engine"))
                        .forEach(maps::add);
            }
        } else {
            System.out.println("kubectl is not on the PATH: the rendered overlays' ConfigMaps are not checked "
                    + "(their files are)");
        }
        Map<String, String> properties = properties();
        Map<String, String> byEnv = new TreeMap<>();
        properties.forEach((property, env) -> byEnv.put(env, property));
        return maps.stream()
                .filter(m -> m.object().getMetadata().getName().equals("jemma-engine"))
                .map(m -> DynamicTest.dynamicTest(m.source(), () -> check((ConfigMap) m.object(), byEnv)));
    }

    private static void check(ConfigMap map, Map<String, String> byEnv) throws Exception {
        Map<String, String> data = map.getData();
        assertFalse(data == null || data.isEmpty(), "the ConfigMap has data");
        List<String> unknown = data.keySet().stream().filter(k -> !byEnv.containsKey(k)).toList();
        if (!unknown.isEmpty()) {
            fail("not configuration properties of the application: " + unknown + "; known: " + byEnv.keySet());
        }
        // The pod's view: the data as environment variables, the mappings built (and so every value converted).
        SmallRyeConfigBuilder builder = new SmallRyeConfigBuilder()
                .withSources(new EnvConfigSource(data, EnvConfigSource.ORDINAL))
                .withValidateUnknown(false)
                .addDiscoveredConverters() // Quarkus's, among them the Duration one that reads "60s"
                .addDefaultInterceptors();
        for (Class<?> c : mappings()) {
            builder.withMapping(c);
        }
        SmallRyeConfig config;
        try {
            config = builder.build();
        } catch (RuntimeException e) {
            throw new AssertionError("the values do not convert: " + e.getMessage(), e);
        }
        for (Class<?> c : mappings()) {
            Object mapping = config.getConfigMapping(c);
            for (Method m : c.getMethods()) {
                if (m.getParameterCount() == 0 && !m.isDefault()) {
                    m.invoke(mapping); // every property reads
                }
            }
        }
        for (var e : data.entrySet()) {
            String property = byEnv.get(e.getKey());
            assertEquals(e.getValue(), config.getConfigValue(property).getValue(),
                    e.getKey() + " is what the application reads as " + property);
        }
    }
}
