package io.jgears;

import io.lettuce.core.api.sync.RedisCommands;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every reader and operation of the batch GearsBuilder API, against known data, with RedisGears' reply shapes. */
class GearsApiTest extends GearsTestBase {

    @BeforeAll
    static void data() {
        RedisCommands<String, String> redis = TestServer.redisDirect();
        // The same data for each class that runs this suite (SharedModeApiTest too), on the one test server.
        redis.del("api:h:9", "api:l", "api:s", "api:z", "api:st");
        for (int i = 1; i <= 10; i++) {
            redis.set("api:n:" + i, String.valueOf(i));
        }
        redis.hset("api:h:9", Map.of("name", "zed"));
        redis.rpush("api:l", "a", "b", "c");
        redis.sadd("api:s", "x");
        redis.zadd("api:z", 1.5, "m");
        redis.xadd("api:st", Map.of("f", "v"));
    }

    private static List<String> sorted(List<Object> in) {
        List<String> out = new ArrayList<>();
        in.forEach(o -> out.add(String.valueOf(o)));
        Collections.sort(out);
        return out;
    }

    @Test
    void keysReaderRecordsAreStrOfTypedDicts() {
        assertEquals(List.of("{'event': None, 'key': 'api:h:9', 'type': 'hash', 'value': {'name': 'zed'}}"),
                results("GB().run('api:h:9')"));
        assertEquals(List.of("{'event': None, 'key': 'api:n:1', 'type': 'string', 'value': '1'}"),
                results("GB().run('api:n:1', noScan=True)"));
        assertEquals(List.of("['a', 'b', 'c']"), results("GB().map(lambda r: r['value']).run('api:l')"));
        // As in RedisGears: sets, zsets and streams have no value, and a stream's type is 'unknown'.
        assertEquals(List.of("set None"), results("GB().map(lambda r: r['type'] + ' ' + str(r['value'])).run('api:s')"));
        assertEquals(List.of("zset None"), results("GB().map(lambda r: r['type'] + ' ' + str(r['value'])).run('api:z')"));
        assertEquals(List.of("unknown None"), results("GB().map(lambda r: r['type'] + ' ' + str(r['value'])).run('api:st')"));
        assertEquals(List.of("{'event': None, 'key': 'api:n:2'}"),
                results("GB().run('api:n:2', readValue=False)"));
    }

    @Test
    void batchesOfMixedTypesAndNonAsciiKeysAndValuesReadIntact() {
        // A batch is handed to Python packed as strings (all values strings) or with a host array (some are not).
        RedisCommands<String, String> redis = TestServer.redisDirect();
        redis.set("mix:s:\u00e9\ud83d\ude00", "v\u00e9\ud83d\ude00,x");
        redis.set("mix:s:empty", "");
        assertEquals(List.of("mix:s:empty=", "mix:s:\u00e9\ud83d\ude00=v\u00e9\ud83d\ude00,x"),
                sorted(results("GB().map(lambda r: r['key'] + '=' + r['value']).run('mix:s:*')")));
        redis.hset("mix:m:h", Map.of("f\u00e9", "1"));
        redis.rpush("mix:m:l", "a", "b");
        redis.set("mix:m:s\u00e9", "plain");
        assertEquals(List.of("mix:m:h hash {'f\u00e9': '1'}", "mix:m:l list ['a', 'b']", "mix:m:s\u00e9 string plain"),
                sorted(results("GB().map(lambda r: '%s %s %s' % (r['key'], r['type'], r['value'])).run('mix:m:*')")));
        assertEquals(List.of("mix:m:h", "mix:m:l", "mix:m:s\u00e9"), sorted(results("GB('KeysOnlyReader').run('mix:m:*')")));
        assertEquals(List.of("mix:m:h ['event', 'key']", "mix:m:l ['event', 'key']", "mix:m:s\u00e9 ['event', 'key']"),
                sorted(results("GB().map(lambda r: r['key'] + ' ' + str(list(r))).run('mix:m:*', readValue=False)")),
                "RedisGears' records without the value have no type either");
        redis.del("mix:s:\u00e9\ud83d\ude00", "mix:s:empty", "mix:m:h", "mix:m:l", "mix:m:s\u00e9");
    }

    @Test
    void executeAsyncRepliesAwaitedInAsyncSteps() {
        TestServer.redisDirect().del("api:ea:l", "api:ea:n");
        assertEquals(List.of("[1, 'OK', 'v', None, ['a', 'b'], 3]"), results(
                "async def f(x):\n"
                + "    first = execute_async('INCR', 'api:ea:n')\n"        // several in flight before the first await
                + "    ok = execute_async('SET', 'api:ea:s', 'v')\n"
                + "    await execute_async('RPUSH', 'api:ea:l', 'a', 'b')\n"
                + "    return [await first, await ok, await execute_async('GET', 'api:ea:s'),\n"
                + "            await execute_async('GET', 'api:ea:none'), await execute_async('LRANGE', 'api:ea:l', 0, -1),\n"
                + "            await execute_async('INCRBY', 'api:ea:n', 2)]\n"
                + "GB('ShardsIDReader').map(f).run()"));
        List<?> failed = (List<?>) py("async def f(x):\n    return await execute_async('LPUSH', 'api:ea:s', 'x')\n"
                + "GB('ShardsIDReader').map(f).run()");
        assertTrue(failed.get(1).toString().contains("WRONGTYPE"), failed.toString());
        List<?> refused = (List<?>) py("async def f(x):\n    return await execute_async('BLPOP', 'api:ea:l', 1)\n"
                + "GB('ShardsIDReader').map(f).run()");
        assertTrue(refused.get(1).toString().contains("blocks"), refused.toString());
        // A future nobody awaits is still answered before the call returns: the command ran.
        assertEquals(List.of("4"), results("GB('ShardsIDReader').foreach(lambda x: execute_async('INCR', 'api:ea:n'))"
                + ".map(lambda x: execute('GET', 'api:ea:n')).run()"));
        TestServer.redisDirect().del("api:ea:l", "api:ea:n", "api:ea:s");
    }

    @Test
    void scanCoversEveryMatchingKeyAcrossBatches() {
        RedisCommands<String, String> redis = TestServer.redisDirect();
        for (int i = 0; i < 2500; i++) {
            redis.set("api:many:" + i, "v");
        }
        assertEquals(List.of("2500"), results("GB().count().run('api:many:*')"));
        assertEquals(List.of(2500L), results("GB().count().run('api:many:*', convertToStr=False)"));
    }

    @Test
    void keysOnlyShardsIdAndPythonReaders() {
        assertEquals(sorted(List.of("api:n:1", "api:n:10")), sorted(results("GB('KeysOnlyReader').run('api:n:1*')")));
        assertEquals(List.of("1"), results("GB('ShardsIDReader').run()"), "RedisGears' one shard outside a cluster");
        assertEquals(List.of("0", "1", "4"), results("GB('PythonReader').map(lambda x: x * x).run(lambda: (x for x in range(3)))"));
        assertEquals(List.of("{'key': 'api:st', 'id': 'X', 'value': {'f': 'v'}}".replace("'X'", "'" + firstStreamId() + "'")),
                results("GB('StreamReader').run('api:st')"));
    }

    private static String firstStreamId() {
        return TestServer.redisDirect().xrange("api:st", io.lettuce.core.Range.create("-", "+")).getFirst().getId();
    }

    @Test
    void perRecordOperations() {
        assertEquals(List.of("2", "4", "6", "8", "10"),
                results("GB().map(lambda r: int(r['value'])).filter(lambda x: x % 2 == 0).sort().run('api:n:*')"));
        assertEquals(List.of("1", "1", "2", "2"),
                results("GB('PythonReader').flatmap(lambda x: [x, x]).run(lambda: (x for x in [1, 2]))"));
        results("GB().foreach(lambda r: execute('SET', 'api:copy:' + r['key'], r['value'])).run('api:n:3')");
        assertEquals("3", TestServer.redisDirect().get("api:copy:api:n:3"));
    }

    @Test
    void wholeSetOperations() {
        String n = "GB().map(lambda r: int(r['value']))";
        assertEquals(List.of("55"), results(n + ".accumulate(lambda a, r: (a or 0) + r).run('api:n:*')"));
        assertEquals(List.of("55"), results(n + ".aggregate(0, lambda a, r: a + r, lambda a, r: a + r).run('api:n:*')"));
        assertEquals(List.of("10"), results(n + ".count().run('api:n:*')"));
        assertEquals(List.of("5.5"), results(n + ".avg().run('api:n:*')"));
        assertEquals(List.of("1", "2", "3"), results(n + ".sort().limit(3).run('api:n:*')"));
        assertEquals(List.of("4", "5"), results(n + ".sort(reverse=True).limit(2, 3).run('api:n:*')"));
        assertEquals(List.of("10", "9"), results(n + ".sort(False).limit(2).run('api:n:*')"));
        assertEquals(List.of("0", "1"), results(n + ".map(lambda x: x % 2).distinct().sort().run('api:n:*')"));
        assertEquals(List.of("55"), results(n + ".collect().repartition(lambda x: x).accumulate(lambda a, r: (a or 0) + r).run('api:n:*')"));
    }

    @Test
    void groupingOperations() {
        String n = "GB().map(lambda r: int(r['value']))";
        assertEquals(List.of("{'key': 'even', 'value': 30}", "{'key': 'odd', 'value': 25}"), sorted(results(
                n + ".groupby(lambda x: 'even' if x % 2 == 0 else 'odd', lambda k, a, r: (a or 0) + r).run('api:n:*')")));
        assertEquals(List.of("{'key': 'even', 'value': 30}", "{'key': 'odd', 'value': 25}"), sorted(results(
                n + ".localgroupby(lambda x: 'even' if x % 2 == 0 else 'odd', lambda k, a, r: (a or 0) + r).run('api:n:*')")));
        assertEquals(List.of("{'key': 'even', 'value': 5}", "{'key': 'odd', 'value': 5}"), sorted(results(
                n + ".batchgroupby(lambda x: 'even' if x % 2 == 0 else 'odd', lambda k, rs: len(rs)).run('api:n:*')")));
        assertEquals(List.of("{'key': 'even', 'value': 30}", "{'key': 'odd', 'value': 25}"), sorted(results(
                n + ".aggregateby(lambda x: 'even' if x % 2 == 0 else 'odd', 0, lambda k, a, r: a + r, lambda k, a, r: a + r).run('api:n:*')")));
        assertEquals(List.of("{'key': 'even', 'value': 5}", "{'key': 'odd', 'value': 5}"), sorted(results(
                n + ".countby(lambda x: 'even' if x % 2 == 0 else 'odd').run('api:n:*')")));
    }

    @Test
    @SuppressWarnings("unchecked")
    void convertToStrFalseGivesRespTypes() {
        List<Object> r = results("GB('PythonReader').run(lambda: (x for x in [1, 'a', [2, 'b'], {'k': 3}, None]), convertToStr=False)");
        // RedisGears' record replies: a dict or None is the text 'PY RECORD'.
        assertEquals(List.of(1L, "a", List.of(2L, "b"), "PY RECORD", "PY RECORD"), r);
        // A PythonReader iterates only a generator: a list, or iter() of one, is one record.
        assertEquals(List.of("[1, 2, 3]"), results("GB('PythonReader').run(lambda: [1, 2, 3])"));
        assertEquals(1, results("GB('PythonReader').run(lambda: iter([1, 2, 3]))").size());
    }

    @Test
    @SuppressWarnings("unchecked")
    void stepErrorsAreCollectedWhileOtherRecordsGoOn() {
        List<Object> reply = (List<Object>) py("GB().map(lambda r: int(r['value'])).map(lambda x: 10 // (x - 5)).run('api:n:*')");
        assertEquals(9, ((List<Object>) reply.get(0)).size());
        List<Object> errors = (List<Object>) reply.get(1);
        assertEquals(1, errors.size());
        String e = (String) errors.getFirst();
        assertTrue(e.startsWith("['Traceback (most recent call last):\\n'"), e);
        assertTrue(e.contains("ZeroDivisionError"), e);
        assertTrue(!e.contains("_jgears.py"), "runtime frames are hidden: " + e);
    }

    @Test
    void moduleFunctions() {
        // RedisGears' configGet reads the extra (user) keys only: its own keys answer None.
        assertEquals(List.of("None"), results("GB('ShardsIDReader').map(lambda x: configGet('MaxExecutions')).run()"));
        assertEquals(List.of("dflt"), results("GB('ShardsIDReader').map(lambda x: gearsConfigGet('NoSuchKey', 'dflt')).run()"));
        assertEquals(List.of("06S"), results("GB('ShardsIDReader').map(lambda x: hashtag()).run()"));
        assertEquals(List.of("None"), results("GB('ShardsIDReader').map(lambda x: log('hello from a test')).run()"));
        assertEquals(List.of("['api:n:1', 'hash']"),
                results("GB('ShardsIDReader').map(lambda x: [execute('GET', 'api:n:1') and 'api:n:1', execute('TYPE', 'api:h:9')]).run()"));
        assertEquals(List.of("WRONGTYPE"), results(
                "def f(x):\n  try:\n    execute('LPUSH', 'api:n:1', 'x')\n  except Exception as e:\n    return str(e).split(' ')[0]\n"
                        + "GB('ShardsIDReader').map(f).run()"));
        assertEquals(List.of("['a', 'b', 'c']"), results("from redisgears import executeCommand\nGB('ShardsIDReader').map(lambda x: executeCommand('LRANGE', 'api:l', 0, -1)).run()"));
    }

    @Test
    void executeRepliesHaveTheShapesRedisGearsGives() throws Exception {
        // RESP2 shapes, as a module call sees them: a hash is a flat list, a score a string, a config a list.
        // execute() on a blocking connection spoke RESP3 and HGETALL failed with "not iterable".
        TestServer.redisDirect().del("er:h", "er:z", "er:s");
        assertEquals(List.of("['OK', '1.5', 2, ['a', '1', 'b', '2'], 'PONG', None, '1-1', [['1-1', ['f', 'v']]]]"),
                results("GB('ShardsIDReader').map(lambda x: repr([execute('SET', 'er:1', 1.5), execute('GET', 'er:1'), "
                        + "execute('HSET', 'er:h', 'a', 1, 'b', 2), execute('HGETALL', 'er:h'), execute('PING'), "
                        + "execute('GET', 'er:nosuch'), execute('XADD', 'er:s', '1-1', 'f', 'v'), "
                        + "execute('XRANGE', 'er:s', '-', '+')])).run()"));
        assertEquals(List.of("[['a', '1.5', 'b', '2'], '1.5', ['maxmemory', '0']]"),
                results("GB('ShardsIDReader').map(lambda x: repr([execute('ZADD', 'er:z', 1.5, 'a', 2, 'b') and "
                        + "execute('ZRANGE', 'er:z', 0, -1, 'WITHSCORES'), execute('ZSCORE', 'er:z', 'a'), "
                        + "execute('CONFIG', 'GET', 'maxmemory')])).run()"));
        // The same from a key-event registration (its lanes pipeline their commands on another connection).
        TestServer.redisDirect().del("er:k", "er:seen");
        py("GB().foreach(lambda x: execute('SET', 'er:seen', repr(execute('HGETALL', 'er:h'))))"
                + ".register(prefix='er:k', eventTypes=['set'])", "ID", "er-lanes");
        try {
            call("SET", "er:k", "v");
            await("the key event", () -> TestServer.redisDirect().get("er:seen") != null);
            assertEquals("['a', '1', 'b', '2']", TestServer.redisDirect().get("er:seen"));
        } finally {
            unregisterSessions("er-lanes");
        }
    }

    @Test
    void executeKeepsBytesThatAreNotUtf8() throws Exception {
        // RedisGears sends bytes and bytearray arguments as they are and answers a string that is not UTF-8
        // as a bytearray; jgears sent str(bytearray(...)) and replaced the bytes it could not decode.
        assertEquals(List.of("['OK', 2, bytearray(b'\\xff\\x00'), 'OK', 1, [bytearray(b'\\xff\\x00'), bytearray(b'\\xfe'), None]]"),
                results("GB('ShardsIDReader').map(lambda x: repr([execute('SET', 'bin:a', b'\\xff\\x00'), "
                        + "execute('STRLEN', 'bin:a'), execute('GET', 'bin:a'), execute('SET', 'bin:b', bytearray(b'\\xfe')), "
                        + "execute('STRLEN', 'bin:b'), execute('MGET', 'bin:a', 'bin:b', 'bin:nosuch')])).run()"));
        assertEquals(List.of("bytearray(b'\\xff\\x00')"),
                results("async def f(x):\n    return repr(await execute_async('GET', 'bin:a'))\nGB('ShardsIDReader').map(f).run()"));
        // A key-event registration copying a binary value: the copy has the same bytes.
        RedisCommands<byte[], byte[]> raw = TestServer.redisDirectBytes();
        raw.del("bin:copy".getBytes());
        py("GB().foreach(lambda x: execute('SET', 'bin:copy', execute('GET', 'bin:a'))).register(prefix='bin:go', eventTypes=['set'])",
                "ID", "bin-copy");
        try {
            call("SET", "bin:go", "1");
            await("the copy", () -> raw.get("bin:copy".getBytes()) != null);
            assertArrayEquals(new byte[]{(byte) 0xff, 0}, raw.get("bin:copy".getBytes()));
        } finally {
            unregisterSessions("bin-copy");
        }
    }

    @Test
    void logChecksItsArgumentsAndTakesTheOlderLevelFirstForm() {
        assertGearsErrorText("Log message must be a string", "log(1)");
        assertGearsErrorText("log function must get a log message as input", "log()");
        assertGearsErrorText("Log level should be one of the following : debug,verbose,notice,warning", "log('m', level='bogus')");
        assertGearsErrorText("Log level must be a sting (debug/verbose/notice/warning)", "log('m', level=5)");
        // Two positional arguments: the level comes first (RedisGears' older form, logged as deprecated).
        assertEquals("OK", py("log('warning', 'level first')"));
        assertGearsErrorText("Log level should be one of the following", "log('message', 'warning')");
    }

    @Test
    void deprecatedNamesAndSmallForms() {
        assertEquals(List.of("OK - value was saved in extra config dictionary"), call("RG.CONFIGSET", "apiKey", "apiVal"));
        assertEquals(List.of("[None, 'dflt', 'apiVal', None]"), results("GB('ShardsIDReader').map(lambda x: "
                + "[ConfigGet('MaxExecutions'), GearsConfigGet('NoSuch', 'dflt'), GearsConfigGet('apiKey'), "
                + "configGet('NoSuch')]).run()"));
        assertEquals("OK", py("Log('via the old name')"));
        assertGearsErrorText("not enough arguments for time flat error", "flat_error()");
        assertGearsErrorText("Can not get command ctx", "get_command()");
        assertEquals(List.of("[]"), results("GB('ShardsIDReader').map(lambda x: repr(execute())).run()"));
        assertGearsErrorText("unknown execution mode", "GB().run(mode='sync')");
        assertGearsErrorText("execution mode must be a string", "GB().run(mode=5)");
    }

    @Test
    void aScriptThatRegistersAnswersOkEvenWhenItAlsoRuns() {
        for (String code : List.of(
                "GB('CommandReader').map(lambda x: 'reg-ok').register(trigger='RUNREG1')\nGB('ShardsIDReader').map(lambda x: 'ran').run()",
                "GB('ShardsIDReader').map(lambda x: 'ran').run()\nGB('CommandReader').map(lambda x: 'reg-ok').register(trigger='RUNREG2')")) {
            assertEquals("OK", py(code, "ID", code.contains("RUNREG1") ? "runreg1" : "runreg2"));
        }
        try {
            assertEquals(List.of("reg-ok"), call("RG.TRIGGER", "RUNREG1"));
            assertEquals(List.of("reg-ok"), call("RG.TRIGGER", "RUNREG2"));
        } finally {
            unregisterSessions("runreg1", "runreg2");
        }
        // The run stays stored, holding its session, until RG.DROPEXECUTION (as RedisGears keeps it).
        List<String> kept = new ArrayList<>();
        for (Object e : (List<?>) call("RG.DUMPEXECUTIONS")) {
            String id = String.valueOf(((List<?>) e).get(1));
            if (List.of(List.of("ran"), List.of()).equals(call("RG.GETRESULTS", id))) {
                kept.add(id);
            }
        }
        assertEquals(2, kept.size(), "both scripts' runs are kept");
        assertTrue(sessionIds().containsAll(List.of("runreg1", "runreg2")), "their sessions stay after RG.UNREGISTER");
        kept.forEach(id -> assertEquals("OK", call("RG.DROPEXECUTION", id)));
        assertTrue(!sessionIds().contains("runreg1") && !sessionIds().contains("runreg2"), "freed with their last execution");
        // A script that only runs leaves nothing stored.
        int before = ((List<?>) call("RG.DUMPEXECUTIONS")).size();
        py("GB('ShardsIDReader').map(lambda x: 'only ran').run()");
        assertEquals(before, ((List<?>) call("RG.DUMPEXECUTIONS")).size());
    }

    private void assertGearsErrorText(String expected, String code) {
        String e = pyError(code);
        assertTrue(e.contains("gears.error: " + expected), code + " -> " + e);
    }

    @Test
    void atomicRunsTheBlockInOneTransaction() {
        String code = "def f(x):\n"
                + "  with atomic() as a:\n"
                + "    execute('SET', 'api:atomic', '1')\n"
                + "    execute('INCR', 'api:atomic')\n"
                + "  return a.results\n"
                + "GB('ShardsIDReader').map(f).run()";
        assertEquals(List.of("['OK', 2]"), results(code));
        assertEquals("2", TestServer.redisDirect().get("api:atomic"));
        // An exception inside the block discards it: nothing was applied.
        results("def g(x):\n  try:\n    with atomic():\n      execute('SET', 'api:atomic', '99')\n      raise ValueError('no')\n"
                + "  except ValueError:\n    return 'discarded'\nGB('ShardsIDReader').map(g).run()");
        assertEquals("2", TestServer.redisDirect().get("api:atomic"));
    }

    @Test
    void executeRefusesConnectionStateAndIsolatesBlockingCommands() {
        assertEquals(List.of("refused"), results("def f(x):\n  try:\n    execute('SELECT', '2')\n  except Exception as e:\n"
                + "    return 'refused' if 'not allowed in execute()' in str(e) else str(e)\nGB('ShardsIDReader').map(f).run()"));
        // A blocking command runs on a connection of its own: it does not stall other sessions' execute().
        String id = (String) py("GB('ShardsIDReader').map(lambda x: str(execute('BLPOP', 'api:blk', '60'))).run()", "UNBLOCKING");
        java.util.concurrent.CompletableFuture<List<Object>> other = java.util.concurrent.CompletableFuture.supplyAsync(
                () -> results("GB('ShardsIDReader').map(lambda x: execute('ECHO', 'x')).run()"));
        assertEquals(List.of("x"), assertDoesNotThrow(() -> other.get(20, java.util.concurrent.TimeUnit.SECONDS)));
        TestServer.redisDirect().rpush("api:blk", "item");
        assertEquals(List.of(List.of("['api:blk', 'item']"), List.of()), call("RG.GETRESULTSBLOCKING", id));
        assertEquals("OK", call("RG.DROPEXECUTION", id));
    }

    @Test
    void replyIsOkWhenNothingRan() {
        assertEquals("OK", py("x = 1"));
    }

    @Test
    void scriptLoadErrorsAreErrorReplies() {
        assertEquals("Error type: <class 'SyntaxError'>, Value: '(' was never closed (<string>, line 1)", pyError("x = ("));
        String e = pyError("raise Exception('bad')");
        assertEquals("['Traceback (most recent call last):\\n', '  File \"<string>\", line 1, in <module>\\n', 'Exception: bad\\n']", e);
    }
}
