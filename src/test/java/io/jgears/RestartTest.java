package io.jgears;

import io.jgears.redis.EmbeddedRedis;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * jgears as a real process in front of a Redis that outlives it: kill -9 it while a stream backlog is
 * being processed and keys are written, start it again, and check that the stored sessions, their
 * registrations (the UPGRADEd code) and time events are back and that every stream entry was processed
 * at least once.
 */
class RestartTest {
    private static final Path LOGS = Path.of("target", "restart-test");

    private static void await(String what, long millis, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        while (!condition.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(20);
        }
    }

    /** Starts jgears in its own JVM (the launcher's flags) against {@code redisPort}; returns once it answers. */
    private static Process startJGears(int port, int redisPort, String name) throws Exception {
        Files.createDirectories(LOGS);
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(Arrays.asList(Files.readString(Path.of("target", "jvm.args")).trim().split("\\s+")));
        cmd.addAll(List.of("-Xss16m", "-Xmx2g", "-cp", System.getProperty("java.class.path"), "io.jgears.cli.Main", "start",
                "--port", String.valueOf(port), "--redis", "redis://127.0.0.1:" + redisPort, "--pool-size", "1",
                "--data", LOGS.resolve("data").toString()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(LOGS.resolve(name + ".log").toFile()).start();
        RedisClient probe = RedisClient.create(RedisURI.builder().withHost("127.0.0.1").withPort(port)
                .withTimeout(Duration.ofSeconds(5)).build());
        try {
            await("jgears " + name + " to answer", 300_000, () -> {
                if (!p.isAlive()) {
                    throw new AssertionError("jgears " + name + " exited; see " + LOGS.resolve(name + ".log"));
                }
                try (StatefulRedisConnection<String, String> c = probe.connect()) {
                    return "PONG".equals(c.sync().ping());
                } catch (RuntimeException e) {
                    return false;
                }
            });
        } finally {
            probe.shutdown();
        }
        return p;
    }

    @Test
    void killedMidBacklogItComesBackWithEverythingRegisteredAndNoEntryLost() throws Exception {
        EmbeddedRedis redis = EmbeddedRedis.start(Files.createTempDirectory("jgears-restart"), true);
        RedisClient redisClient = RedisClient.create(RedisURI.create("127.0.0.1", redis.port()));
        Process first = null;
        Process second = null;
        try (StatefulRedisConnection<String, String> dc = redisClient.connect()) {
            RedisCommands<String, String> direct = dc.sync();
            int port = EmbeddedRedis.freePort();
            first = startJGears(port, redis.port(), "first");
            RedisClient jg = RedisClient.create(RedisURI.builder().withHost("127.0.0.1").withPort(port)
                    .withTimeout(Duration.ofSeconds(180)).build());
            try (StatefulRedisConnection<String, String> c = jg.connect()) {
                var j = c.sync();
                assertEquals("OK", pyexecute(j, "import time\n"
                        + "def handle(r):\n"
                        + "    time.sleep(0.004)\n"
                        + "    execute('HINCRBY', 'processed', r['id'], 1)\n"
                        + "GB('StreamReader').foreach(handle).register(prefix='orders', batch=10, duration=20)", "ID", "orders"));
                assertEquals("OK", pyexecute(j, "GB().foreach(lambda r: execute('INCR', 'v1seen')).register(prefix='user:*')", "ID", "keys"));
                assertEquals("OK", pyexecute(j, "GB().foreach(lambda r: execute('INCR', 'v2seen')).register(prefix='user:*')",
                        "ID", "keys", "DESCRIPTION", "second version", "UPGRADE"));
                assertEquals("OK", pyexecute(j, "registerTimer(50, lambda: execute('INCR', 'ticks'))", "ID", "ticker"));
            }
            jg.shutdown();
            List<String> ids = new ArrayList<>();
            for (int i = 0; i < 600; i++) {
                ids.add(direct.xadd("orders", Map.of("n", String.valueOf(i))));
            }
            for (int i = 0; i < 50; i++) {
                direct.set("user:" + i, "x");
            }
            await("part of the backlog processed", 60_000, () -> direct.hlen("processed") >= 100);
            first.destroyForcibly().waitFor();  // SIGKILL: no shutdown hook runs
            long processedAtKill = direct.hlen("processed");
            assertTrue(processedAtKill < ids.size(), "killed mid-backlog (" + processedAtKill + " of " + ids.size() + " done)");
            long v1 = parse(direct.get("v1seen"));

            second = startJGears(EmbeddedRedis.freePort(), redis.port(), "second");
            await("every entry processed at least once", 120_000, () -> direct.hlen("processed") == ids.size());
            for (String id : ids) {
                assertTrue(Long.parseLong(direct.hget("processed", id)) >= 1, id);
            }
            long ticks = parse(direct.get("ticks"));
            await("the time event ticks again", 120_000, () -> parse(direct.get("ticks")) > ticks);
            long v2 = parse(direct.get("v2seen"));
            direct.set("user:after", "x");
            await("the upgraded registration runs", 120_000, () -> parse(direct.get("v2seen")) > v2);
            Thread.sleep(200);
            assertEquals(v1, parse(direct.get("v1seen")), "the replaced version did not come back");
            try (StatefulRedisConnection<String, String> sc = redisClient.connect(
                    RedisURI.builder().withHost("127.0.0.1").withPort(redis.port()).withDatabase(15).build())) {
                // jgears' own state is in its state database (StateDatabase 15), not among the clients' keys.
                var state = sc.sync();
                assertEquals(List.of("keys", "orders", "ticker"),
                        state.zrange("{jgears}:sessions", 0, -1).stream().sorted().toList(), "stored sessions");
                assertEquals("second version", state.hget("{jgears}:session:keys", "description"));
            }
            assertEquals(List.of(), direct.keys("{jgears}*"), "nothing of jgears' in the clients' database");
        } finally {
            for (Process p : new Process[]{first, second}) {
                if (p != null) {
                    p.destroyForcibly().waitFor();
                }
            }
            redisClient.shutdown();
            redis.close();
        }
    }

    private static long parse(String s) {
        return s == null ? 0 : Long.parseLong(s);
    }

    private static String pyexecute(RedisCommands<String, String> c, String code, String... options) {
        var args = new io.lettuce.core.protocol.CommandArgs<>(io.lettuce.core.codec.StringCodec.UTF8).add(code);
        for (String o : options) {
            args.add(o);
        }
        return c.dispatch(PYEXECUTE, new io.lettuce.core.output.StatusOutput<>(io.lettuce.core.codec.StringCodec.UTF8), args);
    }

    private static final io.lettuce.core.protocol.ProtocolKeyword PYEXECUTE = new io.lettuce.core.protocol.ProtocolKeyword() {
        @Override
        public byte[] getBytes() {
            return "RG.PYEXECUTE".getBytes();
        }

        @Override
        public String toString() {
            return "RG.PYEXECUTE";
        }
    };
}
