package io.jgears;

import io.jgears.redis.EmbeddedRedis;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.Socket;
import java.nio.file.Files;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * jgears with the redis-server it started: a Redis that dies is started again (same port and data),
 * and SHUTDOWN through jgears stops Redis and jgears, as SHUTDOWN stops a Redis with its modules.
 */
class ShutdownTest {

    @Test
    void aDeadEmbeddedRedisIsRestartedAndShutdownStopsBoth() throws Exception {
        JGears jgears = JGears.start(new JGears.Options("127.0.0.1", EmbeddedRedis.freePort(), null,
                Files.createTempDirectory("jgears-shutdown"), true, Map.of("PoolSize", "1"), 1 << 20, 1 << 10));
        try {
            EmbeddedRedis redis = jgears.embeddedRedis();
            long firstPid = redis.pid();
            try (RawResp c = new RawResp(jgears.port())) {
                assertEquals("OK", c.send("SET", "shutdown:k", "1").read());
            }
            ProcessHandle.of(firstPid).orElseThrow().destroyForcibly();
            Object reply = null;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (System.nanoTime() < deadline) {
                try (RawResp c = new RawResp(jgears.port())) {
                    reply = c.send("PING").read();
                    if ("PONG".equals(reply) && redis.pid() != firstPid) {
                        break;
                    }
                }
                Thread.sleep(100);
            }
            assertEquals("PONG", reply, "jgears answers through the restarted Redis");
            assertNotEquals(firstPid, redis.pid(), "a new redis-server process");

            try (RawResp c = new RawResp(jgears.port())) {
                // Nothing to abort: Redis' own error, and both keep running.
                assertTrue(String.valueOf(c.send("SHUTDOWN", "ABORT").read()).startsWith("-ERR"));
                assertEquals("PONG", c.send("PING").read());
                long redisPid = redis.pid();
                c.send("SHUTDOWN", "NOSAVE");
                assertEquals(0, jgears.stopped().get(60, TimeUnit.SECONDS), "jgears stopped with exit code 0");
                assertEquals(redisPid, redis.pid(), "the supervisor did not start Redis again during SHUTDOWN");
                assertFalse(ProcessHandle.of(redisPid).map(ProcessHandle::isAlive).orElse(false), "redis-server stopped");
            }
            assertThrows(IOException.class, () -> new Socket("127.0.0.1", jgears.port()).close(), "jgears no longer listens");
        } finally {
            jgears.close();
        }
    }

    /** A redis-server that keeps dying is given up on: jgears stops with exit code 1 (and says why in the log). */
    @Test
    void aRedisThatKeepsDyingStopsJgearsWithCode1() throws Exception {
        JGears jgears = JGears.start(new JGears.Options("127.0.0.1", EmbeddedRedis.freePort(), null,
                Files.createTempDirectory("jgears-dying"), false, Map.of("PoolSize", "1"), 1 << 20, 1 << 10));
        try {
            EmbeddedRedis redis = jgears.embeddedRedis();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (!jgears.stopped().isDone() && System.nanoTime() < deadline) {
                long pid = redis.pid();
                ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
                // Until it is running again (a new pid) or jgears gave up.
                while (redis.pid() == pid && !jgears.stopped().isDone() && System.nanoTime() < deadline) {
                    Thread.sleep(20);
                }
            }
            assertEquals(1, jgears.stopped().get(60, TimeUnit.SECONDS), "exit code 1: its Redis could not be kept running");
            assertThrows(IOException.class, () -> new Socket("127.0.0.1", jgears.port()).close(), "jgears no longer listens");
        } finally {
            jgears.close();
        }
    }

    /**
     * SHUTDOWN while the warm pool is still filling (a pool far bigger than can fill meanwhile): start-up
     * returns and jgears stops, rather than waiting for the pool.
     */
    @Test
    void shutdownBeforeThePoolIsFullStopsStartUp() throws Exception {
        int port = EmbeddedRedis.freePort();
        JGears jgears = new JGears();
        java.util.concurrent.CompletableFuture<Void> started = java.util.concurrent.CompletableFuture.runAsync(() -> {
            try {
                jgears.startParts(new JGears.Options("127.0.0.1", port, null, Files.createTempDirectory("jgears-shutdown-early"),
                        false, Map.of("PoolSize", "500"), 1 << 20, 1 << 10));
            } catch (Exception e) {
                throw new java.util.concurrent.CompletionException(e);
            }
        });
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            Object pong = null;
            while (!"PONG".equals(pong) && System.nanoTime() < deadline) {
                try (RawResp c = new RawResp(port)) {
                    pong = c.send("PING").read();
                } catch (IOException e) {
                    Thread.sleep(50);
                }
            }
            assertEquals("PONG", pong, "jgears answers before its pool is full");
            long redisPid = jgears.embeddedRedis().pid();
            try (RawResp c = new RawResp(port)) {
                c.send("SHUTDOWN", "NOSAVE");
                // Start-up would wait for 500 contexts (minutes); it returns once jgears has stopped.
                started.get(60, TimeUnit.SECONDS);
                assertEquals(0, jgears.stopped().get(60, TimeUnit.SECONDS));
            }
            assertTrue(jgears.engine().pool().ready() < 500, "stopped before the pool was full");
            assertFalse(ProcessHandle.of(redisPid).map(ProcessHandle::isAlive).orElse(false), "redis-server stopped");
        } finally {
            jgears.close();
        }
    }

    /**
     * A stream handler that waits in a loop for a key that never goes away does not keep jgears from
     * stopping: closing cancels a context whose thread does not leave (it used to wait for it forever, and
     * SIGTERM never finished).
     */
    @Test
    void aHandlerWaitingInALoopDoesNotKeepJgearsFromStopping() throws Exception {
        JGears jgears = JGears.start(new JGears.Options("127.0.0.1", EmbeddedRedis.freePort(), null,
                Files.createTempDirectory("jgears-stuck-handler"), false, Map.of("PoolSize", "1"), 1 << 20, 1 << 10));
        java.util.concurrent.CompletableFuture<Void> closed;
        try (RawResp c = new RawResp(jgears.port())) {
            assertEquals("OK", c.send("SET", "stuck:hold", "1").read());
            assertEquals("OK", c.send("RG.PYEXECUTE", "import time\n"
                    + "def wait(r):\n"
                    + "    execute('SET', 'stuck:entered', '1')\n"
                    + "    while execute('EXISTS', 'stuck:hold') == 1:\n"
                    + "        time.sleep(0.05)\n"
                    + "GB('StreamReader').foreach(wait).register(prefix='stuck:s')").read());
            c.send("XADD", "stuck:s", "*", "a", "b").read();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!"1".equals(c.send("GET", "stuck:entered").read()) && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertEquals("1", c.send("GET", "stuck:entered").read(), "the handler is in its loop");
        } finally {
            closed = java.util.concurrent.CompletableFuture.runAsync(jgears::close);
        }
        // Bounded only so that a hang fails the test instead of the build: closing takes seconds.
        closed.get(120, TimeUnit.SECONDS);
        assertThrows(IOException.class, () -> new Socket("127.0.0.1", jgears.port()).close(), "jgears no longer listens");
    }
}
