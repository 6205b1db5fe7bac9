package io.jgears;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Time, memory and input limits: a runaway script is stopped, jgears and the other sessions go on. */
class LimitsTest extends GearsTestBase {

    @Test
    void unboundedAllocationIsInterruptedByTheHeapGuard() throws Exception {
        long sessions = stat("sessions");
        long before = stat("memoryInterruptions");
        // A lower mark than the default 85% keeps the test quick: the guard works the same at any mark.
        call("RG.CONFIGSET", "ExecutionTimeout", "120000", "MemoryWatermark", "35");
        try {
            String e = pyError("x = []\nwhile True:\n    x.append('a' * 10**6)");
            assertTrue(e.contains("MemoryWatermark"), e);
        } finally {
            call("RG.CONFIGSET", "ExecutionTimeout", "0", "MemoryWatermark", "85");
        }
        assertEquals(before + 1, stat("memoryInterruptions"));
        assertEquals("PONG", call("PING"));
        assertEquals(List.of("still fine"), results("GB('ShardsIDReader').map(lambda x: 'still fine').run()"));
        awaitSessions(sessions);
        // The failed session was freed, so its gigabytes are garbage now.
        System.gc();
        long used = Runtime.getRuntime().totalMemory() - Runtime.getRuntime().freeMemory();
        assertTrue(used < Runtime.getRuntime().maxMemory() / 2, "heap after GC: " + (used >> 20) + " MB");
    }

    @Test
    void scriptsHaveATimeLimitRegistrationsDoNotByDefault() throws Exception {
        assertEquals(List.of(0L, 0L), call("RG.CONFIGGET", "ExecutionTimeout", "RegistrationTimeout"));
        call("RG.CONFIGSET", "ExecutionTimeout", "300");
        try {
            String e = pyError("while True:\n    pass");
            assertTrue(e.contains("ExecutionTimeout (300 ms)"), e);
            // A registration's execution may run longer than a script's limit.
            TestServer.redisDirect().del("lim:done");
            py("import time\nGB().foreach(lambda r: (time.sleep(0.6), execute('SET', 'lim:done', '1'))).register(prefix='lim:slow')", "ID", "lim");
            TestServer.redisDirect().set("lim:slow", "x");
            long deadline = System.currentTimeMillis() + 120_000;
            while (TestServer.redisDirect().get("lim:done") == null && System.currentTimeMillis() < deadline) {
                Thread.sleep(20);
            }
            assertEquals("1", TestServer.redisDirect().get("lim:done"));
            // With RegistrationTimeout set, a runaway registration is interrupted and counted.
            call("RG.CONFIGSET", "RegistrationTimeout", "300");
            py("GB().foreach(lambda r: [0 for _ in iter(int, 1)]).register(prefix='lim:loop')", "ID", "lim2");
            TestServer.redisDirect().set("lim:loop", "x");
            deadline = System.currentTimeMillis() + 120_000;
            String loop;
            do {
                Thread.sleep(50);
                loop = loopRegistration();
            } while (!loop.contains("numAborted, 1,") && System.currentTimeMillis() < deadline);
            // Counted as aborted; as in RedisGears an abort is not the registration's lastError.
            assertTrue(loop.contains("numAborted, 1,"), loop);
            assertEquals("PONG", call("PING"));
        } finally {
            call("RG.CONFIGSET", "ExecutionTimeout", "0", "RegistrationTimeout", "0");
            for (Object r : (List<?>) call("RG.DUMPREGISTRATIONS")) {
                String text = r.toString();
                if (text.contains("'sessionName':'lim'") || text.contains("'sessionName':'lim2'")) {
                    call("RG.UNREGISTER", (String) ((List<?>) r).get(1));
                }
            }
        }
    }

    @Test
    void registrationTimeoutLimitsEachExecutionNotTheBatchItRunsIn() throws Exception {
        // 12 events of one key (one lane, in order) that take 300 ms each run in one call into Python, 3.6 s
        // together: each is well under RegistrationTimeout (2 s), so none is aborted.
        var direct = TestServer.redisDirect();
        direct.del("lim:each:n");
        call("RG.CONFIGSET", "RegistrationTimeout", "2000");
        try {
            py("import time\n"
                    + "def slow(r):\n"
                    + "    time.sleep(0.3)\n"
                    + "    execute('INCR', 'lim:each:n')\n"
                    + "GB().foreach(slow).register(prefix='lim:each:k')", "ID", "lim-each");
            // In one Lua script: the notifications arrive together, so most events share a batch.
            direct.eval("for i = 1, 12 do redis.call('SET', 'lim:each:k', i) end", io.lettuce.core.ScriptOutputType.STATUS, new String[0]);
            long deadline = System.currentTimeMillis() + 120_000;
            String reg;
            do {
                Thread.sleep(50);
                reg = registrationOf("lim:each:k");
            } while (!reg.contains("numSuccess, 12,") && !reg.contains("numAborted, 1") && System.currentTimeMillis() < deadline);
            assertTrue(reg.contains("numSuccess, 12,") && reg.contains("numAborted, 0,"), reg);
            assertEquals("12", direct.get("lim:each:n"));
        } finally {
            call("RG.CONFIGSET", "RegistrationTimeout", "0");
            String reg = registrationOf("lim:each:k");
            if (!reg.isEmpty()) {
                call("RG.UNREGISTER", reg.substring(reg.indexOf(", ") + 2, reg.indexOf(",", reg.indexOf(", ") + 2)));
            }
        }
    }

    private String registrationOf(String prefix) {
        for (Object r : (List<?>) call("RG.DUMPREGISTRATIONS")) {
            if (r.toString().contains(prefix)) {
                return r.toString();
            }
        }
        return "";
    }

    @Test
    void maxScriptSizeIsConfigurable() {
        call("RG.CONFIGSET", "MaxScriptSize", "100");
        try {
            String e = pyError("x = '" + "a".repeat(200) + "'");
            assertTrue(e.contains("script too large: 206 bytes, MaxScriptSize is 100"), e);
            assertEquals("OK", py("x = 1"));
        } finally {
            call("RG.CONFIGSET", "MaxScriptSize", String.valueOf(16 * 1024 * 1024));
        }
        assertTrue(call("RG.CONFIGSET", "MemoryWatermark", "150").toString().contains("percent"));
    }

    private String loopRegistration() {
        for (Object r : (List<?>) call("RG.DUMPREGISTRATIONS")) {
            if (r.toString().contains("lim:loop")) {
                return r.toString();
            }
        }
        return "";
    }
}
