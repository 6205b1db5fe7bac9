package io.jgears.bench;

import io.jgears.JGears;
import io.jgears.gears.GearsEngine;
import io.jgears.python.SubInterpreter;
import io.jgears.redis.EmbeddedRedis;
import io.jgears.redis.RedisBackend;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.ByteArrayCodec;

import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The foundation figures: sub-interpreter creation (cold and from the warm pool), retained heap per idle
 * session, and RG.PYEXECUTE round-trip latency. Runs jgears in this JVM with an embedded Redis; prints a
 * Markdown section to standard output.
 */
public final class FoundationBench {
    public static void main(String[] args) throws Exception {
        int calls = args.length > 0 ? Integer.parseInt(args[0]) : 1000;
        Path data = Files.createTempDirectory("jgears-bench");
        int port = EmbeddedRedis.freePort();
        try (JGears jgears = JGears.start(new JGears.Options("127.0.0.1", port, null, data, false,
                Map.of("PoolSize", "4"), 512 << 20, 1 << 20))) {
            GearsEngine engine = jgears.engine();
            StringBuilder md = new StringBuilder();
            md.append(String.format(Locale.ROOT, "Runtime: %s, JIT %s; %d cores; JVM %s%n%n",
                    engine.python().implementationName(), engine.python().jitEnabled() ? "on" : "off",
                    Runtime.getRuntime().availableProcessors(), System.getProperty("java.version")));

            // Cold: a context created on the calling thread (runtime loaded, stdlib modules imported) + first eval.
            double[] cold = new double[20];
            for (int i = 0; i < cold.length; i++) {
                long t = System.nanoTime();
                SubInterpreter si = engine.python().create(() -> null);
                si.enter(s -> s.execScript("x = 1"));
                cold[i] = (System.nanoTime() - t) / 1e6;
                si.close();
            }
            // From the pool: take a ready context + first eval, then let the pool refill.
            double[] pooled = new double[20];
            for (int i = 0; i < pooled.length; i++) {
                engine.pool().awaitFull(60, java.util.concurrent.TimeUnit.SECONDS);
                long t = System.nanoTime();
                SubInterpreter si = engine.pool().take();
                si.enter(s -> s.execScript("x = 1"));
                pooled[i] = (System.nanoTime() - t) / 1e6;
                si.close();
            }
            md.append("| sub-interpreter | median | p90 | min |\n|---|---|---|---|\n");
            md.append(row("cold: create + first eval", cold));
            md.append(row("from the warm pool: take + first eval", pooled));

            // Where a call's time goes: a first script in a fresh context against the same in a used one.
            double[] first = new double[20];
            double[] again = new double[20];
            double[] closing = new double[20];
            for (int i = 0; i < first.length; i++) {
                SubInterpreter si = engine.python().create(() -> null);
                long t = System.nanoTime();
                si.enter(s -> s.execScript("y = sorted([3, 1, 2])"));
                first[i] = (System.nanoTime() - t) / 1e6;
                t = System.nanoTime();
                si.enter(s -> s.execScript("y = sorted([3, 1, 2])"));
                again[i] = (System.nanoTime() - t) / 1e6;
                t = System.nanoTime();
                si.close();
                closing[i] = (System.nanoTime() - t) / 1e6;
            }
            md.append(row("a script's first run in a fresh context", first));
            md.append(row("the same script again in that context", again));
            md.append(row("closing a used context", closing));

            // Retained heap per idle session: hold N live contexts, compare heap after full GCs. Earlier rounds
            // warm the engine's shared caches (code shared by all contexts); the last one is reported.
            engine.pool().resize(0);
            int n = 40;
            long before = 0;
            long after = 0;
            long freed = 0;
            List<String> baselines = new ArrayList<>();
            for (int round = 0; round < 4; round++) {
                before = usedAfterGc();
                baselines.add(String.format(Locale.ROOT, "%.0f", before / (double) (1 << 20)));
                List<SubInterpreter> idle = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    SubInterpreter si = engine.python().create(() -> null);
                    si.enter(s -> s.execScript("x = [i for i in range(100)]"));
                    idle.add(si);
                }
                after = usedAfterGc();
                idle.forEach(SubInterpreter::close);
                freed = usedAfterGc();
            }
            md.append(String.format(Locale.ROOT, "%nRetained heap per idle session (%d live contexts, last of 4 rounds): %.1f MB. "
                            + "Heap in use after full GCs at the start of each round (MB): %s; after the last round: %.0f MB.%n",
                    n, (after - before) / (double) n / (1 << 20), String.join(", ", baselines), freed / (double) (1 << 20)));
            engine.pool().resize(4);
            engine.pool().awaitFull(120, java.util.concurrent.TimeUnit.SECONDS);

            // RG.PYEXECUTE round trips over loopback with Lettuce, one client. Each call is a new session, so
            // back to back the rate is bounded by how fast the pool refills; then again with the pool kept full.
            RedisClient client = RedisClient.create(RedisURI.create("127.0.0.1", jgears.port()));
            try (StatefulRedisConnection<byte[], byte[]> c = client.connect(ByteArrayCodec.INSTANCE)) {
                List<byte[]> cmd = List.of("RG.PYEXECUTE".getBytes(), "GB('ShardsIDReader').run()".getBytes(StandardCharsets.UTF_8));
                double[] lat = new double[calls];
                long start = System.nanoTime();
                for (int i = 0; i < calls; i++) {
                    long t = System.nanoTime();
                    RedisBackend.dispatch(c, cmd);
                    lat[i] = (System.nanoTime() - t) / 1e6;
                }
                double secs = (System.nanoTime() - start) / 1e9;
                Arrays.sort(lat);
                md.append(String.format(Locale.ROOT, "%nRG.PYEXECUTE \"GB('ShardsIDReader').run()\", %d calls back to back, one client: "
                                + "p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms; %.0f calls/s (every call a new sub-interpreter).%n",
                        calls, pct(lat, 50), pct(lat, 90), pct(lat, 99), lat[lat.length - 1], calls / secs));
                double[] paced = new double[Math.min(calls, 200)];
                for (int i = 0; i < paced.length; i++) {
                    engine.pool().awaitFull(60, java.util.concurrent.TimeUnit.SECONDS);
                    long t = System.nanoTime();
                    RedisBackend.dispatch(c, cmd);
                    paced[i] = (System.nanoTime() - t) / 1e6;
                }
                Arrays.sort(paced);
                md.append(String.format(Locale.ROOT, "The same with the pool full before each call (%d calls): p50 %.2f ms, p99 %.2f ms.%n",
                        paced.length, pct(paced, 50), pct(paced, 99)));

                // RG.ABORTEXECUTION of `while True: pass`-style loops: from sending the abort to the
                // execution's result being available (GETRESULTSBLOCKING returning).
                double[] abort = new double[20];
                for (int i = 0; i < abort.length; i++) {
                    Object reply = RedisBackend.dispatch(c, List.of("RG.PYEXECUTE".getBytes(),
                            "GB('ShardsIDReader').foreach(lambda x: [0 for _ in iter(int, 1)]).run()".getBytes(),
                            "UNBLOCKING".getBytes()));
                    String eid = reply instanceof byte[] b ? new String(b, StandardCharsets.UTF_8) : String.valueOf(reply);
                    Thread.sleep(300);
                    long t = System.nanoTime();
                    RedisBackend.dispatch(c, List.of("RG.ABORTEXECUTION".getBytes(), eid.getBytes()));
                    RedisBackend.dispatch(c, List.of("RG.GETRESULTSBLOCKING".getBytes(), eid.getBytes()));
                    abort[i] = (System.nanoTime() - t) / 1e6;
                    RedisBackend.dispatch(c, List.of("RG.DROPEXECUTION".getBytes(), eid.getBytes()));
                }
                Arrays.sort(abort);
                md.append(String.format(Locale.ROOT, "RG.ABORTEXECUTION of a busy loop until its result is readable (%d aborts): "
                        + "p50 %.2f ms, max %.2f ms.%n", abort.length, pct(abort, 50), abort[abort.length - 1]));
            } finally {
                client.shutdown();
            }
            System.out.print(md);
        }
    }

    private static String row(String name, double[] ms) {
        double[] s = ms.clone();
        Arrays.sort(s);
        return String.format(Locale.ROOT, "| %s | %.1f ms | %.1f ms | %.1f ms |%n", name, pct(s, 50), pct(s, 90), s[0]);
    }

    private static double pct(double[] sorted, int p) {
        int i = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    private static long usedAfterGc() throws InterruptedException {
        for (int i = 0; i < 4; i++) {
            System.gc();
            Thread.sleep(100);
        }
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }
}
