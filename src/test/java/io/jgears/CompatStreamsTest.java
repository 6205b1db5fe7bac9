package io.jgears;

import io.jgears.redis.RedisCommandException;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * RedisGears 1.2's StreamReader registrations, time events, pause/unpause and the redisgears module,
 * as jgears gives them (every command goes through jgears, so sync registrations are awaited).
 */
class CompatStreamsTest extends GearsTestBase {

    private static Map<String, Object> pairs(List<?> flat) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i + 1 < flat.size(); i += 2) {
            m.put(String.valueOf(flat.get(i)), flat.get(i + 1));
        }
        return m;
    }

    /** The RG.DUMPREGISTRATIONS entry (as a flat list) of the registration with this id. */
    private List<?> entry(String id) {
        for (Object r : (List<?>) call("RG.DUMPREGISTRATIONS")) {
            if (id.equals(((List<?>) r).get(1))) {
                return (List<?>) r;
            }
        }
        return null;
    }

    private List<?> data(String id) {
        return (List<?>) entry(id).get(7);
    }

    /** Registers the script's `reg` (session `sid`) and returns its registration id through a trigger. */
    private String register(String sid, String registration) {
        py("reg = " + registration + "\n"
                + "GB('CommandReader').map(lambda x: reg).register(mode='sync', trigger='" + sid + "_id')", "ID", sid);
        return String.valueOf(((List<?>) call("RG.TRIGGER", sid + "_id")).getFirst());
    }

    private void unregisterSession(String sid) throws InterruptedException {
        for (Object r : (List<?>) call("RG.DUMPREGISTRATIONS")) {
            List<?> e = (List<?>) r;
            if (String.valueOf(e.get(9)).contains("'sessionName':'" + sid + "'")) {
                call("RG.UNREGISTER", (String) e.get(1));
            }
        }
        // A session that is gone is listed as "Session <id> does not exists", as RedisGears does.
        await(sid + " freed", () -> String.valueOf(call("RG.PYDUMPSESSIONS", "SESSIONS", sid)).contains("does not exists"));
    }

    @Test
    void theRedisgearsModuleIsAGlobalName() {
        assertEquals(List.of("PONG"), results("GB('ShardsIDReader').map(lambda x: redisgears.executeCommand('PING')).run()"));
        assertEquals(List.of("True"), results("GB('ShardsIDReader').map(lambda x: str(redisgears.registerTimeEvent is registerTE)).run()"));
    }

    @Test
    void registerTEIsRedisGearsFormWithAKeyThatKeepsTheEventAlive() throws Exception {
        call("DEL", "cte:key", "cte:n", "cte:m");
        assertEquals(List.of("True"), results("GB('ShardsIDReader').map(lambda x: str(registerTE(1, lambda: execute('INCR', 'cte:n'), 'cte:key'))).run()"));
        assertEquals(List.of("False"), results("GB('ShardsIDReader').map(lambda x: str(registerTE(1, lambda: execute('INCR', 'cte:m'), 'cte:key'))).run()"));
        await("fired once a second", () -> call("GET", "cte:n") != null);
        assertNull(call("GET", "cte:m"), "the refused event never fires");
        call("DEL", "cte:key");
        Thread.sleep(1500);  // a firing already under way may still count
        Object stopped = call("GET", "cte:n");
        Thread.sleep(1500);
        assertEquals(stopped, call("GET", "cte:n"), "deleting the key stopped the event");
        for (String[] c : new String[][]{{"registerTE(2, 2)", "gears.error: callback must be a function"},
                {"registerTE('2', lambda: 1)", "time argument must be a long"},
                {"registerTE(1)", "not enough arguments for time event"}}) {
            String e = pyError(c[0]);
            assertTrue(e.contains(c[1]), c[0] + " -> " + e);
        }
    }

    @Test
    void registerTimerKeepsJgearsMillisecondTimersWithIds() throws Exception {
        call("DEL", "ctm:n");
        Object id = results("GB('ShardsIDReader').map(lambda x: registerTimer(10, lambda: execute('INCR', 'ctm:n'), desc='fast')).run()").getFirst();
        assertTrue(String.valueOf(id).startsWith("te-"), String.valueOf(id));
        await("fires every 10 ms", () -> {
            Object n = call("GET", "ctm:n");
            return n != null && Long.parseLong(String.valueOf(n)) >= 3;
        });
        assertEquals("OK", call("RG.UNREGISTERTE", String.valueOf(id)));
    }

    @Test
    void streamRunFromIdIsExclusive() {
        call("DEL", "cfi:s");
        call("XADD", "cfi:s", "1-1", "a", "1");
        call("XADD", "cfi:s", "2-1", "b", "2");
        assertEquals(List.of("2-1"), results("GB('StreamReader').map(lambda x: x['id']).run('cfi:s', fromId='1-1')"));
        assertEquals(List.of("1-1", "2-1"), results("GB('StreamReader').map(lambda x: x['id']).run('cfi:s')"));
    }

    @Test
    void syncStreamRegistrationRunsBeforeTheXaddReplies() throws Exception {
        call("DEL", "css:foo", "css:foo2", "css:n");
        String id = register("css", "GB('StreamReader').foreach(lambda r: execute('INCR', 'css:n')).register(regex='css:foo', mode='sync')");
        call("XADD", "css:foo", "*", "x", "1");
        assertEquals("1", call("GET", "css:n"), "ran before XADD's reply");
        call("XADD", "css:foo2", "*", "x", "1");
        assertEquals("1", call("GET", "css:n"), "a prefix without * matches the whole name only");
        List<?> d = data(id);
        assertEquals("lastEstimatedLagMS", d.get(16));
        assertEquals("avgEstimatedLagMS", d.get(18));
        assertEquals("lastError", d.get(20));
        assertNull(d.get(21), "no error yet: nil");
        assertEquals("OK", d.get(25));
        assertEquals(0L, call("XLEN", "css:foo"), "trimmed once processed");
        unregisterSession("css");
    }

    @Test
    void pauseTakesARegistrationIdAndOnlyStreamReadersPause() throws Exception {
        call("DEL", "cpu:s", "cpu:n");
        String id = register("cpu", "GB('StreamReader').foreach(lambda r: execute('INCR', 'cpu:n')).register(prefix='cpu:s', mode='sync')");
        call("XADD", "cpu:s", "*", "x", "1");
        assertEquals("1", call("GET", "cpu:n"));
        assertEquals("OK", call("RG.PAUSEREGISTRATIONS", id));
        assertEquals("PAUSED", data(id).get(25));
        call("XADD", "cpu:s", "*", "x", "2");
        assertEquals("1", call("GET", "cpu:n"), "paused: the entry waits");
        assertEquals("OK", call("RG.UNPAUSEREGISTRATIONS", id));
        await("the waiting entry ran", () -> "2".equals(call("GET", "cpu:n")));
        assertTrue(error("RG.PAUSEREGISTRATIONS", "nosuch").contains("Execution nosuch does not exists on shard"));
        String keys = register("cpk", "GB().register(prefix='cpk:*')");
        assertEquals("Reader KeysReader does not support pause", error("RG.PAUSEREGISTRATIONS", keys));
        assertEquals("Reader KeysReader does not support unpause", error("RG.UNPAUSEREGISTRATIONS", keys));
        assertThrows(RedisCommandException.class, () -> call("RG.PAUSEREGISTRATIONS", id, "extra"));
        unregisterSession("cpu");
        unregisterSession("cpk");
    }

    @Test
    void unregisterLetsTheRunningBatchFinishAcknowledgedAndLeavesTheRest() throws Exception {
        call("DEL", "cuu:s", "cuu:n", "cuu:go");
        // The step holds its batch until cuu:go is set, so RG.UNREGISTER lands while it runs.
        String id = register("cuu", "GB('StreamReader').foreach(lambda r: execute('INCR', 'cuu:n'))"
                + ".foreach(lambda r: [__import__('time').sleep(0.05) for _ in range(2400) if not execute('GET', 'cuu:go')])"
                + ".register(prefix='cuu:s')");
        call("XADD", "cuu:s", "*", "x", "1");
        call("XADD", "cuu:s", "*", "x", "2");
        await("the first batch started", () -> "1".equals(call("GET", "cuu:n")));
        assertEquals("OK", call("RG.UNREGISTER", id));
        call("SET", "cuu:go", "1");
        await("the running batch's entry acknowledged and trimmed", () -> Long.valueOf(1).equals(call("XLEN", "cuu:s")));
        Thread.sleep(1000);
        assertEquals(1L, call("XLEN", "cuu:s"), "the entry after it is not read");
        assertEquals("1", call("GET", "cuu:n"));
        unregisterSession("cuu");
    }

    @Test
    void aPauseErrorFromTheStepPausesTheRegistration() throws Exception {
        call("DEL", "cpe:s", "cpe:n", "cpe:stop");
        String id = register("cpe", "GB('StreamReader').foreach(lambda r: flat_error('PAUSE asked') if execute('GET', 'cpe:stop') else execute('INCR', 'cpe:n'))"
                + ".register(prefix='cpe:s', mode='sync')");
        call("SET", "cpe:stop", "1");
        call("XADD", "cpe:s", "*", "x", "1");
        assertEquals("PAUSED", data(id).get(25));
        assertEquals("PAUSE asked", data(id).get(21));
        call("DEL", "cpe:stop");
        assertEquals("OK", call("RG.UNPAUSEREGISTRATIONS", id));
        await("the entry ran after unpause", () -> "1".equals(call("GET", "cpe:n")));
        await("success clears the error", () -> data(id).get(21) == null);
        unregisterSession("cpe");
    }

    @Test
    void keysRegistrationWithoutValuesGivesKeyAndEventOnly() throws Exception {
        call("DEL", "ckv:l");
        py("GB().foreach(lambda x: execute('RPUSH', 'ckv:l', str(sorted(x.keys())))).register(prefix='ckv:k*', readValue=False, mode='sync')", "ID", "ckv");
        call("SET", "ckv:k1", "v");
        assertEquals(List.of("['event', 'key']"), call("LRANGE", "ckv:l", "0", "-1"));
        unregisterSession("ckv");
    }

    @Test
    void aFailingStreamRegistrationRetriesAgainOnceItsRedisIsAMasterAgain() throws Exception {
        String id = register("replicaback", "GB('StreamReader').map(lambda x: x['nosuchfield'])"
                + ".register(prefix='rb:*', onFailedPolicy='retry', onFailedRetryInterval=0)");
        try {
            call("XADD", "rb:s", "*", "foo", "bar");
            await("the failing batch to be retried", () -> (Long) pairs(data(id)).get("numTriggered") >= 3);
            try {
                // Nothing listens there: Redis stays a replica and refuses the group reads (XREADGROUP writes),
                // some of them before jgears' role watch (every second) sees the change.
                call("REPLICAOF", "127.0.0.1", "1");
                Thread.sleep(3000);
            } finally {
                call("REPLICAOF", "NO", "ONE");
            }
            long before = (Long) pairs(data(id)).get("numTriggered");
            await("retries to go on once Redis is a master again", () -> (Long) pairs(data(id)).get("numTriggered") > before + 2);
        } finally {
            call("RG.UNREGISTER", id);
            call("DEL", "rb:s");
        }
    }
}
