package io.jgears;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Arguments are checked as RedisGears 1.2 checks them, and refused with its texts (as gears.error in
 * Python); no Java class name ever reaches a reply.
 */
class CompatArgumentsTest extends GearsTestBase {

    /** A script's load error: its last line is {@code gears.error: <text>}. */
    private void assertGearsError(String text, String code) {
        String e = pyError(code);
        assertTrue(e.contains("gears.error: " + text), code + " -> " + e);
        assertNoJavaNames(e);
    }

    private static void assertNoJavaNames(String reply) {
        for (String java : List.of("java.", "polyglot.", "com.oracle.", "io.jgears.")) {
            assertFalse(reply.contains(java), "a Java name leaked: " + reply);
        }
    }

    @Test
    void stepsTakeTheirNumberOfPythonFunctions() {
        assertGearsError("wrong number of args to map function", "GB().map(lambda r: r, 2).run()");
        assertGearsError("map argument must be a function", "GB().map(1).run()");
        assertGearsError("filter argument must be a function", "GB().filter(len).run()");
        assertGearsError("wrong number of args to foreach function", "GB().foreach().run()");
        assertGearsError("wrong number of args to groupby function", "GB().groupby(1, 2, 3).run()");
        assertGearsError("groupby reducer argument must be a function", "GB().groupby(lambda r: r, 2).run()");
        assertGearsError("batchgroupby extractor argument must be a function", "GB().batchgroupby(1, 2).run()");
        assertGearsError("wrong number of args to collect function", "GB().collect(1).run()");
        assertGearsError("wrong number of args to limit function", "GB().limit().run()");
        assertGearsError("limit argument must be a number", "GB().limit(1, 'x').run()");
        assertGearsError("map argument must be a function", "GB().avg(1).run()");
        assertGearsError("accumulate argument must be a function", "GB().accumulate('f').run()");
        // async def steps are Python functions too.
        assertEquals(List.of(), errors("async def f(r):\n    return r\nGB('ShardsIDReader').map(f).run()"));
    }

    @Test
    void readersAndRunArgumentsAreChecked() {
        assertGearsError("reader argument must be a string", "GB(1).run()");
        assertGearsError("The given reader does not exists", "GB('NoSuchReader')");
        assertGearsError("Given reader do not support run or not exists", "GB('CommandReader').run()");
        assertGearsError("pyreader argument must be a function", "GB('PythonReader').run()");
        assertGearsError("pyreader argument must be a function", "GB('PythonReader', shardReaderCallback).run('*')");
        assertGearsError("regex argument must be a string", "GB().run(5)");
        assertGearsError("fromId argument must be a string", "GB('StreamReader').run('s', fromId=1)");
        assertGearsError("exactMatch value is not boolean", "GB().run(noScan=1)");
        assertGearsError("readValue value is not boolean", "GB().run(readValue='no')");
        assertGearsError("Can not run more then 1 executions in a single script",
                "GB('ShardsIDReader').run()\nGB('ShardsIDReader').run()");
        assertEquals(List.of("0000000000000000000000000000000000000000"), results("GB('PythonReader').run(shardReaderCallback)"));
    }

    @Test
    void registerArgumentsAreChecked() {
        assertGearsError("regex argument must be a string", "GB().register(1)");
        assertGearsError("regex argument must be a string", "GB().register(prefix=None)");
        assertGearsError("given eventTypes is not iterable", "GB().register(eventTypes=1)");
        assertGearsError("given key type is not string", "GB().register(keyTypes=[1])");
        assertGearsError("unknown key type", "GB().register(keyTypes=['bogus'])");
        assertGearsError("given commands is not iterable", "GB().register(commands=1)");
        assertGearsError("given command type is not string", "GB().register(commands=['get', 2])");
        assertGearsError("readValue is not boolean", "GB().register(readValue=1)");
        assertGearsError("execution mode must be a string", "GB().register(mode=1)");
        assertGearsError("unknown execution mode", "GB().register(mode='soon')");
        assertGearsError("OnRegistered argument must be a function", "GB().register(onRegistered=1)");
        assertGearsError("pyTrimmStream argument must be a boolean", "GB('StreamReader').register(trimStream='x')");
        assertGearsError("batch argument must be a number", "GB('StreamReader').register(batch='x')");
        assertGearsError("onFailedPolicy must be Continue/Abort/Retry", "GB('StreamReader').register(onFailedPolicy='x')");
        assertGearsError("ExecutionMode sync can only be combined with OnFailedPolicy Continue",
                "GB('StreamReader').register(mode='sync', onFailedPolicy='abort')");
        assertGearsError("no trigger or hook argument was given", "GB('CommandReader').register('x')");
        assertGearsError("trigger argument is not string", "GB('CommandReader').register(trigger=1)");
        assertGearsError("trigger argument can not be given with keyprefix or hook",
                "GB('CommandReader').register(trigger='a', hook='set')");
        assertGearsError("given reader does not exists or does not support register", "GB('ShardsIDReader').register()");
    }

    @Test
    void moduleFunctionsCheckTheirArguments() {
        assertGearsError("the given command must be a string", "execute(1)");
        assertGearsError("callback must be a function", "registerTE(2, 2)");
        assertGearsError("time argument must be a long", "registerTE('2', lambda: None)");
        assertGearsError("get_config key must be a string", "configGet(1)");
        assertGearsError("Can not get CommandHook ctx", "call_next()");
        List<Object> errors = errors("GB('ShardsIDReader').map(lambda r: call_next(r)).run()");
        assertTrue(errors.getFirst().toString().contains("gears.error: Can not get CommandHook ctx"), errors.toString());
        // An error reply of execute() is a gears.error too.
        assertTrue(errors("GB('ShardsIDReader').map(lambda r: execute('NOSUCHCMD')).run()").getFirst().toString()
                .contains("gears.error: ERR unknown command"));
    }

    @Test
    void aTriggerNameIsTakenOncePerSessionAndAcrossSessions() {
        String script = "GB('CommandReader').register(trigger='ca-twice')\n"
                + "try:\n"
                + "    GB('CommandReader').register(trigger='ca-twice')\n"
                + "    caught = 'nothing'\n"
                + "except Exception as e:\n"  // a host refusal is an ordinary Python exception
                + "    caught = '%s|%s' % (type(e), e)\n"
                + "GB('CommandReader').map(lambda r: caught).register(trigger='ca-caught')";
        try {
            assertEquals("OK", py(script, "ID", "ca-twice"));
            assertEquals(List.of("<class 'gears.error'>|trigger already registered in this session"), call("RG.TRIGGER", "ca-caught"));
            assertGearsError("trigger already registered", "GB('CommandReader').register(trigger='ca-twice')");
            assertGearsError("trigger already registered in this session",
                    "GB('CommandReader').register(trigger='ca-other')\nGB('CommandReader').register(trigger='ca-other')");
        } finally {
            unregisterSession("ca-twice");
        }
    }

    @Test
    void pyExecuteOptionsAsRedisGearsParsesThem() throws Exception {
        java.util.Set<String> sessions = sessionIds();
        assertEquals("ID is missing", error("RG.PYEXECUTE", "x = 1", "ID"));
        assertEquals("DESCRIPTION is missing", error("RG.PYEXECUTE", "x = 1", "ID", "ca-opt", "DESCRIPTION"));
        assertEquals("REPLACE_WITH is missing", error("RG.PYEXECUTE", "x = 1", "ID", "ca-opt", "REPLACE_WITH"));
        assertEquals("ID must be compose of: ['A'-'Z' | 'a'-'z' | '0' - '9' | '-' | '_']",
                error("RG.PYEXECUTE", "x = 1", "ID", "ca@opt"));
        assertEquals("Unknown arguments were given: UNKNOWN", error("RG.PYEXECUTE", "x = 1", "ID", "ca-opt", "UNKNOWN", "x"));
        assertEquals("Can not replace with ca-none, session does not exists.",
                error("RG.PYEXECUTE", "x = 1", "ID", "ca-opt", "REPLACE_WITH", "ca-none"));
        assertEquals("OK", py("x = 1", "ID", "ca-opt", "REQUIREMENTS"), "no package after REQUIREMENTS: nothing to install");
        assertTrue(error("RG.PYEXECUTE", "x = 1", "REQUIREMENTS", "-r", "reqs.txt").contains("is not a requirement"), "pip options are not requirements");
        try {
            assertEquals("OK", py("GB('CommandReader').register(trigger='ca-keep')", "ID", "ca-keep"));
            assertEquals("Can not replace an existing session ca-keep with ca-opt",
                    error("RG.PYEXECUTE", "x = 1", "ID", "ca-keep", "REPLACE_WITH", "ca-opt"));
        } finally {
            unregisterSession("ca-keep");
        }
        assertEquals("Unknown option foo", error("RG.PYDUMPSESSIONS", "foo"));
        awaitNoSessionsBut(sessions);
    }

    @Test
    void configErrorsStartWithTheirErrorMark() {
        List<?> got = (List<?>) call("RG.CONFIGGET", "CaNoSuchKey", "MaxExecutions");
        assertTrue(got.get(0).toString().contains("(error) Unsupported config parameter: CaNoSuchKey"), got.toString());
        assertTrue(got.get(1) instanceof Long, got.toString());
        List<?> set = (List<?>) call("RG.CONFIGSET", "DependenciesSha256", "/", "ExecutionThreads", "5");
        assertTrue(set.get(0).toString().contains("(error) DependenciesSha256 is not configurable at runtime"), set.toString());
        assertTrue(set.get(1).toString().contains("(error) Config value ExecutionThreads not modifiable at runtime"), set.toString());
        assertEquals("", call("RG.CONFIGGET", "DependenciesSha256").toString().replaceAll("[\\[\\]]", ""));
    }

    @Test
    void syntaxErrorsReadAsPython37Did() {
        assertEquals("Error type: <class 'SyntaxError'>, Value: invalid syntax (<string>, line 1)",
                pyError("1defs + GearsBuilder().notexists()"));
        assertEquals("Error type: <class 'SyntaxError'>, Value: invalid syntax (<string>, line 1)", pyError("if x = 1: pass"));
        // Not every syntax error was 'invalid syntax': an indentation error keeps its own text.
        assertTrue(pyError("def f():\nreturn 1").contains("IndentationError"));
    }

    @Test
    void tracebacksHaveNoDidYouMeanHints() {
        String e = errors("x_value = 1\nGB('ShardsIDReader').map(lambda r: x_valu).run()").getFirst().toString();
        assertTrue(e.contains("NameError: name 'x_valu' is not defined\\n"), e);
        assertFalse(e.contains("Did you mean"), e);
        e = pyError("GearsBuilder().mapp(lambda r: r)");
        assertTrue(e.contains("AttributeError: 'GearsBuilder' object has no attribute 'mapp'\\n"), e);
        assertFalse(e.contains("Did you mean"), e);
    }

    @Test
    void readerErrorsArePlainMessages() {
        call("XADD", "ca:stream", "1-1", "f", "v");
        try {
            assertEquals(List.of("ERR Invalid stream ID specified as stream command argument"),
                    errors("GB('StreamReader').run('ca:stream', fromId='bad')"));
        } finally {
            call("DEL", "ca:stream");
        }
    }

    @Test
    void keysOnlyReaderTakesCountAndPatternGenerator() {
        call("SET", "ca:k1", "a");
        call("SET", "ca:k2", "b");
        try {
            assertEquals(List.of("ca:k1"), results("GB('KeysOnlyReader').run(patternGenerator=lambda: ('ca:k1', True))"));
            List<Object> keys = results("GB('KeysOnlyReader').run('ca:k*', count=1)");
            assertEquals(2, keys.size(), keys.toString());
            assertTrue(errors("GB('KeysOnlyReader').run(count='many')").getFirst().toString().contains("value is not an integer"));
            assertTrue(errors("GB('KeysOnlyReader').run(patternGenerator='x')").getFirst().toString().contains("object is not callable"));
        } finally {
            call("DEL", "ca:k1", "ca:k2");
        }
    }

    /** Unregisters every registration of a session, which frees it. */
    private void unregisterSession(String id) {
        List<?> sessions = (List<?>) call("RG.PYDUMPSESSIONS", "SESSIONS", id);
        for (Object s : sessions) {
            if (s instanceof List<?> entry) {
                for (Object rid : (List<?>) entry.getLast()) {
                    call("RG.UNREGISTER", rid.toString());
                }
            }
        }
    }
}
