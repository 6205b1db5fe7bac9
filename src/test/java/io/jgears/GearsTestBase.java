package io.jgears;

import io.jgears.redis.RedisCommandException;
import io.lettuce.core.api.StatefulRedisConnection;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertThrows;

/** Shared helpers: a binary Lettuce connection to jgears per test, and RG command shortcuts. */
abstract class GearsTestBase {
    protected StatefulRedisConnection<byte[], byte[]> conn;

    @BeforeEach
    void connect() {
        TestServer.get();
        conn = TestServer.connectRaw();
    }

    @AfterEach
    void disconnect() {
        conn.close();
    }

    protected Object call(String... args) {
        return TestServer.call(conn, args);
    }

    /** RG.PYEXECUTE code [options], the decoded reply. */
    protected Object py(String code, String... options) {
        String[] args = new String[options.length + 2];
        args[0] = "RG.PYEXECUTE";
        args[1] = code;
        System.arraycopy(options, 0, args, 2, options.length);
        return call(args);
    }

    /** RG.PYEXECUTE with run(): the results array. */
    @SuppressWarnings("unchecked")
    protected List<Object> results(String code) {
        List<Object> reply = (List<Object>) py(code);
        List<Object> errors = (List<Object>) reply.get(1);
        if (!errors.isEmpty()) {
            throw new AssertionError("unexpected errors: " + errors);
        }
        return (List<Object>) reply.get(0);
    }

    @SuppressWarnings("unchecked")
    protected List<Object> errors(String code) {
        return (List<Object>) ((List<Object>) py(code)).get(1);
    }

    /** The error reply of a command that must fail. */
    protected String error(String... args) {
        return assertThrows(RedisCommandException.class, () -> call(args)).getMessage();
    }

    protected String pyError(String code, String... options) {
        return assertThrows(RedisCommandException.class, () -> py(code, options)).getMessage();
    }

    /** Waits up to two minutes for a condition (the suite must pass on a busy machine). */
    protected static void await(String what, java.util.function.BooleanSupplier condition) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 120_000;
        while (!condition.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(10);
        }
    }

    /** Unregisters every registration of these sessions. */
    protected void unregisterSessions(String... sessionIds) {
        for (Object r : (List<?>) call("RG.DUMPREGISTRATIONS")) {
            List<?> reg = (List<?>) r;
            for (String id : sessionIds) {
                if (reg.toString().contains("'sessionName':'" + id + "'")) {
                    call("RG.UNREGISTER", (String) reg.get(1));
                }
            }
        }
    }

    /** A stat of RG.PYSTATS. */
    protected long stat(String name) {
        return Long.parseLong(statText(name));
    }

    /** A stat of RG.PYSTATS as its text (some are decimals). */
    protected String statText(String name) {
        List<?> stats = (List<?>) call("RG.PYSTATS");
        for (int i = 0; i < stats.size(); i += 2) {
            if (stats.get(i).equals(name)) {
                return String.valueOf(stats.get(i + 1));
            }
        }
        throw new AssertionError("no stat " + name);
    }

    /** The ids of the live sessions (RG.PYDUMPSESSIONS). */
    protected java.util.Set<String> sessionIds() {
        java.util.Set<String> ids = new java.util.TreeSet<>();
        for (Object s : (List<?>) call("RG.PYDUMPSESSIONS")) {
            List<?> fields = (List<?>) s;
            ids.add(String.valueOf(fields.get(fields.indexOf("ID") + 1)));
        }
        return ids;
    }

    /**
     * Waits until no session outside {@code before} is alive: what a test created is gone. Unlike a count, this
     * is not thrown off by a session of an earlier test class ending meanwhile (the test server is shared).
     */
    protected void awaitNoSessionsBut(java.util.Set<String> before) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 120_000;
        java.util.Set<String> extra;
        do {
            extra = new java.util.TreeSet<>(sessionIds());
            extra.removeAll(before);
            if (extra.isEmpty()) {
                return;
            }
            Thread.sleep(20);
        } while (System.currentTimeMillis() < deadline);
        org.junit.jupiter.api.Assertions.fail("sessions still alive: " + extra);
    }

    /** Waits until the number of live sessions is {@code expected}: releases happen right after replies. */
    protected void awaitSessions(long expected) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 120_000;
        while (stat("sessions") != expected && System.currentTimeMillis() < deadline) {
            Thread.sleep(20);
        }
        org.junit.jupiter.api.Assertions.assertEquals(expected, stat("sessions"), "live sessions");
    }
}
