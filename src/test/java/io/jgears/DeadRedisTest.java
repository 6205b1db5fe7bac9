package io.jgears;

import io.jgears.redis.EmbeddedRedis;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * jgears in front of a Redis it does not own (--redis), which then dies and comes back: clients get clear
 * errors, jgears keeps answering, and works again once Redis is back.
 */
class DeadRedisTest {

    @Test
    void clearErrorsWhileRedisIsDownAndRecoveryAfter() throws Exception {
        Path dir = Files.createTempDirectory("jgears-dead");
        int redisPort = EmbeddedRedis.freePort();
        Process redis = startRedis(redisPort, dir);
        try (JGears jgears = JGears.start(new JGears.Options("127.0.0.1", EmbeddedRedis.freePort(),
                "redis://127.0.0.1:" + redisPort, dir, false, Map.of("PoolSize", "1"), 1 << 20, 1 << 10))) {
            try (RawResp c = new RawResp(jgears.port())) {
                assertEquals("OK", c.send("SET", "dead:k", "1").read());
                assertEquals("OK", c.send("RG.PYEXECUTE", "GB().foreach(lambda r: execute('INCR', 'dead:n'))"
                        + ".register(prefix='dead:e:*')", "ID", "gap").read());
            }
            redis.destroyForcibly().waitFor();
            try (RawResp c = new RawResp(jgears.port())) {
                Object reply = c.send("GET", "dead:k").read();
                assertTrue(String.valueOf(reply).startsWith("-ERR jgears cannot reach Redis"), String.valueOf(reply));
                Object py = c.send("RG.PYEXECUTE", "GB('ShardsIDReader').map(lambda x: execute('GET', 'dead:k')).run()").read();
                assertTrue(String.valueOf(py).contains("Traceback") && String.valueOf(py).contains("gears.error: ERR jgears could not run"),
                        "execute() raised inside the step: " + py);
                Object async = c.send("RG.PYEXECUTE", "async def f(x):\n    return await execute_async('GET', 'dead:k')\n"
                        + "GB('ShardsIDReader').map(f).run()").read();
                assertTrue(String.valueOf(async).contains("could not run the command on Redis"),
                        "an awaited execute_async() raised: " + async);
                Object batch = c.send("RG.PYEXECUTE", "GB().count().run('dead:*')").read();
                assertTrue(String.valueOf(batch).contains("Redis"), "a KeysReader run ends with the reader's error: " + batch);
                assertEquals(List.of(1000L), c.send("RG.CONFIGGET", "MaxExecutions").read(), "jgears itself still answers");
            }
            redis = startRedis(redisPort, dir);
            try (RawResp c = new RawResp(jgears.port())) {
                assertEquals("OK", c.send("SET", "dead:k", "2").read());
                long deadline = System.currentTimeMillis() + 120_000;
                Object py;
                do {
                    Thread.sleep(200);
                    py = c.send("RG.PYEXECUTE", "GB('ShardsIDReader').map(lambda x: execute('GET', 'dead:k')).run()").read();
                } while (!py.equals(List.of(List.of("2"), List.of())) && System.currentTimeMillis() < deadline);
                assertEquals(List.of(List.of("2"), List.of()), py, "execute() works again after Lettuce reconnected");

                // Key events: the outage is reported as a gap, and events trigger again (the new Redis
                // process had its notification flags reset; jgears set them again).
                deadline = System.currentTimeMillis() + 120_000;
                Object n;
                int i = 0;
                do {
                    c.send("SET", "dead:e:" + i++, "x").read();
                    Thread.sleep(100);
                    n = c.send("GET", "dead:n").read();
                } while (n == null && System.currentTimeMillis() < deadline);
                assertTrue(n != null, "a key event triggered the registration after the outage");
                String dump = String.valueOf(c.send("RG.DUMPREGISTRATIONS").read());
                assertTrue(dump.contains("notificationGaps, 1"), dump);
            }
        } finally {
            redis.destroyForcibly().waitFor();
        }
    }

    private static Process startRedis(int port, Path dir) throws Exception {
        Process p = new ProcessBuilder(EmbeddedRedis.findExecutable().orElseThrow().toString(), "--port", String.valueOf(port),
                "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir.toString())
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectErrorStream(true).start();
        long deadline = System.currentTimeMillis() + 120_000;
        while (System.currentTimeMillis() < deadline) {
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
                return p;
            } catch (java.io.IOException e) {
                Thread.sleep(20);
            }
        }
        throw new IllegalStateException("redis-server did not start");
    }
}
