package io.jgears;

import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Key events with plain execute() when many run at once (the lanes of a registration: virtual threads on
 * one carrier per context, their round trips pipelined). Bursts go straight into the real Redis behind
 * jgears, pipelined, so events pile up and every batch fills its lanes.
 */
@org.junit.jupiter.api.TestMethodOrder(org.junit.jupiter.api.MethodOrderer.OrderAnnotation.class)
class KeyEventLanesTest extends GearsTestBase {

    // Carrier lanes are the default; 64 lanes so that a test's bursts fill them. Tests of the platform lanes
    // (where carrier lanes are off) turn them off for the contexts their registrations get (read per context).
    private static String concurrencyBefore;

    @org.junit.jupiter.api.BeforeAll
    static void carrierLanes() {
        try (var c = TestServer.connectRaw()) {
            concurrencyBefore = String.valueOf(((List<?>) TestServer.call(c, "RG.CONFIGGET", "KeyEventConcurrency")).getFirst());
        }
        setConcurrency("64");
    }

    private static void setConcurrency(String lanes) {
        try (var c = TestServer.connectRaw()) {
            TestServer.call(c, "RG.CONFIGSET", "KeyEventConcurrency", lanes);
        }
    }

    @org.junit.jupiter.api.AfterAll
    static void defaultLanes() {
        setConcurrency(concurrencyBefore);
    }

    private static RedisCommands<String, String> direct() {
        return TestServer.redisDirect();
    }

    private static void await(String what, BooleanSupplier condition, long millis) throws InterruptedException {
        long deadline = millis == Long.MAX_VALUE ? Long.MAX_VALUE : System.currentTimeMillis() + millis;
        while (!condition.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(20);
        }
    }

    /** Sends the commands to Redis itself in pipelined writes of 1000 and waits for every reply. */
    /** {@code SET <keyPrefix>0 .. <keyPrefix>(n-1) value}, pipelined straight into Redis. */
    private static void burstSets(String keyPrefix, int n, String value) throws Exception {
        List<String[]> commands = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            commands.add(new String[]{"SET", keyPrefix + i, value});
        }
        burst(commands);
    }

    private static void burst(List<String[]> commands) throws Exception {
        RedisClient client = RedisClient.create(TestServer.get().redisUri());
        try (StatefulRedisConnection<String, String> c = client.connect()) {
            c.setAutoFlushCommands(false);
            var async = c.async();
            List<RedisFuture<?>> replies = new ArrayList<>();
            for (String[] cmd : commands) {
                replies.add(cmd[0].equals("SET") ? async.set(cmd[1], cmd[2]) : async.append(cmd[1], cmd[2]));
                if (replies.size() % 1000 == 0) {
                    c.flushCommands();
                }
            }
            c.flushCommands();
            for (RedisFuture<?> r : replies) {
                r.get();
            }
        } finally {
            client.shutdown();
        }
    }

    private Map<String, Object> registrationData(String sessionId) {
        for (Object r : (List<?>) call("RG.DUMPREGISTRATIONS")) {
            Map<String, Object> m = pairs((List<?>) r);
            if (m.get("PD").toString().contains("'sessionName':'" + sessionId + "'")) {
                return pairs((List<?>) m.get("RegistrationData"));
            }
        }
        throw new AssertionError("no registration of " + sessionId);
    }

    private static Map<String, Object> pairs(List<?> flat) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i + 1 < flat.size(); i += 2) {
            m.put(String.valueOf(flat.get(i)), flat.get(i + 1));
        }
        return m;
    }

    private long stat(Map<String, Object> data, String name) {
        return Long.parseLong(String.valueOf(data.get(name)));
    }

    private void unregister(String sessionId) throws InterruptedException {
        for (Object r : (List<?>) call("RG.DUMPREGISTRATIONS")) {
            Map<String, Object> m = pairs((List<?>) r);
            if (m.get("PD").toString().contains("'sessionName':'" + sessionId + "'")) {
                call("RG.UNREGISTER", (String) m.get("id"));
            }
        }
        await(sessionId + " freed", () -> !(((List<?>) call("RG.PYDUMPSESSIONS", "SESSIONS", sessionId)).getFirst() instanceof List));
    }

    @Test
    void eachKeysEventsRunInOrderAndSeeTheirOwnRepliesWhileManyRunAtOnce() throws Exception {
        eachKeyInOrder("lanes-order");
    }

    @Test
    void platformLanesTheDefaultKeepEachKeysOrder() throws Exception {
        // With -Djgears.carrierLanes=false the lanes are platform threads, chosen when a context first runs
        // lanes: this registration's context is a new one.
        onPlatformLanes(() -> eachKeyInOrder("lanes-platform"));
    }

    private interface Body {
        void run() throws Exception;
    }

    private static void onPlatformLanes(Body body) throws Exception {
        System.setProperty("jgears.carrierLanes", "false");
        try {
            setConcurrency("4");
            body.run();
        } finally {
            System.clearProperty("jgears.carrierLanes");
            setConcurrency("64");
        }
    }

    @Test
    void deepRecursionInALaneReachesWhatAnExecutionThreadReaches() throws Exception {
        // A lane runs on its carrier's stack: it must be as deep as an execution thread's, or Python code
        // that recurses a few hundred frames fails in a lane (StackOverflow) and works everywhere else.
        direct().del("rc:n");
        py("import sys\n"
                + "def depth(n):\n"
                + "    return 0 if n == 0 else 1 + depth(n - 1)\n"
                + "def deep(r):\n"
                + "    execute('INCRBY', 'rc:n', depth(sys.getrecursionlimit() - 50))\n"
                + "GB().foreach(deep).register(prefix='rc:k:*', eventTypes=['set'])", "ID", "lanes-recursion");
        int events = 2000;
        burstSets("rc:k:", events, "v");
        await(events + " events", () -> stat(registrationData("lanes-recursion"), "numSuccess")
                + stat(registrationData("lanes-recursion"), "numFailures") >= events);
        Map<String, Object> data = registrationData("lanes-recursion");
        String lastError = String.valueOf(data.get("lastError"));
        assertEquals(0, stat(data, "numFailures"), "failures, the last: ..." + lastError.substring(Math.max(0, lastError.length() - 200)));
        long limit = Long.parseLong(String.valueOf(results("import sys\nGB('ShardsIDReader').map(lambda x: sys.getrecursionlimit()).run()").getFirst()));
        assertEquals(events * (limit - 50), Long.parseLong(direct().get("rc:n")));
        unregister("lanes-recursion");
    }

    private void eachKeyInOrder(String session) throws Exception {
        // 300 keys, 40 writes each (set, append, set, ...), interleaved: each event INCRs its key's counter
        // and logs its event with the counter execute() answered. In order per key: entry i is "set:i+1"
        // for even i, "append:i+1" for odd (the value is read when the batch runs, so it cannot tell).
        int keys = 300;
        int writes = 40;
        for (int k = 0; k < keys; k++) {
            direct().del("lo:log:" + k, "lo:n:" + k, "lo:k:" + k);
        }
        py("def log(r):\n"
                + "    k = r['key'].split(':')[2]\n"
                + "    n = execute('INCR', 'lo:n:' + k)\n"
                + "    execute('RPUSH', 'lo:log:' + k, '%s:%d' % (r['event'], n))\n"
                + "GB().foreach(log).register(prefix='lo:k:*', eventTypes=['set', 'append'])", "ID", session);
        List<String[]> commands = new ArrayList<>();
        for (int i = 0; i < writes; i++) {
            for (int k = 0; k < keys; k++) {
                commands.add(new String[]{i % 2 == 0 ? "SET" : "APPEND", "lo:k:" + k, String.valueOf(i)});
            }
        }
        burst(commands);
        await(keys * writes + " events", () -> stat(registrationData(session), "numSuccess")
                + stat(registrationData(session), "numFailures") >= keys * writes);
        for (int k = 0; k < keys; k++) {
            List<String> log = direct().lrange("lo:log:" + k, 0, -1);
            assertEquals(writes, log.size(), "key " + k);
            for (int i = 0; i < writes; i++) {
                assertEquals((i % 2 == 0 ? "set:" : "append:") + (i + 1), log.get(i), "key " + k + " in order, its own INCR's reply: " + log);
            }
        }
        assertEquals(0, stat(registrationData(session), "numFailures"));
        unregister(session);
    }

    // Last: carrier lanes that an interrupt once missed (they started after it) spun on for good and took the
    // interrupts of platform lanes elsewhere down with them; this checks that nothing of the kind is left.
    @org.junit.jupiter.api.Order(Integer.MAX_VALUE)
    @Test
    void registrationTimeoutInterruptsRunawayPlatformLanesAndTheRegistrationGoesOn() throws Exception {
        // Lanes that loop forever are interrupted at RegistrationTimeout like a single execution, the server
        // answers meanwhile, and the same registration runs later events normally.
        onPlatformLanes(this::runawayLanesAreInterrupted);
    }

    @Test
    void registrationTimeoutInterruptsRunawayCarrierLanesAndTheLanesStillWaitingForTheCarrier() throws Exception {
        // One looping lane holds the carrier; the other looping lanes have not entered Python yet when the
        // interrupt goes out. They must not start afterwards and spin for good.
        runawayLanesAreInterrupted();
    }

    @Test
    void abortingALoopingEventEndsItsBatchAndTheRegistrationGoesOn() throws Exception {
        // RG.ABORTEXECUTION interrupts running Python (RedisGears' behaviour). An event of a batch can only be
        // interrupted with its batch: without it, the loop ran for good and every later event waited behind it.
        direct().del("ab:n");
        py("def f(r):\n"
                + "    if r['value'] == 'loop':\n"
                + "        while True:\n"
                + "            pass\n"
                + "    execute('INCR', 'ab:n')\n"
                + "GB().foreach(f).register(prefix='ab:k:*', eventTypes=['set'])", "ID", "lanes-abort");
        burst(List.<String[]>of(new String[]{"SET", "ab:k:1", "loop"}, new String[]{"SET", "ab:k:2", "ok"}));
        String running = null;
        long deadline = System.currentTimeMillis() + 60_000;
        while (running == null && System.currentTimeMillis() < deadline) {
            for (Object e : (List<?>) call("RG.DUMPEXECUTIONS")) {
                List<?> fields = (List<?>) e;
                if ("running".equals(String.valueOf(fields.get(3)))) {
                    running = String.valueOf(fields.get(1));
                }
            }
            Thread.sleep(50);
        }
        assertTrue(running != null, "an execution runs");
        Thread.sleep(300);  // the looping one is in Python by now
        assertEquals("OK", call("RG.ABORTEXECUTION", running));
        awaitEnded("the batch ended", "lanes-abort", 2, 60_000);
        // ab:k:2's event may have run before the interrupt, or ended aborted with the batch.
        long before = direct().get("ab:n") == null ? 0 : Long.parseLong(direct().get("ab:n"));
        burst(List.<String[]>of(new String[]{"SET", "ab:k:3", "ok"}));
        await("an event after the abort", () -> direct().get("ab:n") != null && Long.parseLong(direct().get("ab:n")) == before + 1);
        assertEquals("PONG", call("PING"));
        unregister("lanes-abort");
    }

    @Test
    void theHeapGuardInterruptsACarrierLaneThatAllocatesWithoutEnd() throws Exception {
        long before = stat("memoryInterruptions");
        call("RG.CONFIGSET", "MemoryWatermark", "35");
        try {
            py("def f(r):\n"
                    + "    if r['value'] == 'grow':\n"
                    + "        x = []\n"
                    + "        while True:\n"
                    + "            x.append('a' * 10**6)\n"
                    + "    execute('INCR', 'mg:n')\n"
                    + "GB().foreach(f).register(prefix='mg:k:*', eventTypes=['set'])", "ID", "lanes-memory");
            burstSets("mg:k:", 6, "grow");
            awaitEnded("the growing events ended", "lanes-memory", 6, 120_000);
        } finally {
            call("RG.CONFIGSET", "MemoryWatermark", "85");
        }
        assertTrue(stat("memoryInterruptions") > before);
        assertEquals("PONG", call("PING"));
        assertEquals(0, stat(registrationData("lanes-memory"), "numSuccess"));
        direct().del("mg:n");
        burst(List.<String[]>of(new String[]{"SET", "mg:k:ok", "ok"}));
        await("a plain event after them", () -> "1".equals(direct().get("mg:n")));
        unregister("lanes-memory");
    }

    /** Waits until {@code n} executions of the session's registration have ended, however they ended. */
    private void awaitEnded(String what, String sessionId, long n, long millis) throws InterruptedException {
        await(what, () -> {
            Map<String, Object> d = registrationData(sessionId);
            return stat(d, "numSuccess") + stat(d, "numFailures") + stat(d, "numAborted") >= n;
        }, millis);
    }

    private void runawayLanesAreInterrupted() throws Exception {
        direct().del("rt:n");
        try {
            call("RG.CONFIGSET", "RegistrationTimeout", "500");
            py("def f(r):\n"
                    + "    if r['value'] == 'loop':\n"
                    + "        while True:\n"
                    + "            pass\n"
                    + "    execute('INCR', 'rt:n')\n"
                    + "GB().foreach(f).register(prefix='rt:k:*', eventTypes=['set'])", "ID", "lanes-timeout");
            // 12 looping events over 4 lanes: an interrupt ends each lane's current execution, and a lane
            // with more looping events in its share of the batch takes one interrupt per event.
            burstSets("rt:k:", 12, "loop");
            awaitEnded("the runaway events ended", "lanes-timeout", 12, 120_000);
            assertEquals("PONG", call("PING"));
            assertEquals(0, stat(registrationData("lanes-timeout"), "numSuccess"));
            burstSets("rt:k:", 500, "ok");
            await("500 plain events", () -> direct().get("rt:n") != null && Long.parseLong(direct().get("rt:n")) >= 500);
            Thread.sleep(200);
            assertEquals("500", direct().get("rt:n"));
        } finally {
            call("RG.CONFIGSET", "RegistrationTimeout", "0");
        }
        unregister("lanes-timeout");
    }

    @Test
    void everyEventOfAHundredThousandRunsExactlyOnce() throws Exception {
        direct().del("ex:n");
        py("GB().foreach(lambda r: execute('INCR', 'ex:n')).register(prefix='ex:k:*', eventTypes=['set'])", "ID", "lanes-exact");
        int events = 100_000;
        List<String[]> commands = new ArrayList<>(events);
        for (int i = 0; i < events; i++) {
            commands.add(new String[]{"SET", "ex:k:" + (i % 5000), "v"});
        }
        burst(commands);
        // On a busy machine 100k events may take minutes: the wait fails only when 120 s pass without progress.
        long[] seen = {-1, System.currentTimeMillis()};
        await("every event", () -> {
            Map<String, Object> d = registrationData("lanes-exact");
            long done = stat(d, "numSuccess") + stat(d, "numFailures");
            if (done != seen[0]) {
                seen[0] = done;
                seen[1] = System.currentTimeMillis();
            }
            if (System.currentTimeMillis() - seen[1] > 120_000) {
                throw new AssertionError("no progress for 120 s at " + done + " of " + events + " events");
            }
            return done >= events;
        }, Long.MAX_VALUE);
        Thread.sleep(200);  // nothing more comes
        Map<String, Object> d = registrationData("lanes-exact");
        assertEquals(String.valueOf(events), direct().get("ex:n"));
        assertEquals(events, stat(d, "numTriggered"));
        assertEquals(events, stat(d, "numSuccess"));
        assertEquals(0, stat(d, "numFailures"));
        unregister("lanes-exact");
    }

    @Test
    void failuresAndErrorRepliesAreCountedPerEvent() throws Exception {
        // Events of even values fail in Python; odd ones run a command Redis refuses (INCR of a word), catch
        // the error execute() raises and record it: error replies come back to their own lane.
        direct().del("fa:errors", "fa:word");
        direct().set("fa:word", "not a number");
        py("def f(r):\n"
                + "    v = int(r['value'])\n"
                + "    if v % 2 == 0:\n"
                + "        return 1 / 0\n"
                + "    try:\n"
                + "        execute('INCR', 'fa:word')\n"
                + "    except Exception as e:\n"
                + "        execute('RPUSH', 'fa:errors', str(e))\n"
                + "GB().foreach(f).register(prefix='fa:k:*', eventTypes=['set'])", "ID", "lanes-fail");
        List<String[]> commands = new ArrayList<>();
        for (int i = 0; i < 2000; i++) {
            commands.add(new String[]{"SET", "fa:k:" + i, String.valueOf(i)});
        }
        burst(commands);
        await("2000 events", () -> {
            Map<String, Object> d = registrationData("lanes-fail");
            return stat(d, "numSuccess") + stat(d, "numFailures") >= 2000;
        });
        Map<String, Object> d = registrationData("lanes-fail");
        assertEquals(1000, stat(d, "numFailures"));
        assertEquals(1000, stat(d, "numSuccess"));
        assertTrue(String.valueOf(d.get("lastError")).contains("ZeroDivisionError"), String.valueOf(d.get("lastError")));
        List<String> errors = direct().lrange("fa:errors", 0, -1);
        assertEquals(1000, errors.size());
        assertTrue(errors.stream().allMatch(e -> e.contains("not an integer")), errors.getFirst());
        unregister("lanes-fail");
    }

    @Test
    void syncRegistrationsStillRunInArrivalOrderBeforeTheReply() throws Exception {
        direct().del("sy:log");
        py("GB().foreach(lambda r: execute('RPUSH', 'sy:log', r['key'])).register(prefix='sy:k:*', mode='sync', eventTypes=['set'])",
                "ID", "lanes-sync");
        List<String> expected = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            String key = "sy:k:" + (i * 7919 % 50);
            call("SET", key, "v");
            expected.add(key);
            // A sync registration has run before the SET's reply: its write is there already.
            assertEquals(i + 1, direct().llen("sy:log"), "after SET " + i);
        }
        assertEquals(expected, direct().lrange("sy:log", 0, -1));
        unregister("lanes-sync");
    }
}
