package io.jgears;

import io.lettuce.core.api.StatefulRedisConnection;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Short RG.TRIGGER calls and shared-mode scripts run on the client's event loop once their call site has
 * a streak of short calls (InlineGate); slow ones go back to the execution threads, and a runaway inline
 * call can still be aborted from another connection.
 */
class InlineCallsTest extends GearsTestBase {

    /**
     * 50 ms rather than the default 0.5: with a cold JIT a call takes 1-12 ms here, and a loaded CI machine
     * must not keep the gate shut. 'slow' calls take 150 ms.
     */
    @org.junit.jupiter.api.BeforeEach
    void generousLimit() {
        call("RG.CONFIGSET", "InlineExecutionMicros", "50000");
    }

    @org.junit.jupiter.api.AfterEach
    void defaultLimit() {
        call("RG.CONFIGSET", "InlineExecutionMicros", "500");
    }

    private static final String TRIGGER = """
            def f(a):
                if a[1] == 'slow':
                    import time
                    end = time.monotonic() + 0.15
                    while time.monotonic() < end:
                        pass
                elif a[1] == 'forever':
                    while True:
                        pass
                return a[1]
            GB('CommandReader').map(f).register(trigger='%s')
            """;

    @Test
    void shortTriggersRunInlineAndSlowOnesGoBackToExecutionThreads() {
        assertEquals("OK", py(TRIGGER.formatted("inline_a")));
        long inline0 = stat("inlineCalls");
        for (int i = 0; i < 100; i++) {
            assertEquals(List.of("x" + i), call("RG.TRIGGER", "inline_a", "x" + i));
        }
        long inline1 = stat("inlineCalls");
        assertTrue(inline1 - inline0 >= 50, "after a streak of short calls they run inline: " + (inline1 - inline0));

        long closings0 = stat("inlineGateClosings");
        for (int i = 0; i < 4; i++) {
            assertEquals(List.of("slow"), call("RG.TRIGGER", "inline_a", "slow"));
        }
        assertEquals(closings0 + 1, stat("inlineGateClosings"), "two slow calls in a row close the gate");
        long inline2 = stat("inlineCalls");
        assertTrue(inline2 - inline1 <= 2, "at most the slow calls that closed it ran inline: " + (inline2 - inline1));
        for (int i = 0; i < 5; i++) {
            assertEquals(List.of("slow"), call("RG.TRIGGER", "inline_a", "slow"));
            assertEquals(List.of("y"), call("RG.TRIGGER", "inline_a", "y"));
        }
        assertEquals(inline2, stat("inlineCalls"), "a closed gate needs a new streak of short calls");
    }

    @Test
    void aRunawayInlineTriggerIsAbortedFromAnotherConnection() throws Exception {
        assertEquals("OK", py(TRIGGER.formatted("inline_b")));
        for (int i = 0; i < 100; i++) {
            call("RG.TRIGGER", "inline_b", "x");
        }
        long inline0 = stat("inlineCalls");
        long closings0 = stat("inlineGateClosings");
        try (StatefulRedisConnection<byte[], byte[]> runaway = TestServer.connectRaw();
             StatefulRedisConnection<byte[], byte[]> admin = TestServer.connectRaw()) {
            CompletableFuture<Object> reply = CompletableFuture.supplyAsync(
                    () -> TestServer.call(runaway, "RG.TRIGGER", "inline_b", "forever"));
            String running = null;
            long deadline = System.currentTimeMillis() + 120_000;
            while (running == null && System.currentTimeMillis() < deadline) {
                for (Object e : (List<?>) TestServer.call(admin, "RG.DUMPEXECUTIONS")) {
                    List<?> fields = (List<?>) e;
                    if ("running".equals(fields.get(3)) && Long.valueOf(1).equals(fields.get(5))) {
                        running = String.valueOf(fields.get(1));
                    }
                }
                Thread.sleep(20);
            }
            assertTrue(running != null, "the runaway execution is listed");
            assertEquals(inline0 + 1, stat("inlineCalls"), "it runs inline");
            Thread.sleep(300);  // longer than any GC pause: the overrun closes the gate on its own
            assertEquals("OK", TestServer.call(admin, "RG.ABORTEXECUTION", running));
            Object out = reply.handle((r, error) -> error != null ? error.getCause().getMessage() : r).get(120, TimeUnit.SECONDS);
            assertTrue(String.valueOf(out).contains("aborted"), "the caller gets an error: " + out);
            assertEquals("PONG", TestServer.call(runaway, "PING"), "its connection is served again");
        }
        assertEquals(closings0 + 1, stat("inlineGateClosings"), "the long call closed the gate");
        long inline1 = stat("inlineCalls");
        assertEquals(List.of("z"), call("RG.TRIGGER", "inline_b", "z"));
        assertEquals(inline1, stat("inlineCalls"), "the next call is handed off");
    }

    @Test
    void sharedScriptsRunInlineOnceTheirTextRanShort() {
        String code = "GB('ShardsIDReader').map(lambda x: 'inline-shared').run()";
        long inline0 = stat("inlineCalls");
        // Until 50 of them ran inline (100 calls on a quiet machine): on a loaded one, stalls over the limit
        // close the gate now and then, and each closing doubles the streak that reopens it.
        long deadline = System.currentTimeMillis() + 120_000;
        int calls = 0;
        while (calls < 100 || (stat("inlineCalls") - inline0 < 50 && System.currentTimeMillis() < deadline)) {
            assertEquals(List.of(List.of("inline-shared"), List.of()), py(code, "ISOLATION", "shared"));
            calls++;
        }
        assertTrue(stat("inlineCalls") - inline0 >= 50, "shared one-off scripts run inline: "
                + (stat("inlineCalls") - inline0) + " of " + calls);
        long inline1 = stat("inlineCalls");
        py("GB('ShardsIDReader').map(lambda x: 'another text').run()", "ISOLATION", "shared");
        py(code, "ISOLATION", "interpreter");
        assertEquals(inline1, stat("inlineCalls"), "a new text, and interpreter mode, are handed off");
    }
}
