package io.jgears;

import io.jgears.redis.EmbeddedRedis;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Registrations survive FLUSHALL/FLUSHDB sent directly to Redis, as RedisGears' do: while jgears runs it
 * finds its state database emptied and stores its sessions again; while it is stopped, the copy under
 * --data brings them back at the next start. A jgears on another Redis does not take that copy.
 */
class FlushSurvivalTest {

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 120_000;
        while (!condition.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(50);
        }
    }

    private static JGears start(EmbeddedRedis redis, Path data) throws Exception {
        return JGears.start(new JGears.Options("127.0.0.1", EmbeddedRedis.freePort(), "redis://127.0.0.1:" + redis.port(),
                data, false, Map.of("PoolSize", "1"), 1 << 20, 1 << 10));
    }

    private static List<?> registrationIds(JGears jgears) throws Exception {
        try (RawResp c = new RawResp(jgears.port())) {
            List<?> regs = (List<?>) c.send("RG.DUMPREGISTRATIONS").read();
            return regs.stream().map(r -> ((List<?>) r).get(1)).toList();
        }
    }

    /** A write made directly to Redis triggers the registration: it is really running. */
    private static void assertTriggers(RedisCommands<String, String> direct, String key) throws InterruptedException {
        long before = direct.get("flush:seen") == null ? 0 : Long.parseLong(direct.get("flush:seen"));
        direct.set(key, "x");
        await("the registration to run for " + key, () -> {
            String seen = direct.get("flush:seen");
            return seen != null && Long.parseLong(seen) > before;
        });
    }

    @Test
    void registrationsSurviveFlushesSentDirectlyToRedis() throws Exception {
        Path data = Files.createTempDirectory("jgears-flush");
        EmbeddedRedis redis = EmbeddedRedis.start(Files.createTempDirectory("jgears-flush-redis"), false);
        EmbeddedRedis otherRedis = null;
        RedisClient client = RedisClient.create(RedisURI.create("127.0.0.1", redis.port()));
        try (StatefulRedisConnection<String, String> dc = client.connect();
             StatefulRedisConnection<String, String> sc = client.connect(
                     RedisURI.builder().withHost("127.0.0.1").withPort(redis.port()).withDatabase(15).build())) {
            RedisCommands<String, String> direct = dc.sync();
            RedisCommands<String, String> state = sc.sync();
            List<?> ids;
            try (JGears jgears = start(redis, data)) {
                try (RawResp c = new RawResp(jgears.port())) {
                    assertEquals("OK", c.send("RG.PYEXECUTE", "GB().foreach(lambda r: execute('INCR', 'flush:seen'))"
                            + ".register(prefix='flush:k:*')", "ID", "flushed").read());
                }
                ids = registrationIds(jgears);
                assertEquals(1, ids.size());
                assertEquals(List.of("flushed"), state.zrange("{jgears}:sessions", 0, -1));
                Path copy = data.resolve(JGears.SESSIONS_FILE);
                await("the sessions copy under --data", () -> Files.exists(copy));

                // FLUSHALL straight to Redis, then FLUSHDB of the state database: written back both times.
                direct.flushall();
                await("the session stored again after FLUSHALL", () -> state.zcard("{jgears}:sessions") == 1);
                state.flushdb();
                await("the session stored again after FLUSHDB", () -> state.zcard("{jgears}:sessions") == 1);
                assertTrue(state.hget("{jgears}:session:flushed", "code").contains("flush:seen"), "the code stored again");
                assertTriggers(direct, "flush:k:1");
            }

            // Restarted after the flushes: the registration is back, from the state database.
            try (JGears jgears = start(redis, data)) {
                assertEquals(ids, registrationIds(jgears));
                assertTriggers(direct, "flush:k:2");
            }

            // FLUSHALL while jgears is stopped: the copy under --data brings the registration back.
            direct.flushall();
            assertEquals(0, state.zcard("{jgears}:sessions"));
            try (JGears jgears = start(redis, data)) {
                assertEquals(ids, registrationIds(jgears));
                assertEquals(List.of("flushed"), state.zrange("{jgears}:sessions", 0, -1), "stored in Redis again");
                assertTriggers(direct, "flush:k:3");
            }

            // Another Redis with the same --data: the copy names the Redis it belongs to and is ignored.
            otherRedis = EmbeddedRedis.start(Files.createTempDirectory("jgears-flush-other"), false);
            try (JGears jgears = start(otherRedis, data)) {
                assertTrue(registrationIds(jgears).isEmpty(), "no foreign registrations");
            }
        } finally {
            client.shutdown();
            redis.close();
            if (otherRedis != null) {
                otherRedis.close();
            }
        }
    }
}
