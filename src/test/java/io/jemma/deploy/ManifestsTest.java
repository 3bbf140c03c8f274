package io.jemma.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.PersistentVolumeClaim;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Probe;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServicePort;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.autoscaling.v2.MetricSpec;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.openshift.api.model.monitoring.v1.ServiceMonitor;
import io.jemma.deploy.Manifests.Manifest;
import io.quarkus.runtime.configuration.DurationConverter;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The manifests under k8s/: each file, and each kustomization rendered by {@code kubectl kustomize}
 * (skipped, with a message, when kubectl is not on the PATH), reads strictly into typed Kubernetes
 * objects; and the objects fit together (selectors, port names, claim, ConfigMap, probes, drain time).
 */
class ManifestsTest {
    private static final String BASE = "k8s/base";
    private static final List<String> OVERLAYS = List.of("k8s/overlays/gpu", "k8s/overlays/cpu");

    @TestFactory
    Stream<DynamicTest> everyManifestFileReadsStrictly() throws IOException {
        List<Path> files = Manifests.manifestFiles();
        assertTrue(files.size() >= 8, "manifests under k8s/: " + files);
        return files.stream().map(f -> DynamicTest.dynamicTest(f.toString(), () -> {
            List<Manifest> objects = Manifests.parseFile(f);
            assertFalse(objects.isEmpty(), f + " has no Kubernetes object");
        }));
    }

    @TestFactory
    Stream<DynamicTest> everyKustomizationRendersToStrictlyValidObjects() throws IOException {
        var kubectl = Manifests.kubectl();
        return Manifests.kustomizations().stream().map(dir -> DynamicTest.dynamicTest(dir.toString(), () -> {
            Assumptions.assumeTrue(kubectl.isPresent(),
                    "kubectl is not on the PATH: rendering " + dir + " with kubectl kustomize is skipped "
                            + "(its files are still read one by one)");
            List<Manifest> objects = Manifests.parse("kubectl kustomize " + dir, Manifests.render(kubectl.get(), dir));
            assertFalse(objects.isEmpty(), dir + " renders nothing");
        }));
    }

    /** Every file a kustomization names exists, and every manifest of the directory is named by it. */
    @Test
    void kustomizationsNameExactlyTheirFiles() throws IOException {
        for (Path dir : Manifests.kustomizations()) {
            JsonNode k = Manifests.YAML.readTree(Manifests.ROOT.resolve(dir).resolve("kustomization.yaml").toFile());
            Set<String> named = new HashSet<>();
            k.path("resources").forEach(r -> named.add(r.asText()));
            k.path("patches").forEach(p -> {
                if (p.has("path")) {
                    named.add(p.get("path").asText());
                }
            });
            k.path("configMapGenerator").forEach(g -> g.path("files").forEach(f -> named.add(f.asText())));
            for (String name : named) {
                assertTrue(Files.exists(Manifests.ROOT.resolve(dir).resolve(name)), dir + "/kustomization.yaml names "
                        + name + ", which does not exist");
            }
            try (Stream<Path> files = Files.list(Manifests.ROOT.resolve(dir))) {
                for (Path f : files.filter(p -> p.toString().endsWith(".yaml")).toList()) {
                    String name = f.getFileName().toString();
                    assertTrue(name.equals("kustomization.yaml") || named.contains(name),
                            dir + "/" + name + " is not in its kustomization.yaml");
                }
            }
        }
    }

    /** The strict reader does refuse what the API server refuses (so the checks above mean something). */
    @Test
    void theStrictReaderRefusesMistakes() {
        String deployment = """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: x}
                spec:
                  selector: {matchLabels: {a: b}}
                  template:
                    metadata: {labels: {a: b}}
                    spec:
                      containers:
                        - name: c
                          image: i
                """;
        assertEquals(1, assertDoesNotThrow(deployment).size());
        assertRefused(deployment + "          livenessprobe: {}\n", "livenessprobe");
        assertRefused(deployment.replace("image: i", "image: i\n          ports: [{containerPort: \"8080\"}]"), "8080");
        assertRefused(deployment + "      terminationGracePeriod: 80\n", "terminationGracePeriod");
        assertRefused("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {JEMMA_MAX_RUNNING_REQUESTS: 64}\n",
                "64");
        assertRefused("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {A: \"1\", A: \"2\"}\n", "A");
        assertRefused("apiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: x}\n", "apps/v1beta1");
        assertRefused("apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\n"
                + "spec: {endpoints: [{port: http, scrapeInterval: 15s}]}\n", "scrapeInterval");
    }

    private static List<Manifest> assertDoesNotThrow(String yaml) {
        try {
            return Manifests.parse("test", yaml);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    private static void assertRefused(String yaml, String mentioned) {
        Throwable t = assertThrows(Throwable.class, () -> Manifests.parse("test", yaml), "accepted:\n" + yaml);
        String message = String.valueOf(t.getMessage());
        assertTrue(message.contains(mentioned), "the refusal should mention " + mentioned + ": " + message);
    }

    // ---- the objects fit together ----

    @Test
    void theBaseFitsTogether() throws IOException {
        List<Manifest> base = new ArrayList<>();
        for (Path f : Manifests.manifestFiles()) {
            if (f.startsWith(BASE)) {
                base.addAll(Manifests.parseFile(f));
            }
        }
        fitsTogether(BASE, base);
    }

    @TestFactory
    Stream<DynamicTest> theRenderedOverlaysFitTogether() {
        var kubectl = Manifests.kubectl();
        return OVERLAYS.stream().map(dir -> DynamicTest.dynamicTest(dir, () -> {
            Assumptions.assumeTrue(kubectl.isPresent(), "kubectl is not on the PATH: " + dir + " is not rendered");
            List<Manifest> all = Manifests.parse(dir, Manifests.render(kubectl.get(), Path.of(dir)));
            fitsTogether(dir, all);
            Container c = container(Manifests.one(all, Deployment.class));
            PodSpec pod = Manifests.one(all, Deployment.class).getSpec().getTemplate().getSpec();
            if (dir.endsWith("gpu")) {
                assertEquals(new Quantity("1"), c.getResources().getLimits().get("nvidia.com/gpu"), "one GPU per pod");
                assertFalse(pod.getNodeSelector() == null || pod.getNodeSelector().isEmpty(), "GPU node selector");
                assertTrue(pod.getTolerations().stream().anyMatch(t -> "nvidia.com/gpu".equals(t.getKey())),
                        "tolerates the nvidia.com/gpu taint");
            } else {
                assertFalse(c.getResources().getLimits().containsKey("nvidia.com/gpu"), "no GPU for the CPU overlay");
                assertTrue(c.getEnv().stream().anyMatch(e -> e.getName().equals("NVIDIA_VISIBLE_DEVICES")
                        && "void".equals(e.getValue())), "CPU pods see no GPU even under the nvidia runtime");
            }
        }));
    }

    private static Container container(Deployment d) {
        List<Container> containers = d.getSpec().getTemplate().getSpec().getContainers();
        assertEquals(1, containers.size(), "one container");
        return containers.get(0);
    }

    private static void fitsTogether(String where, List<Manifest> all) throws IOException {
        Deployment deployment = Manifests.one(all, Deployment.class);
        Service service = Manifests.one(all, Service.class);
        ConfigMap config = Manifests.one(all, ConfigMap.class);
        PersistentVolumeClaim pvc = Manifests.one(all, PersistentVolumeClaim.class);
        HorizontalPodAutoscaler hpa = Manifests.one(all, HorizontalPodAutoscaler.class);
        PodDisruptionBudget pdb = Manifests.one(all, PodDisruptionBudget.class);
        NetworkPolicy policy = Manifests.one(all, NetworkPolicy.class);
        ServiceMonitor monitor = Manifests.one(all, ServiceMonitor.class);

        Map<String, String> podLabels = deployment.getSpec().getTemplate().getMetadata().getLabels();
        assertTrue(podLabels.entrySet().containsAll(deployment.getSpec().getSelector().getMatchLabels().entrySet()),
                where + ": the Deployment's selector matches its pods");
        assertNull(deployment.getSpec().getReplicas(), where + ": replicas belong to the HPA");

        PodSpec pod = deployment.getSpec().getTemplate().getSpec();
        Container c = container(deployment);
        ContainerPort http = c.getPorts().stream().filter(p -> "http".equals(p.getName())).findFirst()
                .orElseThrow(() -> new AssertionError(where + ": no container port named http"));
        assertEquals(8080, http.getContainerPort(), where + ": the HTTP port");

        // Probes: the application's health endpoints, on the http port; time enough to load a 60 GB model.
        assertProbe(where, "startup", c.getStartupProbe(), "/q/health/started");
        assertProbe(where, "liveness", c.getLivenessProbe(), "/q/health/live");
        assertProbe(where, "readiness", c.getReadinessProbe(), "/q/health/ready");
        Probe startup = c.getStartupProbe();
        assertTrue(startup.getPeriodSeconds() * startup.getFailureThreshold() >= 1800,
                where + ": the startup probe allows 30 minutes to load the model");

        // Security.
        assertEquals(Boolean.TRUE, pod.getSecurityContext().getRunAsNonRoot(), where + ": pod runAsNonRoot");
        var sc = c.getSecurityContext();
        assertEquals(Boolean.TRUE, sc.getRunAsNonRoot(), where + ": runAsNonRoot");
        assertEquals(Boolean.TRUE, sc.getReadOnlyRootFilesystem(), where + ": readOnlyRootFilesystem");
        assertEquals(Boolean.FALSE, sc.getAllowPrivilegeEscalation(), where + ": allowPrivilegeEscalation");
        assertEquals(List.of("ALL"), sc.getCapabilities().getDrop(), where + ": capabilities drop ALL");

        // Resources: requests and a memory limit.
        assertFalse(c.getResources().getRequests().isEmpty(), where + ": resource requests");
        assertNotNull(c.getResources().getLimits().get("memory"), where + ": a memory limit");

        // Volumes: /tmp writable (emptyDir), the models claim read-only at /models.
        Map<String, VolumeMount> mounts = new java.util.HashMap<>();
        c.getVolumeMounts().forEach(m -> mounts.put(m.getMountPath(), m));
        Volume tmp = volume(pod, mounts.get("/tmp"), where + ": /tmp");
        assertNotNull(tmp.getEmptyDir(), where + ": /tmp is an emptyDir");
        VolumeMount modelsMount = mounts.get("/models");
        Volume models = volume(pod, modelsMount, where + ": /models");
        assertEquals(Boolean.TRUE, modelsMount.getReadOnly(), where + ": /models mounted read-only");
        assertNotNull(models.getPersistentVolumeClaim(), where + ": /models from a PersistentVolumeClaim");
        assertEquals(pvc.getMetadata().getName(), models.getPersistentVolumeClaim().getClaimName(),
                where + ": the claim is the one in the manifests");
        assertEquals(Boolean.TRUE, models.getPersistentVolumeClaim().getReadOnly(), where + ": claim read-only");

        // The settings come from the ConfigMap; the model path points under /models.
        assertTrue(c.getEnvFrom().stream().anyMatch(e -> e.getConfigMapRef() != null
                && config.getMetadata().getName().equals(e.getConfigMapRef().getName())), where + ": envFrom the ConfigMap");
        String modelPath = config.getData().get("JEMMA_MODEL_PATH");
        assertTrue(modelPath != null && (modelPath.equals("/models") || modelPath.startsWith("/models/")),
                where + ": JEMMA_MODEL_PATH under /models: " + modelPath);

        // Termination: the preStop sleep + the drain + Quarkus's shutdown timeout fit in the grace period.
        long preStop = preStopSeconds(c);
        Duration drain = DurationConverter.parseDuration(config.getData().getOrDefault("JEMMA_DRAIN_TIMEOUT", "30s"));
        Duration quarkus = DurationConverter.parseDuration(applicationProperty("quarkus.shutdown.timeout", "0s"));
        long needed = preStop + drain.toSeconds() + quarkus.toSeconds() + 5;
        assertTrue(pod.getTerminationGracePeriodSeconds() >= needed, where + ": terminationGracePeriodSeconds "
                + pod.getTerminationGracePeriodSeconds() + " < preStop " + preStop + "s + drain " + drain.toSeconds()
                + "s + quarkus.shutdown.timeout " + quarkus.toSeconds() + "s + 5s margin");

        // Service -> pods, port names; ServiceMonitor -> Service port, metrics path.
        assertTrue(podLabels.entrySet().containsAll(service.getSpec().getSelector().entrySet()),
                where + ": the Service selects the pods");
        ServicePort servicePort = service.getSpec().getPorts().get(0);
        assertEquals("http", servicePort.getTargetPort().getStrVal(), where + ": the Service targets the http port");
        assertTrue(service.getMetadata().getLabels().entrySet()
                        .containsAll(monitor.getSpec().getSelector().getMatchLabels().entrySet()),
                where + ": the ServiceMonitor selects the Service");
        monitor.getSpec().getEndpoints().forEach(e -> {
            assertEquals(servicePort.getName(), e.getPort(), where + ": ServiceMonitor port is the Service's port name");
            assertEquals("/q/metrics", e.getPath(), where + ": the metrics path");
        });

        // HPA -> Deployment, on the engine's queue and running gauges; room for the PDB to let one go.
        assertEquals("Deployment", hpa.getSpec().getScaleTargetRef().getKind());
        assertEquals(deployment.getMetadata().getName(), hpa.getSpec().getScaleTargetRef().getName(),
                where + ": the HPA scales the Deployment");
        assertTrue(hpa.getSpec().getMinReplicas() >= 2 && hpa.getSpec().getMinReplicas() <= hpa.getSpec().getMaxReplicas(),
                where + ": 2 <= minReplicas <= maxReplicas");
        List<String> metrics = hpa.getSpec().getMetrics().stream().map(MetricSpec::getPods)
                .map(p -> p.getMetric().getName()).toList();
        assertTrue(metrics.contains("jemma_num_queue_reqs"), where + ": the HPA scales on the queue depth: " + metrics);

        assertTrue(podLabels.entrySet().containsAll(pdb.getSpec().getSelector().getMatchLabels().entrySet()),
                where + ": the PDB selects the pods");
        assertTrue(podLabels.entrySet().containsAll(policy.getSpec().getPodSelector().getMatchLabels().entrySet()),
                where + ": the NetworkPolicy selects the pods");
        policy.getSpec().getIngress().forEach(rule -> rule.getPorts().forEach(p -> assertTrue(
                "http".equals(p.getPort().getStrVal()) || Integer.valueOf(8080).equals(p.getPort().getIntVal()),
                where + ": the NetworkPolicy opens the http port")));
    }

    private static void assertNull(Object o, String message) {
        if (o != null) {
            fail(message + ": " + o);
        }
    }

    private static void assertProbe(String where, String kind, Probe probe, String path) {
        assertNotNull(probe, where + ": a " + kind + " probe");
        assertNotNull(probe.getHttpGet(), where + ": the " + kind + " probe is an HTTP GET");
        assertEquals(path, probe.getHttpGet().getPath(), where + ": the " + kind + " probe's path");
        assertEquals("http", probe.getHttpGet().getPort().getStrVal(), where + ": the " + kind + " probe's port");
    }

    private static Volume volume(PodSpec pod, VolumeMount mount, String what) {
        assertNotNull(mount, what + " is mounted");
        return pod.getVolumes().stream().filter(v -> v.getName().equals(mount.getName())).findFirst()
                .orElseThrow(() -> new AssertionError(what + ": no volume " + mount.getName()));
    }

    private static long preStopSeconds(Container c) {
        if (c.getLifecycle() == null || c.getLifecycle().getPreStop() == null) {
            return 0;
        }
        var exec = c.getLifecycle().getPreStop().getExec();
        if (exec != null && exec.getCommand().size() == 2 && exec.getCommand().get(0).equals("sleep")) {
            return Long.parseLong(exec.getCommand().get(1));
        }
        var sleep = c.getLifecycle().getPreStop().getSleep();
        if (sleep != null) {
            return sleep.getSeconds();
        }
        throw new AssertionError("a preStop hook other than a sleep: " + c.getLifecycle().getPreStop());
    }

    static String applicationProperty(String key, String otherwise) throws IOException {
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(Manifests.ROOT.resolve("src/main/resources/application.properties"))) {
            p.load(r);
        }
        return p.getProperty(key, otherwise);
    }
}
