package io.jgears;

import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * RedisGears 1.2's record shapes and operator results, its management replies (RG.PYDUMPSESSIONS,
 * RG.PYPROFILE, RG.GETEXECUTION, SLOWLOG), and jgears' own state kept out of the clients' keyspace.
 */
class CompatRecordsTest extends GearsTestBase {

    private static final String FIVE = "def five():\n    for i in range(1, 6):\n        yield i\n";

    // ------------------------------------------------------------------ operators

    @Test
    void groupKeysBecomeStringsAsInRedisGears() {
        List<Object> counted = results(FIVE + "GB('PythonReader').countby(lambda x: x % 2).run(five)");
        assertEquals(Set.of("{'key': '1', 'value': 3}", "{'key': '0', 'value': 2}"), Set.copyOf(counted));
        List<Object> grouped = results(FIVE + "GB('PythonReader').groupby(lambda x: (x > 2,), lambda k, a, r: (a or 0) + r).run(five)");
        assertEquals(Set.of("{'key': '(True,)', 'value': 12}", "{'key': '(False,)', 'value': 3}"), Set.copyOf(grouped));
        List<Object> local = results(FIVE + "GB('PythonReader').__localAggregateby__(lambda x: x > 3, 0, lambda k, a, r: a + 1)"
                + ".map(lambda r: (r['key'], r['value'])).run(five)");
        assertEquals(Set.of("('True', 2)", "('False', 3)"), Set.copyOf(local));
    }

    @Test
    void flatmapFlattensOnlyListsAndGivesTheirItemsLastFirst() {
        assertEquals(List.of("3", "2", "1"), results("GB('ShardsIDReader').flatmap(lambda x: [1, 2, 3]).run()"));
        assertEquals(List.of("(1, 2, 3)"), results("GB('ShardsIDReader').flatmap(lambda x: (1, 2, 3)).run()"));
        assertEquals(List.of("abc"), results("GB('ShardsIDReader').flatmap(lambda x: 'abc').run()"));
        assertEquals(List.of("1", "2", "3"), results(FIVE + "GB('PythonReader').limit(3).sort().run(five)"),
                "sort() still ascends");
    }

    @Test
    void emptyInputGivesNoResultAndFalsyAccumulatorsRestartFromZero() {
        for (String op : List.of("count()", "avg()", "aggregate(0, lambda a, r: a + 1, lambda a, r: a + r)",
                "countby(lambda r: r['type'])", "accumulate(lambda a, r: (a or 0) + 1)")) {
            assertEquals(List.of(List.of(), List.of()), py("GB()." + op + ".run('cr:nosuch:*')"), op);
        }
        assertEquals(List.of("5"), results(FIVE + "GB('PythonReader').count().run(five)"));
        assertEquals(List.of("5"), results(FIVE + "GB('PythonReader').aggregate(5, lambda a, r: 0, lambda a, r: a + r).run(five)"),
                "a falsy accumulator (0) is replaced by zero (5), as RedisGears does");
    }

    // ------------------------------------------------------------------ readers

    @Test
    void keysReaderRecordsHaveRedisGearsTypesAndValues() {
        var direct = TestServer.redisDirect();
        direct.set("cr:k:str", "v");
        direct.sadd("cr:k:set", "a");
        direct.zadd("cr:k:zset", 1, "m");
        direct.xadd("cr:k:stream", Map.of("f", "v"));
        direct.rpush("cr:k:list", "a", "b");
        try {
            Set<Object> records = Set.copyOf(results("GB().run('cr:k:*')"));
            assertEquals(Set.of("{'event': None, 'key': 'cr:k:str', 'type': 'string', 'value': 'v'}",
                    "{'event': None, 'key': 'cr:k:set', 'type': 'set', 'value': None}",
                    "{'event': None, 'key': 'cr:k:zset', 'type': 'zset', 'value': None}",
                    "{'event': None, 'key': 'cr:k:stream', 'type': 'unknown', 'value': None}",
                    "{'event': None, 'key': 'cr:k:list', 'type': 'list', 'value': ['a', 'b']}"), records);
            assertEquals(List.of("{'event': None, 'key': 'cr:k:str'}"), results("GB().run('cr:k:str', readValue=False)"));
            assertEquals(List.of("{'event': None, 'key': 'cr:k:none', 'type': 'empty', 'value': None}"),
                    results("GB().run('cr:k:none', noScan=True)"));
            assertEquals(List.of(), results("GB('KeysOnlyReader').run('cr:k:none', noScan=True)"));
            assertEquals(List.of("'1'"), results("GB('ShardsIDReader').map(lambda x: repr(x)).run()"));
        } finally {
            direct.del("cr:k:str", "cr:k:set", "cr:k:zset", "cr:k:stream", "cr:k:list");
        }
    }

    @Test
    void eventTypesMatchCaseInsensitivelyAndReadValueFalseGivesNoType() throws Exception {
        py("GB().foreach(lambda r: execute('RPUSH', 'cr:ev:log', repr(r))).register(prefix='cr:ev:k*', eventTypes=['SET'], "
                + "readValue=False, mode='sync')", "ID", "crev");
        try {
            call("SET", "cr:ev:k1", "x");
            var direct = TestServer.redisDirect();
            await("the event", () -> direct.llen("cr:ev:log") == 1);
            assertEquals("{'event': 'set', 'key': 'cr:ev:k1'}", direct.lindex("cr:ev:log", 0));
        } finally {
            unregisterSession("crev");
            TestServer.redisDirect().del("cr:ev:log", "cr:ev:k1");
        }
    }

    @Test
    void recordsReplyAsRedisGearsSendsThem() throws Exception {
        try (RawResp raw = new RawResp(TestServer.port())) {
            Object reply = raw.send("RG.PYEXECUTE", "GB('PythonReader').run(lambda: (x for x in [1, 1.5, None, {'a': 1}, (1, 2), "
                    + "True, b'by', bytearray(b'ba'), '-ERR neg', '+STAT', '-', [2, 'x']]), convertToStr=False)").read();
            assertEquals(List.of(List.of(1L, "1.500000", "PY RECORD", "PY RECORD", "PY RECORD", 1L, "by", "PY RECORD",
                    "-ERR neg", "STAT", "-", List.of(2L, "x")), List.of()), reply);
            assertEquals(List.of(List.of("-ERR x", "OK"), List.of()),
                    raw.send("RG.PYEXECUTE", "GB('PythonReader').run(lambda: (x for x in ['-ERR x', '+OK']))").read(),
                    "the '+'/'-' rule applies to str() results too");
        }
    }

    @Test
    void aNegativeFloatIsABulkStringNotAnErrorReply() {
        // '%f' text starting with '-' went out as an error reply, by the rule meant for str results.
        assertEquals(List.of("-1.500000", "-0.000000", "-inf", "2.000000"),
                results("GB('PythonReader').run(lambda: (x for x in [-1.5, -0.0, float('-inf'), 2.0]), convertToStr=False)"));
    }

    @Test
    void pythonAttemptTracebackZeroGivesTheShortForm() {
        assertEquals(List.of("OK - value was saved in extra config dictionary"), call("RG.CONFIGSET", "PythonAttemptTraceback", "0"));
        try {
            assertEquals(List.of("Error type: <class 'ZeroDivisionError'>, Value: division by zero"),
                    errors("GB('ShardsIDReader').map(lambda x: 1/0).run()"));
            assertEquals("Error type: <class 'ValueError'>, Value: load failed", pyError("raise ValueError('load failed')"));
            assertEquals(List.of(new io.jgears.redis.RedisError("Failed setting config value for key 'PythonAttemptTraceback' with value 'x'")),
                    call("RG.CONFIGSET", "PythonAttemptTraceback", "x"));
        } finally {
            call("RG.CONFIGSET", "PythonAttemptTraceback", "1");
        }
        assertTrue(errors("GB('ShardsIDReader').map(lambda x: 1/0).run()").getFirst().toString().startsWith("['Traceback"));
    }

    // ------------------------------------------------------------------ jgears' state

    @Test
    void jgearsStateIsNotInTheClientsKeyspaceAndSurvivesFlushall() throws Exception {
        assertEquals("OK", py("GB('CommandReader').map(lambda a: 'state ok').register(trigger='crstate')", "ID", "crstate"));
        RedisClient stateClient = RedisClient.create(RedisURI.builder(TestServer.get().redisUri()).withDatabase(15).build());
        try (StatefulRedisConnection<String, String> sc = stateClient.connect()) {
            var direct = TestServer.redisDirect();
            assertEquals(List.of(), direct.keys("{jgears}*"), "no jgears keys among the clients'");
            assertTrue(sc.sync().zrange("{jgears}:sessions", 0, -1).contains("crstate"), "stored in the state database");
            assertEquals("OK", call("SET", "{jgears}:mine", "v"), "clients may use any key name");
            assertEquals("v", call("GET", "{jgears}:mine"));
            call("DEL", "{jgears}:mine");
            List<?> seen = (List<?>) py("GB('ShardsIDReader').map(lambda x: str(execute('KEYS', '{jgears}*'))).run()");
            assertEquals(List.of("[]"), seen.getFirst());

            assertEquals("OK", call("FLUSHALL"));
            await("the session stored again after FLUSHALL", () -> sc.sync().zrange("{jgears}:sessions", 0, -1).contains("crstate"));
            assertEquals(List.of("state ok"), call("RG.TRIGGER", "crstate"));
        } finally {
            stateClient.shutdown();
            unregisterSession("crstate");
        }
    }

    // ------------------------------------------------------------------ management replies

    @Test
    void pyDumpSessionsHasRedisGearsShape() throws Exception {
        assertEquals("OK", py("GB('CommandReader').register(trigger='crdump')", "ID", "crdump"));
        try {
            List<?> dump = (List<?>) call("RG.PYDUMPSESSIONS", "SESSIONS", "crdump", "crnone");
            List<?> entry = (List<?>) dump.get(0);
            assertEquals(List.of("ID", "crdump", "sessionDescription"), entry.subList(0, 3));
            assertEquals(null, entry.get(3), "no description is nil");
            assertEquals("registrations", entry.get(14));
            assertEquals(16, entry.size());
            assertEquals("Session crnone does not exists", dump.get(1));
            List<?> verbose = (List<?>) ((List<?>) call("RG.PYDUMPSESSIONS", "VERBOSE", "SESSIONS", "crdump")).getFirst();
            List<?> registrations = (List<?>) verbose.getLast();
            assertEquals("id", ((List<?>) registrations.getFirst()).getFirst(), "full registrations, last");
            assertEquals(List.of(), call("RG.PYDUMPSESSIONS", "DEAD"));
            assertEquals(List.of(), call("RG.PYDUMPSESSIONS", "SESSIONS"));
            assertEquals("Unknown option foo", error("RG.PYDUMPSESSIONS", "foo"));
            List<?> holders = (List<?>) ((List<?>) call("RG.PYDUMPSESSIONS", "HOLDERS", "SESSIONS", "crdump")).getFirst();
            assertTrue(holders.contains("holders") && holders.indexOf("holders") > holders.indexOf("registrations"),
                    "jgears' extras only with HOLDERS, after RedisGears' fields");
        } finally {
            unregisterSession("crdump");
        }
    }

    @Test
    void pyProfileReportsTheStepFunctionsOfASession() {
        assertEquals("Wrong subcommand given to RG.PYPROFILE", error("RG.PYPROFILE", "nosuch", "x"));
        assertTrue(error("RG.PYPROFILE", "RESET").contains("wrong number of arguments"));
        assertEquals("session does not exists", error("RG.PYPROFILE", "STATS", "crnosuch"));
        call("RG.CONFIGSET", "ProfileExecutions", "1");
        try {
            assertEquals("OK", py("def crmapper(r):\n    return r\n"
                    + "def crextract(r):\n    return 'k'\n"
                    + "GB('CommandReader').map(crmapper).countby(crextract).register(trigger='crprof')", "ID", "crprof"));
            call("RG.TRIGGER", "crprof", "a");
            String stats = (String) call("RG.PYPROFILE", "STATS", "crprof");
            assertTrue(stats.contains("crmapper") && stats.contains("crextract") && stats.contains("Ordered by: internal time"), stats);
            assertTrue(((String) call("RG.PYPROFILE", "STATS", "crprof", "ncalls")).contains("crmapper"));
            assertEquals("OK", call("RG.PYPROFILE", "RESET", "crprof"));
            assertTrue(error("RG.PYPROFILE", "STATS", "crprof").contains("Cannot create or construct"),
                    "nothing profiled since the reset: pstats' error, as in RedisGears");
        } finally {
            call("RG.CONFIGSET", "ProfileExecutions", "0");
            unregisterSession("crprof");
        }
    }

    @Test
    void getExecutionKeepsRedisGearsPositionsWhenProfiling() {
        call("RG.CONFIGSET", "ProfileExecutions", "1");
        String eid;
        try {
            eid = (String) py("GB('ShardsIDReader').flatmap(lambda x: [x]).run()", "UNBLOCKING");
            call("RG.GETRESULTSBLOCKING", eid);
        } finally {
            call("RG.CONFIGSET", "ProfileExecutions", "0");
        }
        List<?> details = (List<?>) ((List<?>) ((List<?>) call("RG.GETEXECUTION", eid)).getFirst()).get(3);
        assertEquals("steps", details.get(14));
        for (Object step : (List<?>) details.get(15)) {
            assertEquals(8, ((List<?>) step).size(), step.toString());
        }
        assertEquals("read_duration_us", details.get(16), "jgears' µs figures come after RedisGears' fields");
        call("RG.DROPEXECUTION", eid);
    }

    @Test
    void slowRgCommandsAppearInSlowlog() throws Exception {
        var direct = TestServer.redisDirect();
        String before = direct.configGet("slowlog-log-slower-than").get("slowlog-log-slower-than");
        direct.configSet("slowlog-log-slower-than", "50000");
        try {
            Thread.sleep(1100);
            call("RG.PYSTATS");  // jgears reads the threshold again (at most once a second)
            Thread.sleep(300);
            call("SLOWLOG", "RESET");
            assertEquals(0L, call("SLOWLOG", "LEN"));
            String code = "GB('ShardsIDReader').foreach(lambda x: __import__('time').sleep(0.2)).run()";
            py(code);
            List<?> entry = (List<?>) ((List<?>) call("SLOWLOG", "GET", "1")).getFirst();
            assertEquals(List.of("RG.PYEXECUTE", code), entry.get(3));
            assertTrue((Long) entry.get(2) >= 200_000, entry.toString());
            assertTrue((Long) call("SLOWLOG", "LEN") >= 1);
            call("RG.DUMPEXECUTIONS");  // fast: not logged
            assertEquals(Set.of("RG.PYEXECUTE"), ((List<?>) call("SLOWLOG", "GET", "-1")).stream()
                    .map(e -> String.valueOf(((List<?>) ((List<?>) e).get(3)).getFirst())).collect(Collectors.toSet()));
            assertEquals("OK", call("SLOWLOG", "RESET"));
            assertEquals(0L, call("SLOWLOG", "LEN"));
        } finally {
            direct.configSet("slowlog-log-slower-than", before);
        }
    }

    private void unregisterSession(String session) {
        List<?> dump = (List<?>) call("RG.PYDUMPSESSIONS", "SESSIONS", session);
        if (dump.getFirst() instanceof List<?> entry) {
            for (Object id : (List<?>) entry.get(entry.indexOf("registrations") + 1)) {
                call("RG.UNREGISTER", String.valueOf(id));
            }
        }
    }
}
