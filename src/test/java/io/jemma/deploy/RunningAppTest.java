package io.jemma.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.Probe;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.openshift.api.model.monitoring.v1.ServiceMonitor;
import io.jemma.deploy.Manifests.Manifest;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.RestAssured;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * What the manifests and the dashboard ask of the application, asked of the running application: the
 * probes' paths answer 200 on the port the container declares once the model is loaded, the
 * ServiceMonitor's path serves the series the HPA scales on, and every series the dashboard queries
 * exists (apart from those of features still to come).
 */
@QuarkusTest
class RunningAppTest {
    /** Series the dashboard shows ahead of the feature that will export them. */
    static final Set<String> FUTURE_SERIES = Set.of("jemma_spec_accept_length");

    static List<Manifest> base = new ArrayList<>();

    @BeforeAll
    static void read() throws IOException {
        for (Path f : Manifests.manifestFiles()) {
            if (f.startsWith("k8s/base") || f.startsWith("k8s/overlays")) {
                base.addAll(Manifests.parseFile(f));
            }
        }
    }

    /** Polls a path until it answers 200 (the model loads in the background at boot). */
    static String awaitOk(String path) throws InterruptedException {
        long deadline = System.nanoTime() + 120_000_000_000L;
        int status;
        String body;
        do {
            var r = RestAssured.given().get(path);
            status = r.statusCode();
            body = r.asString();
            if (status == 200) {
                return body;
            }
            Thread.sleep(250);
        } while (System.nanoTime() < deadline);
        fail(path + " did not answer 200 within 120s: " + status + " " + body);
        return body;
    }

    @Test
    void theProbesAnswerOnTheDeclaredPort() throws Exception {
        Deployment d = base.stream().map(Manifest::object).filter(Deployment.class::isInstance)
                .map(Deployment.class::cast).filter(x -> x.getSpec().getTemplate().getSpec() != null
                        && x.getSpec().getTemplate().getSpec().getContainers().get(0).getPorts() != null)
                .findFirst().orElseThrow();
        Container c = d.getSpec().getTemplate().getSpec().getContainers().get(0);
        int port = c.getPorts().stream().filter(p -> "http".equals(p.getName())).findFirst().orElseThrow()
                .getContainerPort();
        // The pod's port is the application's: Quarkus's default 8080, unless application.properties moves it.
        assertEquals(String.valueOf(port), ManifestsTest.applicationProperty("quarkus.http.port", "8080"),
                "the container port is the port the application listens on");
        for (Probe probe : List.of(c.getStartupProbe(), c.getLivenessProbe(), c.getReadinessProbe())) {
            String path = probe.getHttpGet().getPath();
            String body = awaitOk(path);
            JsonNode health = Manifests.JSON.readTree(body);
            assertEquals("UP", health.path("status").asText(), path + ": " + body);
        }
    }

    @Test
    void theScrapedPathServesWhatTheHpaScalesOn() throws Exception {
        awaitOk("/q/health/started");
        Set<String> wanted = new TreeSet<>();
        for (Manifest m : base) {
            if (m.object() instanceof HorizontalPodAutoscaler hpa && hpa.getSpec().getMetrics() != null) {
                hpa.getSpec().getMetrics().forEach(s -> wanted.add(s.getPods().getMetric().getName()));
            }
        }
        assertTrue(wanted.contains("jemma_num_queue_reqs"), "HPA metrics: " + wanted);
        for (Manifest m : base) {
            if (m.object() instanceof ServiceMonitor sm) {
                for (var endpoint : sm.getSpec().getEndpoints()) {
                    String metrics = awaitOk(endpoint.getPath());
                    for (String name : wanted) {
                        assertTrue(Pattern.compile("(?m)^" + name + "\\{").matcher(metrics).find(),
                                endpoint.getPath() + " has no series " + name);
                    }
                }
            }
        }
    }

    @Test
    void everySeriesOfTheDashboardExists() throws Exception {
        awaitOk("/q/health/started");
        String metrics = awaitOk("/q/metrics");
        Set<String> exported = new TreeSet<>();
        Matcher m = Pattern.compile("(?m)^(jemma_[a-z0-9_]+)[{ ]").matcher(metrics);
        while (m.find()) {
            exported.add(m.group(1));
        }
        Set<String> used = DashboardTest.seriesUsed();
        Set<String> missing = new TreeSet<>(used);
        missing.removeAll(exported);
        missing.removeAll(FUTURE_SERIES);
        assertTrue(missing.isEmpty(), "the dashboard queries series the application does not export: " + missing
                + "; it exports " + exported);
    }
}
