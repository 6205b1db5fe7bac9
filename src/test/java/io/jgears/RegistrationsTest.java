package io.jgears;

import io.lettuce.core.api.sync.RedisCommands;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** register() for each reader, over RESP against the real Redis behind jgears. */
class RegistrationsTest extends GearsTestBase {

    private static RedisCommands<String, String> direct() {
        return TestServer.redisDirect();
    }

    private static Map<String, Object> pairs(List<?> flat) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i + 1 < flat.size(); i += 2) {
            m.put(String.valueOf(flat.get(i)), flat.get(i + 1));
        }
        return m;
    }

    /** RegistrationData of the registration of session {@code sessionId} (its first one). */
    private Map<String, Object> registrationData(String sessionId) {
        Map<String, Object> reg = registration(sessionId);
        return reg == null ? null : pairs((List<?>) reg.get("RegistrationData"));
    }

    private Map<String, Object> registration(String sessionId) {
        for (Object r : (List<?>) call("RG.DUMPREGISTRATIONS")) {
            Map<String, Object> m = pairs((List<?>) r);
            if (m.get("PD").toString().contains("'sessionName':'" + sessionId + "'")) {
                return m;
            }
        }
        return null;
    }

    private String registrationId(String sessionId) {
        return (String) registration(sessionId).get("id");
    }

    private void unregisterAll(String sessionId) throws InterruptedException {
        Map<String, Object> r;
        while ((r = registration(sessionId)) != null) {
            call("RG.UNREGISTER", (String) r.get("id"));
        }
        await(sessionId + " freed", () -> !(((List<?>) call("RG.PYDUMPSESSIONS", "SESSIONS", sessionId)).getFirst() instanceof List));
    }

    @Test
    void keysReaderTriggersOnWritesThroughJgearsAndDirectlyToRedis() throws Exception {
        direct().del("kr:seen");
        assertEquals("OK", py("GB().foreach(lambda r: execute('HSET', 'kr:seen', r['key'], '%s %s %s' % (r['event'], r['type'], r['value'])))"
                + ".register(prefix='kr:in:*', eventTypes=['set', 'hset'], readValue=True)", "ID", "kr"));
        call("SET", "kr:in:1", "through");
        direct().set("kr:in:2", "direct");
        call("HSET", "kr:in:3", "f", "v");
        call("LPUSH", "kr:in:4", "x");      // not an event type it asked for
        call("SET", "kr:other", "x");       // not its prefix
        await("three events", () -> direct().hlen("kr:seen") == 3);
        Map<String, String> seen = direct().hgetall("kr:seen");
        assertEquals("set string through", seen.get("kr:in:1"));
        assertEquals("set string direct", seen.get("kr:in:2"));
        assertEquals("hset hash {'f': 'v'}", seen.get("kr:in:3"));
        Map<String, Object> data = registrationData("kr");
        assertEquals(3L, data.get("numTriggered"));
        await("successes counted", () -> Long.valueOf(3L).equals(registrationData("kr").get("numSuccess")));
        List<?> dump = (List<?>) call("RG.DUMPEXECUTIONS");
        assertTrue(dump.stream().anyMatch(e -> ((List<?>) e).contains("registered") && ((List<?>) e).get(5).equals(1L)),
                "triggered executions are listed as registered: " + dump);
        Map<String, Object> session = pairs((List<?>) ((List<?>) call("RG.PYDUMPSESSIONS", "SESSIONS", "kr")).getFirst());
        assertEquals(List.of(registrationId("kr")), session.get("registrations"));
        // The registration holds its session; the executions it triggered (kept for DUMPEXECUTIONS) too.
        Map<String, Object> verbose = pairs((List<?>) ((List<?>) call("RG.PYDUMPSESSIONS", "VERBOSE", "HOLDERS", "SESSIONS", "kr")).getFirst());
        assertEquals(List.of("registration", 1L, "execution", 3L), verbose.get("holders"));
        assertEquals(4L, verbose.get("refCount"));
        unregisterAll("kr");
    }

    @Test
    void redisSendsOnlyTheEventsOfSubscribedPrefixesAndOverlappingOnesSeeEachEventOnce() throws Exception {
        direct().del("ovlog:a", "ovlog:b");
        long patterns = direct().pubsubNumpat();
        py("GB().foreach(lambda r: execute('RPUSH', 'ovlog:a', r['key'])).register(prefix='ov:*')", "ID", "ova");
        py("GB().foreach(lambda r: execute('RPUSH', 'ovlog:b', r['key'])).register(prefix='ov:x*')", "ID", "ovb");
        // One keyspace pattern per prefix: Redis filters the keys, jgears gets no event for ovlog:* writes.
        assertEquals(patterns + 2, direct().pubsubNumpat());
        direct().set("ov:x1", "v");
        direct().set("ov:y1", "v");
        await("both events on ov:*", () -> direct().llen("ovlog:a") == 2);
        await("ov:x1 on ov:x*", () -> direct().llen("ovlog:b") == 1);
        Thread.sleep(200);
        // ov:x1 matches both patterns and arrives twice, once tagged with each: each registration runs it once.
        assertEquals(List.of("ov:x1", "ov:y1"), direct().lrange("ovlog:a", 0, -1).stream().sorted().toList());
        assertEquals(List.of("ov:x1"), direct().lrange("ovlog:b", 0, -1));
        unregisterAll("ovb");
        assertEquals(patterns + 1, direct().pubsubNumpat());
        unregisterAll("ova");
        assertEquals(patterns, direct().pubsubNumpat());
    }

    @Test
    void eventsOfAKeyRunInOrder() throws Exception {
        direct().del("ord:log");
        py("GB().foreach(lambda r: execute('RPUSH', 'ord:log', r['event'])).register(prefix='ord:k', readValue=False)", "ID", "ord");
        List<String> expected = new java.util.ArrayList<>();
        for (int i = 0; i < 100; i++) {
            direct().set("ord:k", "v");
            direct().expire("ord:k", 1000);
            direct().del("ord:k");
            expected.addAll(List.of("set", "expire", "del"));
        }
        await("300 events", () -> direct().llen("ord:log") == 300);
        assertEquals(expected, direct().lrange("ord:log", 0, -1));
        unregisterAll("ord");
    }

    @Test
    void eventsOfManyKeysRunInParallelLanesEachKeyInOrder() throws Exception {
        // Events of different keys run in lanes (KeyEventConcurrency) at once; each key keeps its order
        // (set, append, set, append...), every event runs exactly once, and values cross intact.
        for (int k = 0; k < 16; k++) {
            direct().del("lane:log:" + k, "lane:k:" + k);
        }
        py("GB().foreach(lambda r: execute('RPUSH', 'lane:log:' + r['key'].split(':')[2], r['event'] + ' ' + r['value']))"
                + ".register(prefix='lane:k:*', eventTypes=['set', 'append'])", "ID", "lanes");
        var pipelined = TestServer.connect();  // through jgears, pipelined: a burst of events
        var async = pipelined.async();
        List<io.lettuce.core.RedisFuture<?>> writes = new java.util.ArrayList<>();
        for (int i = 0; i < 25; i++) {
            for (int k = 0; k < 16; k++) {
                writes.add(async.set("lane:k:" + k, "x"));
                writes.add(async.append("lane:k:" + k, "\u00e9\ud83d\ude00"));
            }
        }
        for (var w : writes) {
            w.get();
        }
        pipelined.close();
        await("800 events", () -> {
            long n = 0;
            for (int k = 0; k < 16; k++) {
                n += direct().llen("lane:log:" + k);
            }
            return n == 800;
        });
        for (int k = 0; k < 16; k++) {
            List<String> log = direct().lrange("lane:log:" + k, 0, -1);
            assertEquals(50, log.size());
            for (int i = 0; i < log.size(); i++) {
                String entry = log.get(i);
                assertTrue(entry.startsWith(i % 2 == 0 ? "set " : "append "), "key " + k + " in order: " + log);
                String value = entry.substring(entry.indexOf(' ') + 1);
                assertTrue(value.equals("x") || value.equals("x\u00e9\ud83d\ude00"), "value intact: " + value);
            }
        }
        unregisterAll("lanes");
    }

    @Test
    void executeAsyncKeepsManyEventsInFlightAndEachKeysOrder() throws Exception {
        // Each event awaits an execute_async() write; a lane starts all its events before collecting the
        // replies, and a key's writes still land in its events' order (set, append, set, append...).
        for (int k = 0; k < 8; k++) {
            direct().del("ealog:" + k);
        }
        py("async def log(r):\n"
                + "    await execute_async('RPUSH', 'ealog:' + r['key'][3:], r['event'])\n"
                + "GB().foreach(log).register(prefix='ea:*', eventTypes=['set', 'append'])", "ID", "ea");
        var pipelined = TestServer.connect();  // a burst of events, pipelined
        var async = pipelined.async();
        List<io.lettuce.core.RedisFuture<?>> writes = new java.util.ArrayList<>();
        for (int i = 0; i < 20; i++) {
            for (int k = 0; k < 8; k++) {
                writes.add(async.set("ea:" + k, "x"));
                writes.add(async.append("ea:" + k, "y"));
            }
        }
        for (var w : writes) {
            w.get();
        }
        pipelined.close();
        await("320 events", () -> {
            long n = 0;
            for (int k = 0; k < 8; k++) {
                n += direct().llen("ealog:" + k);
            }
            return n == 320;
        });
        List<String> expected = new java.util.ArrayList<>();
        for (int i = 0; i < 20; i++) {
            expected.addAll(List.of("set", "append"));
        }
        for (int k = 0; k < 8; k++) {
            assertEquals(expected, direct().lrange("ealog:" + k, 0, -1), "key " + k + " in order");
        }
        unregisterAll("ea");
    }

    @Test
    void aRegistrationPrefixIsLiteralWithAnOptionalTrailingStar() throws Exception {
        // RedisGears matches register(prefix=) literally: no glob, a trailing * for "starts with".
        direct().del("pl:log");
        py("GB().foreach(lambda x: execute('RPUSH', 'pl:log', x['key'])).register(prefix='pl?:*', eventTypes=['set'])", "ID", "pl1");
        py("GB().foreach(lambda x: execute('RPUSH', 'pl:log', x['key'])).register(prefix='pj*x', eventTypes=['set'])", "ID", "pl2");
        try {
            for (String k : List.of("pl?:1", "plx:1", "pj*x", "pjx", "pjabx", "pl?:")) {
                call("SET", k, "v");
            }
            await("the three matching keys", () -> direct().llen("pl:log") >= 3);
            Thread.sleep(1000);  // time for events of keys that should not match to show up, if they came
            List<String> fired = new java.util.ArrayList<>(direct().lrange("pl:log", 0, -1));
            java.util.Collections.sort(fired);
            assertEquals(List.of("pj*x", "pl?:", "pl?:1"), fired);
        } finally {
            unregisterSessions("pl1", "pl2");
        }
    }

    @Test
    void keyTypesAndKeysOnlyReader() throws Exception {
        direct().del("kt:log");
        py("GB().foreach(lambda r: execute('RPUSH', 'kt:log', r['key'])).register(prefix='kt:*', keyTypes=['hash'])", "ID", "kt");
        py("GB('KeysOnlyReader').foreach(lambda k: execute('RPUSH', 'kt:log', 'only ' + k)).register(prefix='kt:s*')", "ID", "kt2");
        call("SET", "kt:s1", "1");
        call("HSET", "kt:h1", "f", "1");
        await("two entries", () -> direct().llen("kt:log") == 2);
        Thread.sleep(100);
        assertEquals(List.of("only kt:s1", "kt:h1"), direct().lrange("kt:log", 0, -1).stream().sorted().toList().reversed());
        unregisterAll("kt");
        unregisterAll("kt2");
    }

    @Test
    void syncRegistrationRunsBeforeTheWritersReply() throws Exception {
        // The step sleeps: in async mode the copy would not exist yet when the client reads it back.
        py("import time\n"
                + "def copy(r):\n"
                + "    time.sleep(0.2)\n"
                + "    execute('SET', 'sync:copy:' + r['key'], r['value'])\n"
                + "GB().foreach(copy).register(prefix='sync:in:*', mode='sync', eventTypes=['set'])", "ID", "sy");
        for (int i = 0; i < 3; i++) {
            assertEquals("OK", call("SET", "sync:in:" + i, "v" + i));
            Object copy = call("GET", "sync:copy:sync:in:" + i);
            if (!("v" + i).equals(copy)) {
                // Say what happened (it failed once under load): did the execution run late, fail, or never?
                String early = String.valueOf(registrationData("sy"));
                Thread.sleep(3000);
                fail("SET " + i + " replied before its sync execution copied it: " + early + "; 3 s later the copy is "
                        + call("GET", "sync:copy:sync:in:" + i) + ", " + registrationData("sy") + ", memoryInterruptions "
                        + stat("memoryInterruptions"));
            }
        }
        assertEquals("sync", registrationData("sy").get("mode"));
        unregisterAll("sy");
    }

    @Test
    void aRegistrationThatAlwaysFailsIsCountedAndHarmless() throws Exception {
        py("GB().map(lambda r: 1 / 0).register(prefix='fail:*')", "ID", "fl");
        for (int i = 0; i < 20; i++) {
            direct().set("fail:" + i, "x");
        }
        await("20 failures", () -> Long.valueOf(20L).equals(registrationData("fl").get("numFailures")));
        assertTrue(registrationData("fl").get("lastError").toString().contains("ZeroDivisionError"));
        assertEquals("PONG", call("PING"));
        assertEquals("OK", call("RG.CLEARREGISTRATIONSSTATS"));
        assertEquals(0L, registrationData("fl").get("numFailures"));
        unregisterAll("fl");
    }

    @Test
    void unregisterStopsExecutionsAndFreesTheSessionWhenTheLastOneEnds() throws Exception {
        direct().del("ur:n", "ur:started", "ur:go");
        // Each execution holds until the test says go: UNREGISTER then comes while executions are in
        // flight and events are queued, however slow the machine.
        py("import time\n"
                + "def slow(r):\n"
                + "    execute('INCR', 'ur:started')\n"
                + "    while execute('GET', 'ur:go') is None:\n"
                + "        time.sleep(0.01)\n"
                + "    execute('INCR', 'ur:n')\n"
                + "GB().foreach(slow).register(prefix='ur:k:*')", "ID", "ur");
        String id = registrationId("ur");
        for (int i = 0; i < 100; i++) {
            direct().set("ur:k:" + i, "x");
        }
        await("some started", () -> direct().get("ur:started") != null);
        assertEquals("OK", call("RG.UNREGISTER", id));
        assertEquals(null, direct().get("ur:n"), "none finished before the go");
        direct().set("ur:go", "1");
        await("ur freed", () -> !(((List<?>) call("RG.PYDUMPSESSIONS", "SESSIONS", "ur")).getFirst() instanceof List));
        Thread.sleep(300);
        String finished = direct().get("ur:n");
        long after = finished == null ? 0 : Long.parseLong(finished);
        // One execution per lane may have been in flight (KeyEventConcurrency); none started after.
        long lanes = Long.parseLong(String.valueOf(((List<?>) call("RG.CONFIGGET", "KeyEventConcurrency")).getFirst()));
        assertTrue(after <= lanes, "at most the ones in flight ran after UNREGISTER: " + after);
        assertTrue(after < 100, "the queued events did not all run");
        assertEquals("execution is not registered", error("RG.UNREGISTER", id));
        assertEquals("execution is not registered", error("RG.UNREGISTER", "nosuch"));
    }

    @Test
    void pauseAndUnpause() throws Exception {
        direct().del("pa:n");
        py("GB().foreach(lambda r: execute('INCR', 'pa:n')).register(prefix='pa:k:*')", "ID", "pa");
        direct().set("pa:k:1", "x");
        await("one", () -> "1".equals(direct().get("pa:n")));
        assertEquals("OK", call("RG.PAUSEREGISTRATIONS", "SESSIONS", "pa"));
        assertEquals("paused", registrationData("pa").get("status"));
        direct().set("pa:k:2", "x");
        Thread.sleep(200);
        assertEquals("1", direct().get("pa:n"), "paused: no execution");
        assertEquals("OK", call("RG.UNPAUSEREGISTRATIONS", "SESSIONS", "pa"));
        direct().set("pa:k:3", "x");
        await("two", () -> "2".equals(direct().get("pa:n")));
        assertTrue(error("RG.PAUSEREGISTRATIONS", "SESSIONS", "nosuch").contains("does not exist"));
        assertTrue(error("RG.PAUSEREGISTRATIONS").contains("wrong number of arguments"));
        unregisterAll("pa");
    }

    @Test
    void streamReaderProcessesEveryEntryThroughAConsumerGroup() throws Exception {
        direct().del("so:a", "so:b", "so:got");
        direct().xadd("so:a", Map.of("n", "0"));  // exists before the registration: read from its start
        py("GB('StreamReader').foreach(lambda r: execute('HSET', 'so:got', r['key'] + '/' + r['id'], r['value']['n']))"
                + ".register(prefix='so:*', batch=3, duration=50)", "ID", "so");
        for (int i = 1; i <= 10; i++) {
            direct().xadd("so:a", Map.of("n", String.valueOf(i)));
        }
        direct().xadd("so:b", Map.of("n", "new stream"));  // a stream that appears later is picked up
        await("all 12 entries", () -> direct().hlen("so:got") == 12);
        assertTrue(direct().hvals("so:got").contains("new stream"));
        // trimStream (default True): processed entries are deleted once acknowledged.
        await("trimmed", () -> direct().xlen("so:a") == 0 && direct().xlen("so:b") == 0);
        Map<String, Object> reg = registration("so");
        Map<String, Object> args = pairs((List<?>) pairs((List<?>) reg.get("RegistrationData")).get("args"));
        String group = (String) args.get("consumerGroup");
        assertEquals(0L, direct().xpending("so:a", group).getCount(), "everything acknowledged");
        unregisterAll("so");
    }

    @Test
    void streamFailurePolicies() throws Exception {
        direct().del("sp:c", "sp:a", "sp:r", "sp:got");
        // continue: the failure is counted and the entries are acknowledged anyway.
        py("GB('StreamReader').map(lambda r: 1 / 0).register(prefix='sp:c', onFailedPolicy='continue', trimStream=False)", "ID", "spc");
        direct().xadd("sp:c", Map.of("f", "v"));
        await("continue counted", () -> Long.valueOf(1L).equals(registrationData("spc").get("numFailures")));
        String cgroup = (String) pairs((List<?>) registrationData("spc").get("args")).get("consumerGroup");
        await("acknowledged", () -> direct().xpending("sp:c", cgroup).getCount() == 0);
        // abort: the registration stops and the entries stay pending.
        py("GB('StreamReader').map(lambda r: 1 / 0).register(prefix='sp:a', onFailedPolicy='abort', trimStream=False)", "ID", "spa");
        direct().xadd("sp:a", Map.of("f", "v"));
        await("aborted", () -> "ABORTED".equals(registrationData("spa").get("status")));
        String agroup = (String) pairs((List<?>) registrationData("spa").get("args")).get("consumerGroup");
        assertEquals(1L, direct().xpending("sp:a", agroup).getCount(), "left pending");
        // retry: the same batch runs again until it succeeds.
        py("state = {'n': 0}\n"
                + "def flaky(r):\n"
                + "    state['n'] += 1\n"
                + "    if state['n'] < 3:\n"
                + "        raise Exception('not yet')\n"
                + "    execute('SET', 'sp:got', 'attempt %d' % state['n'])\n"
                + "GB('StreamReader').foreach(flaky).register(prefix='sp:r', onFailedPolicy='retry', onFailedRetryInterval=0.05)", "ID", "spr");
        direct().xadd("sp:r", Map.of("f", "v"));
        await("retried until success", () -> "attempt 3".equals(direct().get("sp:got")));
        assertEquals(2L, registrationData("spr").get("numFailures"));
        for (String s : List.of("spc", "spa", "spr")) {
            unregisterAll(s);
        }
    }

    @Test
    void commandReaderTriggers() throws Exception {
        py("GB('CommandReader').map(lambda a: 'hello ' + a[1]).register(trigger='greet')", "ID", "cr");
        assertEquals(List.of("hello bob"), call("RG.TRIGGER", "greet", "bob"));
        assertEquals(List.of("hello k"), call("RG.TRIGGERONKEY", "greet", "k"));
        assertEquals("ERR subcommand not found", error("RG.TRIGGER", "nosuch"));
        assertTrue(error("RG.TRIGGER", "greet").contains("IndexError"), "a step error is the reply's error");
        assertTrue(pyError("GB('CommandReader').register(trigger='greet')", "ID", "cr-dup").contains("already registered"));
        assertTrue(pyError("GB('CommandReader').register()").contains("no trigger or hook argument was given"));
        assertTrue(error("RG.TRIGGER").contains("wrong number of arguments"));
        unregisterAll("cr");
    }

    @Test
    void commandHooksInterceptCommandsThroughJgears() throws Exception {
        py("def stamp(a):\n"
                + "    if a[2] == 'forbidden':\n"
                + "        raise Exception('field forbidden is refused')\n"
                + "    if a[2] == 'quiet':\n"
                + "        override_reply('shh')\n"
                + "    return call_next(*(a[1:] + ['stamped', '1']))\n"
                + "GB('CommandReader').map(stamp).register(hook='HSET', keyprefix='hk:', convertToStr=False)", "ID", "hk");
        assertEquals(2L, call("HSET", "hk:1", "name", "x"), "the hook's reply is call_next's");
        assertEquals("1", direct().hget("hk:1", "stamped"));
        assertTrue(error("HSET", "hk:2", "forbidden", "x").contains("field forbidden is refused"));
        assertEquals(0L, direct().exists("hk:2"), "a refused command does not run");
        // As on RedisGears, override_reply() belongs to KeysReader commands=[...] hooks, not to CommandReader ones.
        assertTrue(error("HSET", "hk:3", "quiet", "x").contains("Can not get command ctx"));
        assertEquals(1L, call("HSET", "other:1", "name", "x"), "another prefix is not hooked");
        assertNull(direct().hget("other:1", "stamped"));
        List<?> outside = (List<?>) py("GB('ShardsIDReader').map(lambda x: call_next('x')).run()");
        assertTrue(outside.get(1).toString().contains("Can not get CommandHook ctx"), outside.toString());
        unregisterAll("hk");
        assertEquals(1L, call("HSET", "hk:4", "name", "x"), "unhooked again");
    }

    @Test
    void registerBadInputIsAClearError() {
        assertTrue(pyError("GB().register(mode='sometimes')").contains("unknown execution mode"));
        assertTrue(pyError("GB('StreamReader').register(onFailedPolicy='panic')").contains("onFailedPolicy"));
        assertTrue(pyError("GB('StreamReader').register(batch=0)").contains("batch"));
        assertTrue(pyError("GB('ShardsIDReader').register()").contains("given reader does not exists or does not support register"));
        assertTrue(pyError("GB().register(eventTypes='set')").contains("list of strings"));
    }
}
