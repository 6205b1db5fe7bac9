package io.jgears;

import io.jgears.metrics.MetricsEndpoint;
import org.junit.jupiter.api.Test;

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
