package io.jgears;

import io.jgears.metrics.MetricsEndpoint;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Prometheus endpoint: jgears' gauges, per-registration counters that follow registrations, JVM figures. */
class MetricsTest extends GearsTestBase {

    private static String get(int port) throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(
                HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode());
        return r.body();
    }

    @Test
    void registrationsSessionsAndJvmFiguresAreScraped() throws Exception {
        try (MetricsEndpoint metrics = MetricsEndpoint.start(TestServer.get().engine(), "127.0.0.1", 0)) {
            py("GB('CommandReader').map(lambda a: 1 / int(a[1])).register(trigger='metrics_t')", "ID", "metrics-test");
            String rid = firstRegistrationId();
            try {
                call("RG.TRIGGER", "metrics_t", "1");
                call("RG.TRIGGER", "metrics_t", "2");
                error("RG.TRIGGER", "metrics_t", "0");
                String body = get(metrics.port());
                assertTrue(body.contains("jgears_sessions "), body);
                assertTrue(body.contains("jgears_pool_ready "), body);
                assertTrue(body.contains("jvm_memory_used_bytes{"), body);
                String id = ".*id=\"" + java.util.regex.Pattern.quote(rid) + "\".*";
                assertTrue(line(body, "jgears_registration_triggered_total", id).endsWith(" 3.0"), body);
                assertTrue(line(body, "jgears_registration_succeeded_total", id).endsWith(" 2.0"), body);
                assertTrue(line(body, "jgears_registration_failed_total", id).endsWith(" 1.0"), body);
            } finally {
                call("RG.UNREGISTER", rid);
            }
            assertFalse(get(metrics.port()).contains("id=\"" + rid + "\""), "an unregistered registration's meters are gone");
        }
    }

    /** Key events' lag per registration, and a stream registration's group lag and pending entries (XINFO GROUPS). */
    @Test
    void eventLagAndStreamGroupsAreScraped() throws Exception {
        var direct = TestServer.redisDirect();
        try (MetricsEndpoint metrics = MetricsEndpoint.start(TestServer.get().engine(), "127.0.0.1", 0)) {
            py("GB().foreach(lambda r: execute('INCR', 'mlag:seen')).register(prefix='mlag:k:*')\n"
                    + "GB('StreamReader').foreach(lambda r: execute('INCR', 'mlag:entries')).register(prefix='mlag:s')", "ID", "metrics-lag");
            List<String> rids = new java.util.ArrayList<>();
            for (Object r : (List<?>) call("RG.DUMPREGISTRATIONS")) {
                if (String.valueOf(r).contains("mlag:")) {
                    rids.add(String.valueOf(((List<?>) r).get(1)));
                }
            }
            assertEquals(2, rids.size());
            try {
                for (int i = 0; i < 20; i++) {
                    direct.set("mlag:k:" + i, "v");
                    direct.xadd("mlag:s", Map.of("n", String.valueOf(i)));
                }
                long deadline = System.currentTimeMillis() + 120_000;
                while ((!"20".equals(direct.get("mlag:seen")) || !"20".equals(direct.get("mlag:entries")))
                        && System.currentTimeMillis() < deadline) {
                    Thread.sleep(50);
                }
                assertEquals("20", direct.get("mlag:seen"));
                assertEquals("20", direct.get("mlag:entries"));
                String body = get(metrics.port());
                String keyReg = ".*id=\"" + java.util.regex.Pattern.quote(rids.get(0)) + "\".*";
                String streamReg = ".*id=\"" + java.util.regex.Pattern.quote(rids.get(1)) + "\".*";
                assertTrue(line(body, "jgears_registration_event_lag_seconds_count", keyReg).endsWith(" 20"), body);
                assertTrue(line(body, "jgears_registration_event_lag_seconds_sum", keyReg).matches(".* [0-9.E-]+"), body);
                assertTrue(line(body, "jgears_registration_event_lag_last_seconds", keyReg).matches(".* [0-9.E-]+"), body);
                assertTrue(line(body, "jgears_stream_lag", streamReg + "stream=\"mlag:s\".*").endsWith(" 0.0"), body);
                assertTrue(line(body, "jgears_stream_pending", streamReg + "stream=\"mlag:s\".*").endsWith(" 0.0"), body);
            } finally {
                for (String rid : rids) {
                    call("RG.UNREGISTER", rid);
                }
                direct.del("mlag:s", "mlag:seen", "mlag:entries");
                for (int i = 0; i < 20; i++) {
                    direct.del("mlag:k:" + i);
                }
            }
        }
    }

    private String firstRegistrationId() {
        for (Object r : (java.util.List<?>) call("RG.DUMPREGISTRATIONS")) {
            java.util.List<?> fields = (java.util.List<?>) r;
            String id = String.valueOf(fields.get(1));
            if (String.valueOf(fields).contains("metrics_t")) {
                return id;
            }
        }
        throw new AssertionError("registration not found");
    }

    private static String line(String body, String name, String labelsRegex) {
        return body.lines().filter(l -> l.startsWith(name + "{") && l.matches(labelsRegex)).findFirst()
                .orElseThrow(() -> new AssertionError("no " + name + " line in\n" + body));
    }
}
