package io.jemma.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Grafana dashboard (k8s/grafana/jemma-dashboard.json): valid JSON (read strictly), panels with
 * unique ids on the data source variable, balanced PromQL, and a panel for each figure the deployment
 * issue asks for. {@link RunningAppTest} checks its series against the running application.
 */
class DashboardTest {

    static JsonNode dashboard() throws IOException {
        return Manifests.JSON.readTree(Manifests.K8S.resolve("grafana/jemma-dashboard.json").toFile());
    }

    static List<String> expressions() throws IOException {
        List<String> out = new ArrayList<>();
        dashboard().path("panels").forEach(p -> p.path("targets").forEach(t -> out.add(t.path("expr").asText())));
        return out;
    }

    /** The jemma_* series the dashboard's queries read. */
    static Set<String> seriesUsed() throws IOException {
        Set<String> names = new TreeSet<>();
        for (String expr : expressions()) {
            Matcher m = Pattern.compile("\\bjemma_[a-z0-9_]+").matcher(expr);
            while (m.find()) {
                names.add(m.group());
            }
        }
        return names;
    }

    @Test
    void panelsAreWellFormed() throws IOException {
        JsonNode d = dashboard();
        assertEquals("jemma-serving", d.path("uid").asText());
        Set<Integer> ids = new HashSet<>();
        int queries = 0;
        for (JsonNode p : d.path("panels")) {
            assertTrue(ids.add(p.path("id").asInt()), "duplicate panel id " + p.path("id"));
            JsonNode grid = p.path("gridPos");
            assertTrue(grid.path("w").asInt() > 0 && grid.path("x").asInt() + grid.path("w").asInt() <= 24,
                    p.path("title") + ": gridPos within 24 columns");
            if (p.path("type").asText().equals("row")) {
                continue;
            }
            assertEquals("${datasource}", p.path("datasource").path("uid").asText(), p.path("title") + ": data source");
            assertFalse(p.path("targets").isEmpty(), p.path("title") + ": no query");
            for (JsonNode t : p.path("targets")) {
                String expr = t.path("expr").asText();
                assertTrue(balanced(expr), p.path("title") + ": unbalanced brackets in " + expr);
                assertTrue(expr.contains("namespace=~\"$namespace\"") && expr.contains("model=~\"$model\""),
                        p.path("title") + ": filtered by the dashboard's variables: " + expr);
                queries++;
            }
        }
        assertTrue(queries >= 10, "queries: " + queries);
        Set<String> variables = new HashSet<>();
        d.path("templating").path("list").forEach(v -> variables.add(v.path("name").asText()));
        assertEquals(Set.of("datasource", "namespace", "model"), variables);
    }

    @Test
    void theFiguresAreThere() throws IOException {
        List<String> exprs = expressions();
        for (String histogram : List.of("jemma_time_to_first_token_seconds", "jemma_inter_token_latency_seconds",
                "jemma_e2e_request_latency_seconds")) {
            for (String q : List.of("0.5", "0.9", "0.99")) {
                assertTrue(exprs.stream().anyMatch(e -> e.startsWith("histogram_quantile(" + q + ",")
                        && e.contains(histogram + "_bucket")), "p" + q + " of " + histogram);
            }
        }
        Set<String> used = seriesUsed();
        for (String series : List.of("jemma_gen_throughput", "jemma_generation_tokens_total", "jemma_kv_cache_usage",
                "jemma_num_queue_reqs", "jemma_num_running_reqs", "jemma_spec_accept_length")) {
            assertTrue(used.contains(series), "a panel on " + series);
        }
        assertTrue(exprs.stream().anyMatch(e -> e.contains("rate(jemma_generation_tokens_total")),
                "throughput as the rate of the generated-token counter");
    }

    private static boolean balanced(String s) {
        int round = 0;
        int curly = 0;
        int square = 0;
        boolean quoted = false;
        for (char c : s.toCharArray()) {
            if (c == '"') {
                quoted = !quoted;
            }
            if (quoted) {
                continue;
            }
            switch (c) {
                case '(' -> round++;
                case ')' -> round--;
                case '{' -> curly++;
                case '}' -> curly--;
                case '[' -> square++;
                case ']' -> square--;
                default -> { }
            }
            if (round < 0 || curly < 0 || square < 0) {
                return false;
            }
        }
        return round == 0 && curly == 0 && square == 0 && !quoted;
    }
}
