package io.jgears.metrics;

import com.sun.net.httpserver.HttpServer;
import io.jgears.gears.GearsEngine;
import io.jgears.gears.Registration;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.FunctionTimer;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MultiGauge;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.ToDoubleFunction;

/**
 * A Prometheus endpoint ({@code GET /metrics}) for jgears: sessions, contexts and the warm pool, executions,
 * registrations (events triggered, executions succeeded/failed/aborted and the backlog of events not done
 * yet, per registration), time events, and the JVM's memory, GC, threads and CPU. Off unless
 * {@code --metrics-port} is given. Registrations come and go: their meters are added and removed at each scrape.
 */
public final class MetricsEndpoint implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(MetricsEndpoint.class);

    private final GearsEngine engine;
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final Map<String, List<Meter>> registrationMeters = new HashMap<>();
    private final JvmGcMetrics gc = new JvmGcMetrics();
    private final MultiGauge streamLag = MultiGauge.builder("jgears.stream.lag")
            .description("entries of a stream not delivered to a registration's consumer group yet (XINFO GROUPS lag)")
            .register(registry);
    private final MultiGauge streamPending = MultiGauge.builder("jgears.stream.pending")
            .description("entries delivered to a registration's consumer group and not acknowledged (XINFO GROUPS pending)")
            .register(registry);
    private final HttpServer http;

    private MetricsEndpoint(GearsEngine engine, HttpServer http) {
        this.engine = engine;
        this.http = http;
        gauge("jgears.sessions", "live sessions (sub-interpreters with a reference)", e -> e.sessions().count());
        gauge("jgears.pool.ready", "warm contexts ready in the pool", e -> e.pool().ready());
        gauge("jgears.pool.size", "warm contexts the pool keeps (PoolSize)", e -> e.pool().size());
        gauge("jgears.executions.stored", "executions kept for RG.DUMPEXECUTIONS", e -> e.executions().stored().size());
        gauge("jgears.registrations", "registrations", e -> e.registrations().all().size());
        gauge("jgears.execution.threads", "threads running Python", e -> e.executionThreads());
        FunctionCounter.builder("jgears.inline.calls", engine, e -> e.inlineCalls())
                .description("short calls run on a client's event loop").register(registry);
        FunctionCounter.builder("jgears.memory.interruptions", engine, e -> e.memoryInterruptions())
                .description("Python calls interrupted by the heap guard").register(registry);
        FunctionCounter.builder("jgears.gil.releases", engine, e -> io.jgears.python.SubInterpreter.gilReleases())
                .description("GILs that GraalPy left held by an interrupted call, released by jgears").register(registry);
        new JvmMemoryMetrics().bindTo(registry);
        gc.bindTo(registry);
        new JvmThreadMetrics().bindTo(registry);
        new ClassLoaderMetrics().bindTo(registry);
        new ProcessorMetrics().bindTo(registry);
        new UptimeMetrics().bindTo(registry);
        http.createContext("/metrics", exchange -> {
            byte[] body;
            int status = 200;
            if (!exchange.getRequestMethod().equals("GET")) {
                status = 405;
                body = "GET only\n".getBytes(StandardCharsets.UTF_8);
            } else {
                body = scrape().getBytes(StandardCharsets.UTF_8);
                exchange.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
            }
            exchange.sendResponseHeaders(status, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
    }

    /** Serves {@code /metrics} on bind:port (port 0: a free one). */
    public static MetricsEndpoint start(GearsEngine engine, String bind, int port) throws IOException {
        HttpServer http = HttpServer.create(new InetSocketAddress(bind, port), 16);
        http.setExecutor(null);  // one thread: scrapes are rare and short
        MetricsEndpoint m = new MetricsEndpoint(engine, http);
        http.start();
        log.info("Prometheus metrics on http://{}:{}/metrics", bind, m.port());
        return m;
    }

    public int port() {
        return http.getAddress().getPort();
    }

    /** The Prometheus text format of every meter, with the registrations' meters brought up to date. */
    public synchronized String scrape() {
        Set<String> live = new HashSet<>();
        List<MultiGauge.Row<?>> lagRows = new ArrayList<>();
        List<MultiGauge.Row<?>> pendingRows = new ArrayList<>();
        for (Registration r : engine.registrations().all()) {
            live.add(r.id());
            registrationMeters.computeIfAbsent(r.id(), id -> registrationMeters(r));
            streamRows(r, lagRows, pendingRows);
        }
        streamLag.register(lagRows, true);
        streamPending.register(pendingRows, true);
        registrationMeters.entrySet().removeIf(e -> {
            if (live.contains(e.getKey())) {
                return false;
            }
            e.getValue().forEach(registry::remove);
            return true;
        });
        return registry.scrape();
    }

    /**
     * A stream registration's consumer group on each of its streams, from XINFO GROUPS: {@code lag} (entries
     * not delivered to the group yet) and {@code pending} (delivered, not acknowledged).
     */
    private void streamRows(Registration r, List<MultiGauge.Row<?>> lag, List<MultiGauge.Row<?>> pending) {
        Map.Entry<String, List<String>> group = engine.registrations().streamsOf(r);
        for (String stream : group.getValue()) {
            try {
                Object reply = engine.redis().execute(List.of("XINFO".getBytes(StandardCharsets.UTF_8),
                        "GROUPS".getBytes(StandardCharsets.UTF_8), stream.getBytes(StandardCharsets.UTF_8)));
                for (Object g : (List<?>) reply) {
                    Map<String, Object> fields = new HashMap<>();
                    List<?> flat = (List<?>) g;
                    for (int i = 0; i + 1 < flat.size(); i += 2) {
                        fields.put(String.valueOf(flat.get(i)), flat.get(i + 1));
                    }
                    if (!group.getKey().equals(String.valueOf(fields.get("name")))) {
                        continue;
                    }
                    Tags tags = Tags.of("id", r.id(), "session", r.session().id(), "stream", stream);
                    if (fields.get("lag") instanceof Number n) {
                        lag.add(MultiGauge.Row.of(tags, n.doubleValue()));
                    }
                    if (fields.get("pending") instanceof Number n) {
                        pending.add(MultiGauge.Row.of(tags, n.doubleValue()));
                    }
                }
            } catch (RuntimeException e) {
                log.debug("XINFO GROUPS {}: {}", stream, e.getMessage());  // the stream is gone: no row
            }
        }
    }

    private List<Meter> registrationMeters(Registration r) {
        Tags tags = Tags.of("id", r.id(), "reader", r.reader(), "session", r.session().id());
        return List.of(
                counter("jgears.registration.triggered", "events that triggered the registration", r, tags, c -> c.triggered()),
                counter("jgears.registration.succeeded", "executions that ended without errors", r, tags, c -> c.succeeded()),
                counter("jgears.registration.failed", "executions that ended with errors", r, tags, c -> c.failed()),
                counter("jgears.registration.aborted", "executions aborted", r, tags, c -> c.aborted()),
                Gauge.builder("jgears.registration.backlog", r, x -> x.counts().backlog())
                        .description("events received and not done yet (the registration's lag, in events)")
                        .tags(tags).register(registry),
                FunctionTimer.builder("jgears.registration.event.lag", r, x -> x.counts().lagSamples(),
                                x -> x.counts().lagNanos(), TimeUnit.NANOSECONDS)
                        .description("time events waited before their execution started (key events: from the"
                                + " notification; stream batches: from the first entry's xadd to the end)")
                        .tags(tags).register(registry),
                Gauge.builder("jgears.registration.event.lag.last", r, x -> x.counts().lastLagNanos() / 1e9)
                        .description("the last batch's lag (its oldest event)").baseUnit("seconds")
                        .tags(tags).register(registry));
    }

    private Meter counter(String name, String description, Registration r, Tags tags,
                          ToDoubleFunction<Registration.Counts> value) {
        return FunctionCounter.builder(name, r, x -> value.applyAsDouble(x.counts()))
                .description(description).tags(tags).register(registry);
    }

    private void gauge(String name, String description, ToDoubleFunction<GearsEngine> value) {
        Gauge.builder(name, engine, value).description(description).register(registry);
    }

    @Override
    public void close() {
        http.stop(0);
        gc.close();
        registry.close();
    }
}
