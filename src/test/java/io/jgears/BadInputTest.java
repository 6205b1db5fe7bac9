package io.jgears;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Bad input gets a clear error; the connection or at least the server keeps working; nothing leaks. */
class BadInputTest extends GearsTestBase {

    @Test
    void wrongArityAndUnknownCommands() {
        assertEquals("ERR wrong number of arguments for 'rg.pyexecute' command", error("RG.PYEXECUTE"));
        assertEquals("ERR wrong number of arguments for 'rg.getresults' command", error("RG.GETRESULTS"));
        assertEquals("ERR wrong number of arguments for 'rg.configset' command", error("RG.CONFIGSET", "MaxExecutions"));
        assertTrue(error("RG.NOSUCH").startsWith("ERR unknown command 'RG.NOSUCH'"));
        assertEquals("Unknown arguments were given: BOGUS", error("RG.PYEXECUTE", "x=1", "BOGUS"));
        assertEquals("ID is missing", error("RG.PYEXECUTE", "x=1", "ID"));
        assertTrue(error("RG.PYEXECUTE", "x=1", "REQUIREMENTS", "--index-url=http://x").contains("is not a requirement"));
        assertEquals("execution plan does not exist", error("RG.GETRESULTS", "nosuch"));
        assertEquals("execution does not exist", error("RG.DROPEXECUTION", "nosuch"));
        assertTrue(error("NOSUCHCOMMAND").startsWith("ERR unknown command"), "Redis' own error comes back");
        List<?> config = (List<?>) call("RG.CONFIGSET", "MaxExecutions", "-1", "ExecutionThreads", "9");
        assertTrue(config.get(0).toString().contains("bad value"), config.toString());
        assertEquals("PONG", call("PING"), "the connection still works");
    }

    @Test
    void malformedRespGetsAProtocolErrorAndOnlyThatConnectionCloses() throws Exception {
        for (String garbage : List.of("*2\r\n$3\r\nGET\r\n:1\r\n", "*1\r\n$abc\r\n", "$5\r\nhello\r\n",
                "*99999999999\r\n", "*2147483647\r\n")) {
            try (RawResp raw = new RawResp(TestServer.port())) {
                raw.send(garbage.getBytes(StandardCharsets.US_ASCII));
                Object reply = raw.read();
                assertTrue(String.valueOf(reply).startsWith("-ERR Protocol error") || String.valueOf(reply).startsWith("-ERR"),
                        garbage + " -> " + reply);
            }
        }
        try (RawResp raw = new RawResp(TestServer.port())) {
            raw.send("PING");
            assertEquals("PONG", raw.read(), "the server still answers new connections");
        }
    }

    @Test
    void nonUtf8CodeIsRefused() throws Exception {
        try (RawResp raw = new RawResp(TestServer.port())) {
            byte[] head = "*2\r\n$12\r\nRG.PYEXECUTE\r\n$4\r\n".getBytes(StandardCharsets.US_ASCII);
            raw.send(ForwardingTest.concat(head, new byte[]{'x', '=', (byte) 0xff, (byte) 0xfe}, "\r\n".getBytes()));
            assertEquals("-ERR the script is not valid UTF-8", raw.read());
            raw.send("PING");
            assertEquals("PONG", raw.read());
        }
    }

    @Test
    void pythonFailuresAreErrorReplies() throws Exception {
        long sessions = stat("sessions");
        assertTrue(pyError("def f(:").startsWith("Error type: <class 'SyntaxError'>"));
        assertTrue(pyError("import nosuchmodule").contains("ModuleNotFoundError"));
        assertTrue(pyError("def f(n):\n  return f(n + 1)\nf(0)").contains("RecursionError"));
        String deep = pyError("import sys\nsys.setrecursionlimit(1000000)\ndef f(n):\n  return f(n + 1)\nf(0)");
        assertTrue(deep.contains("RecursionError"), "a raised recursion limit still ends in a Python error: " + deep);
        assertTrue(pyError("import sys\nsys.exit(3)").contains("SystemExit"));
        assertTrue(pyError("GB('NoSuchReader').run()").contains("gears.error: The given reader does not exists"));
        assertTrue(pyError("GB('CommandReader').run()").contains("gears.error: Given reader do not support run or not exists"));
        awaitSessions(sessions);
        assertEquals("PONG", call("PING"));
    }

    @Test
    void hugeScriptsAreRefusedCleanly() throws Exception {
        long sessions = stat("sessions");
        StringBuilder big = new StringBuilder(100 * 1024 * 1024 + 16);
        big.append("x = 1\n#");
        big.repeat('a', 100 * 1024 * 1024);
        String e = pyError(big.toString());
        assertTrue(e.contains("script too large"), e);
        // Within the limit, a large script loads.
        StringBuilder ok = new StringBuilder("data = [\n");
        for (int i = 0; i < 20_000; i++) {
            ok.append("  'item-").append(i).append("',\n");
        }
        ok.append("]\nGB('ShardsIDReader').map(lambda x: len(data)).run()");
        assertEquals(List.of("20000"), results(ok.toString()));
        awaitSessions(sessions);
        assertEquals("PONG", call("PING"));
    }

    @Test
    void hugeValuesForwardIntact() {
        String value = "v".repeat(20 * 1024 * 1024);
        assertEquals("OK", call("SET", "bad:big", value));
        assertEquals(value.length(), ((String) call("GET", "bad:big")).length());
        assertEquals(List.of(String.valueOf(value.length())),
                results("GB().map(lambda r: len(r['value'])).run('bad:big')"));
    }
}
