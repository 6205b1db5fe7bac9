package io.jgears;

import io.jgears.gears.Session;
import io.lettuce.core.api.StatefulRedisConnection;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The whole life of a session over RESP: names, upgrades, reference counts, executions, time events. */
class SessionLifecycleTest extends GearsTestBase {

    /** One session's RG.PYDUMPSESSIONS VERBOSE HOLDERS entry as a map, or null when it is gone. */
    private Map<String, Object> session(String id) {
        List<?> dump = (List<?>) call("RG.PYDUMPSESSIONS", "VERBOSE", "HOLDERS", "SESSIONS", id);
        if (!(dump.getFirst() instanceof List)) {
            return null;  // "Session <id> does not exists"
        }
        return pairs((List<?>) dump.getFirst());
    }

    private static Map<String, Object> pairs(List<?> flat) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i + 1 < flat.size(); i += 2) {
            m.put(String.valueOf(flat.get(i)), flat.get(i + 1));
        }
        return m;
    }

    /** refCount and holders of a live session, e.g. "2 [time_event, 1, execution, 1]". */
    private String refs(String id) {
        Map<String, Object> s = session(id);
        return s == null ? "gone" : s.get("refCount") + " " + s.get("holders");
    }

    private Map<String, Object> timeEvent(String id) {
        for (Object te : (List<?>) call("RG.DUMPTIMEEVENTS")) {
            Map<String, Object> m = pairs((List<?>) te);
            if (m.get("id").equals(id)) {
                return m;
            }
        }
        return null;
    }

    private String direct(String key) {
        return TestServer.redisDirect().get(key);
    }

    @Test
    void everyReferenceTransitionIsCountedAndTheLastOneClosesTheContext() throws Exception {
        String eid;
        try (StatefulRedisConnection<byte[], byte[]> other = TestServer.connectRaw()) {
            // While the script loads it holds a reference, and so does each thing it has made so far.
            CompletableFuture<Object> loading = CompletableFuture.supplyAsync(() -> TestServer.call(other,
                    "RG.PYEXECUTE", "import time\n"
                            + "te = registerTimer(3600000, lambda: None, desc='hourly')\n"
                            + "GB('ShardsIDReader').map(lambda x: 'v').run()\n"
                            + "time.sleep(1.5)",
                    "ID", "rc", "DESCRIPTION", "refcount walk", "UNBLOCKING"));
            await("the script to start", () -> refs("rc").startsWith("3 "));
            assertEquals("3 [script, 1, time_event, 1, execution, 1]", refs("rc"));
            eid = (String) loading.get(120, TimeUnit.SECONDS);
        }
        call("RG.GETRESULTSBLOCKING", eid);
        // Loaded: the stored execution and the time event hold it.
        assertEquals("2 [time_event, 1, execution, 1]", refs("rc"));
        Session session = TestServer.get().engine().sessions().get("rc");
        String te = session("rc").get("timeEvents").toString().replaceAll("[\\[\\]]", "");
        assertEquals("hourly", timeEvent(te).get("desc"));
        assertEquals("refcount walk", session("rc").get("sessionDescription"));
        // Dropping the execution releases its reference.
        assertEquals("OK", call("RG.DROPEXECUTION", eid));
        assertEquals("1 [time_event, 1]", refs("rc"));
        assertFalse(session.interpreter().isClosed());
        // The time event was the last holder: unregistering it frees the session and closes the context.
        assertEquals("OK", call("RG.UNREGISTERTE", te));
        await("rc freed", () -> session("rc") == null);
        await("the context closed", () -> session.interpreter().isClosed());
        assertEquals(0, session.refCount());
        assertEquals("time event does not exist", error("RG.UNREGISTERTE", te));
    }

    @Test
    void timeEventsFireInTheirSessionAndFailuresAreCountedNotFatal() throws Exception {
        TestServer.redisDirect().del("te:n", "te:once");
        py("state = {'n': 0}\n"
                        + "def tick():\n"
                        + "    state['n'] += 1\n"
                        + "    execute('SET', 'te:n', state['n'])\n"
                        + "    if state['n'] == 3:\n"
                        + "        unregisterTE(me)\n"
                        + "me = registerTimer(20, tick, desc='counter')\n"
                        + "registerTimer(10, lambda: execute('INCR', 'te:once'), oneshot=True)\n"
                        + "registerTimer(15, lambda: 1 / 0, desc='broken')",
                "ID", "tes");
        await("three ticks", () -> "3".equals(direct("te:n")));
        await("the one shot", () -> "1".equals(direct("te:once")));
        // The counter unregistered itself and the one shot is gone: only the broken one is left.
        await("two events released", () -> refs("tes").equals("1 [time_event, 1]"));
        String broken = session("tes").get("timeEvents").toString().replaceAll("[\\[\\]]", "");
        await("failures counted", () -> (Long) timeEvent(broken).get("numFailures") >= 3);
        Map<String, Object> b = timeEvent(broken);
        assertEquals(b.get("numTriggered"), b.get("numFailures"));
        assertTrue(b.get("lastError").toString().contains("ZeroDivisionError"), b.toString());
        assertEquals("PONG", call("PING"));
        Thread.sleep(100);
        assertEquals("3", direct("te:n"), "no tick after unregisterTE");
        assertEquals("1", direct("te:once"), "a one shot fires once");
        assertEquals("OK", call("RG.UNREGISTERTE", broken));
        await("tes freed", () -> session("tes") == null);
    }

    @Test
    void timeEventBadInputIsAClearError() {
        assertTrue(pyError("registerTimer(-5, lambda: None)").contains("positive number of milliseconds"));
        assertTrue(pyError("registerTimer(10, 'not callable')").contains("callback must be callable"));
        assertEquals("OK", py("assert unregisterTE('te-999999') is False"));
        assertEquals("time event does not exist", error("RG.UNREGISTERTE", "nosuch"));
        assertTrue(error("RG.UNREGISTERTE").contains("wrong number of arguments"));
        assertTrue(error("RG.DUMPTIMEEVENTS", "x").contains("wrong number of arguments"));
    }

    @Test
    void aFailedScriptLeavesNoTimeEventBehind() throws Exception {
        long before = ((List<?>) call("RG.DUMPTIMEEVENTS")).size();
        pyError("registerTimer(10, lambda: execute('INCR', 'te:ghost'))\nraise Exception('no')", "ID", "failing");
        assertNull(session("failing"));
        assertEquals(before, ((List<?>) call("RG.DUMPTIMEEVENTS")).size());
    }

    @Test
    void upgradeReplacesTheSessionOnlyWhenTheNewCodeLoads() throws Exception {
        TestServer.redisDirect().del("up:v");
        py("registerTimer(20, lambda: execute('SET', 'up:v', 'v1'))", "ID", "up", "DESCRIPTION", "first");
        await("v1 ticking", () -> "v1".equals(direct("up:v")));
        Session v1 = TestServer.get().engine().sessions().get("up");

        // Same id without UPGRADE: an error, nothing changes.
        assertEquals("Session up already exists", pyError("x = 1", "ID", "up"));
        // A failing upgrade leaves the old session fully working.
        String e = pyError("registerTimer(20, lambda: execute('SET', 'up:v', 'bad'))\nraise Exception('broken v2')", "ID", "up", "UPGRADE");
        assertTrue(e.contains("broken v2"), e);
        assertEquals("1 [time_event, 1]", refs("up"));
        TestServer.redisDirect().del("up:v");
        await("v1 still ticking", () -> "v1".equals(direct("up:v")));

        // A good upgrade: the new session owns the id, the old one's time event ends and it is freed.
        assertEquals("OK", py("registerTimer(20, lambda: execute('SET', 'up:v', 'v2'))", "ID", "up", "DESCRIPTION", "second", "UPGRADE"));
        await("v1 freed", () -> v1.isFreed());
        await("v1 closed", () -> v1.interpreter().isClosed());
        Map<String, Object> s = session("up");
        assertEquals("second", s.get("sessionDescription"));
        assertEquals("false", s.get("dead"));
        assertEquals("1 [time_event, 1]", refs("up"));
        TestServer.redisDirect().del("up:v");
        await("v2 ticking", () -> "v2".equals(direct("up:v")));
        Thread.sleep(100);
        assertEquals("v2", direct("up:v"), "v1's time event no longer fires");

        // REPLACE_WITH: the same under a new id.
        assertEquals("OK", py("registerTimer(20, lambda: execute('SET', 'up:v', 'v3'))", "ID", "up-next", "REPLACE_WITH", "up"));
        await("up freed", () -> session("up") == null);
        TestServer.redisDirect().del("up:v");
        await("v3 ticking", () -> "v3".equals(direct("up:v")));
        assertEquals("Can not replace with nosuch, session does not exists.", pyError("x = 1", "REPLACE_WITH", "nosuch"));
        String te = session("up-next").get("timeEvents").toString().replaceAll("[\\[\\]]", "");
        assertEquals("OK", call("RG.UNREGISTERTE", te));
        await("up-next freed", () -> session("up-next") == null);
    }

    @Test
    void aReplacedSessionStillRunningAnExecutionIsShownDead() throws Exception {
        // The old session's execution waits on a future that nothing completes (gearsFuture() is for steps).
        String eid = (String) py("f = createFuture()\nGB('ShardsIDReader').map(lambda x: f).run()", "ID", "old", "UNBLOCKING");
        await("parked", () -> "running".equals(statusOf(eid)));
        assertEquals("1 [execution, 1]", refs("old"));
        assertEquals("OK", py("x = 1", "ID", "new", "REPLACE_WITH", "old"));
        Map<String, Object> old = deadSession("old");
        assertEquals("true", old.get("dead"), old.toString());
        assertEquals("Session old does not exists", ((List<?>) call("RG.PYDUMPSESSIONS", "SESSIONS", "old")).getFirst(),
                "a replaced session is listed only with DEAD, as in RedisGears");
        assertEquals(List.of(eid), old.get("executions"));
        assertEquals("OK", call("RG.ABORTEXECUTION", eid));
        List<?> r = (List<?>) call("RG.GETRESULTSBLOCKING", eid);
        assertTrue(r.get(1).toString().contains("aborted"), r.toString());
        assertEquals("OK", call("RG.DROPEXECUTION", eid));
        await("old freed", () -> deadSession("old") == null);
    }

    /** A replaced session still running, from RG.PYDUMPSESSIONS DEAD HOLDERS, or null. */
    private Map<String, Object> deadSession(String id) {
        for (Object e : (List<?>) call("RG.PYDUMPSESSIONS", "DEAD", "HOLDERS")) {
            Map<String, Object> m = pairs((List<?>) e);
            if (id.equals(m.get("ID"))) {
                return m;
            }
        }
        return null;
    }

    private String statusOf(String eid) {
        for (Object e : (List<?>) call("RG.DUMPEXECUTIONS")) {
            Map<String, Object> m = pairs((List<?>) e);
            if (m.get("executionId").equals(eid)) {
                return (String) m.get("status");
            }
        }
        return null;
    }

    @Test
    void twoExecutionsOfOneSessionAreAliveAtOnce() throws Exception {
        // The run parks on a future; a time event of the session runs meanwhile and completes it (one
        // script starts one run() at most, as in RedisGears).
        String eid = (String) py("f = createFuture()\n"
                        + "GB('ShardsIDReader').map(lambda x: f).map(lambda v: 'got ' + v).run()\n"
                        + "registerTimer(50, lambda: setFutureResults(f, 'it'), oneshot=True)",
                "UNBLOCKING");
        assertEquals(List.of(List.of("got it"), List.of()), call("RG.GETRESULTSBLOCKING", eid));
        // Blocking: the reply waits for a parked run without blocking the server.
        assertEquals(List.of(List.of("late"), List.of()), py("f = createFuture()\n"
                + "GB('ShardsIDReader').map(lambda x: f).run()\n"
                + "setFutureResults(f, 'late')"));
        assertEquals(List.of(List.of(), List.of("boom")), py("f = createFuture()\n"
                + "GB('ShardsIDReader').map(lambda x: f).run()\n"
                + "setFutureException(f, 'boom')"));
        call("RG.DROPEXECUTION", eid);
    }

    @Test
    void asyncStepsAwaitFuturesAndAsyncioSleep() {
        assertEquals(List.of("slept 0", "slept 1", "slept 2"), results("import asyncio\n"
                + "async def slow(x):\n"
                + "    await asyncio.sleep(0.05)\n"
                + "    return 'slept ' + str(x)\n"
                + "GB('PythonReader').map(slow).sort().run(lambda: (x for x in range(3)))"));
        // A coroutine awaiting only jgears' futures (asyncio is pre-imported, as RedisGears has it loaded).
        assertEquals(List.of("None"), results("async def f(x):\n"
                + "    return str(await execute_async('GET', 'no:such:key'))\n"
                + "GB('ShardsIDReader').map(f).run()"));
        List<?> reply = (List<?>) py("async def bad(x):\n    raise ValueError('async boom')\nGB('ShardsIDReader').map(bad).run()");
        assertTrue(reply.get(1).toString().contains("async boom"), reply.toString());
    }

    @Test
    void getExecutionShowsThePlanAndProfiledDurations() throws Exception {
        call("RG.CONFIGSET", "ProfileExecutions", "1");
        String eid;
        try {
            eid = (String) py("def slow(x):\n"
                    + "    import time\n"
                    + "    time.sleep(0.05)\n"
                    + "    return x\n"
                    + "GB('ShardsIDReader').map(slow).filter(lambda x: True).count().run()", "UNBLOCKING");
            call("RG.GETRESULTSBLOCKING", eid);
        } finally {
            call("RG.CONFIGSET", "ProfileExecutions", "0");
        }
        List<?> shard = (List<?>) ((List<?>) call("RG.GETEXECUTION", eid)).getFirst();
        assertEquals("shard_id", shard.get(0));
        Map<String, Object> plan = pairs((List<?>) shard.get(3));
        assertEquals("done", plan.get("status"));
        assertEquals(1L, plan.get("results"));
        List<?> steps = (List<?>) plan.get("steps");
        assertEquals(3, steps.size());
        Map<String, Object> count = pairs((List<?>) steps.get(0));
        Map<String, Object> map = pairs((List<?>) steps.get(2));
        assertEquals("count", count.get("type"), "steps are listed last first, as RedisGears does");
        assertEquals("map", map.get("type"));
        assertTrue(map.get("arg").toString().contains("slow"), map.toString());
        assertTrue((Long) map.get("duration") >= 50, "the map step slept 50 ms: " + map);
        assertTrue(error("RG.GETEXECUTION", "nosuch").contains("does not exist"));
        assertEquals("unknown subcommand", error("RG.GETEXECUTION", eid, "BOGUS"));
        assertEquals("no cluster detected - use `RG.GETEXECUTION <id> [SHARD]` instead", error("RG.GETEXECUTION", eid, "cluster"));
        assertEquals(List.of(shard), call("RG.GETEXECUTION", eid, "sHARD"));
        call("RG.DROPEXECUTION", eid);
    }

    @Test
    void abortStopsABusyLoopAndConcurrentBlockingReadersAllGetTheResult() throws Exception {
        String eid = (String) py("GB('ShardsIDReader').foreach(lambda x: [0 for _ in iter(int, 1)]).run()", "UNBLOCKING");
        await("running", () -> "running".equals(statusOf(eid)));
        try (StatefulRedisConnection<byte[], byte[]> a = TestServer.connectRaw();
             StatefulRedisConnection<byte[], byte[]> b = TestServer.connectRaw()) {
            CompletableFuture<Object> ra = CompletableFuture.supplyAsync(() -> TestServer.call(a, "RG.GETRESULTSBLOCKING", eid));
            CompletableFuture<Object> rb = CompletableFuture.supplyAsync(() -> TestServer.call(b, "RG.GETRESULTSBLOCKING", eid));
            Thread.sleep(100);
            assertFalse(ra.isDone() || rb.isDone(), "both readers wait");
            assertEquals("PONG", call("PING"), "other clients are served meanwhile");
            assertEquals("OK", call("RG.ABORTEXECUTION", eid));
            Object r = ra.get(120, TimeUnit.SECONDS);
            assertEquals(r, rb.get(120, TimeUnit.SECONDS));
            assertTrue(r.toString().contains("aborted"), r.toString());
            // No bound on how long the abort took: a busy machine may take seconds; a broken interrupt never ends.
        }
        assertEquals("aborted", statusOf(eid));
        call("RG.DROPEXECUTION", eid);
    }

    @Test
    void maxExecutionsDropsTheOldestAndReleasesItsSession() throws Exception {
        call("RG.CONFIGSET", "MaxExecutions", "2");
        try {
            String first = (String) py("GB('ShardsIDReader').run()", "UNBLOCKING", "ID", "max-1");
            call("RG.GETRESULTSBLOCKING", first);
            String second = (String) py("GB('ShardsIDReader').run()", "UNBLOCKING", "ID", "max-2");
            call("RG.GETRESULTSBLOCKING", second);
            String third = (String) py("GB('ShardsIDReader').run()", "UNBLOCKING", "ID", "max-3");
            call("RG.GETRESULTSBLOCKING", third);
            await("max-1 freed", () -> session("max-1") == null);
            assertEquals("execution plan does not exist", error("RG.GETRESULTS", first));
            assertEquals("1 [execution, 1]", refs("max-3"));
            for (String e : List.of(second, third)) {
                call("RG.DROPEXECUTION", e);
            }
        } finally {
            call("RG.CONFIGSET", "MaxExecutions", "1000");
        }
    }

    @Test
    void configKeysAreReadableFromPythonAndValidated() {
        assertEquals(List.of(1000L, 3L, 0L, 1L, 5000L), call("RG.CONFIGGET", "MaxExecutions", "ExecutionThreads",
                "ProfileExecutions", "PythonAttemptTraceback", "ExecutionMaxIdleTime"));
        assertEquals(List.of("OK - value was saved in extra config dictionary"), call("RG.CONFIGSET", "myKey", "hello"));
        // A script reads the extra keys only: RedisGears' own keys are None there (its default then).
        assertEquals(List.of("hello dflt None"), results("GB('ShardsIDReader').map(lambda x: configGet('myKey') + ' ' + "
                + "gearsConfigGet('MaxExecutionsPerRegistration', 'dflt') + ' ' + str(configGet('ExecutionThreads'))).run()"));
        assertTrue(call("RG.CONFIGSET", "ExecutionThreads", "9").toString().contains("not modifiable at runtime"));
        assertTrue(call("RG.CONFIGSET", "MaxExecutions", "-1").toString().contains("non-negative"));
        assertTrue(call("RG.CONFIGGET", "NoSuchKey").toString().contains("Unsupported config parameter"));
    }
}
