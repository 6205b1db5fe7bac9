package io.jgears;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** INFO, MODULE LIST and COMMAND show jgears as they show the RedisGears module, merged with Redis' own. */
class RedisViewsTest extends GearsTestBase {

    @Test
    void infoHasRedisGearsSectionsWhereRedisGearsHasThem() {
        py("GB('CommandReader').register(trigger='views_t')", "ID", "views-info", "DESCRIPTION", "views test");
        try {
            call("RG.TRIGGER", "views_t");
            String rg = String.valueOf(call("INFO", "rg"));
            assertTrue(rg.contains("# rg\r\nrg_nexecutions:"), rg);
            assertTrue(rg.contains("# rg_regisrations\r\nrg_"), rg);
            assertTrue(rg.contains(",reader=CommandReader,mode=async,"), rg);
            assertTrue(rg.contains("# rg_python_sessions\r\nrg_"), rg);
            assertTrue(rg.contains("\r\nrg_views-info:{'sessionName':'views-info', 'sessionDescription':'views test'"), rg);
            assertFalse(rg.contains("# Server"), "only the sections asked for: " + rg);

            String one = String.valueOf(call("INFO", "rg_python_stats"));
            assertTrue(one.startsWith("# rg_python_stats\r\nrg_TotalAllocated:"), one);
            assertFalse(one.contains("# rg\r\n"), one);

            String plain = String.valueOf(call("INFO"));
            assertTrue(plain.contains("# Server") && plain.contains("redis_version:"), "Redis' own sections stay");
            assertFalse(plain.contains("# rg"), "plain INFO has no rg sections, as with RedisGears");

            String modules = String.valueOf(call("INFO", "modules"));
            assertTrue(modules.contains("module:name=rg,ver=10213,"), modules);
            assertTrue(modules.contains("# rg_regisrations"), modules);

            String stats = String.valueOf(call("INFO", "commandstats"));
            assertTrue(stats.contains("cmdstat_rg.trigger:calls="), stats);
            assertTrue(stats.contains("cmdstat_info:calls=") || stats.contains("cmdstat_"), "Redis' own entries stay: " + stats);
        } finally {
            for (Object r : (List<?>) call("RG.DUMPREGISTRATIONS")) {
                if (String.valueOf(r).contains("views_t")) {
                    call("RG.UNREGISTER", String.valueOf(((List<?>) r).get(1)));
                }
            }
        }
    }

    @Test
    void moduleListAndCommandKnowRg() {
        List<?> modules = (List<?>) call("MODULE", "LIST");
        assertTrue(modules.stream().anyMatch(m -> ((List<?>) m).subList(0, 4).equals(List.of("name", "rg", "ver", 10213L))),
                String.valueOf(modules));

        List<?> info = (List<?>) call("COMMAND", "INFO", "get", "RG.PYEXECUTE", "rg.triggeronkey");
        assertEquals(3, info.size());
        assertEquals("get", ((List<?>) info.get(0)).get(0));
        List<?> pyexecute = (List<?>) info.get(1);
        assertEquals("rg.pyexecute", pyexecute.get(0));
        assertEquals(-1L, pyexecute.get(1));
        assertEquals(List.of("readonly", "module"), pyexecute.get(2));
        assertEquals(List.of(2L, 2L, 1L), ((List<?>) info.get(2)).subList(3, 6));

        long count = (Long) call("COMMAND", "COUNT");
        long redisCount = TestServer.redisDirect().commandCount();
        assertEquals(redisCount + 26, count);  // the RG.* commands jgears serves

        List<?> listed = (List<?>) call("COMMAND", "LIST", "FILTERBY", "PATTERN", "rg.py*");
        assertTrue(listed.containsAll(List.of("rg.pyexecute", "rg.pydumpsessions")) && !listed.contains("rg.trigger"),
                String.valueOf(listed));
        assertEquals(List.of("mykey"), call("COMMAND", "GETKEYS", "RG.TRIGGERONKEY", "t", "mykey", "a"));
        assertEquals(List.of("k"), call("COMMAND", "GETKEYS", "SET", "k", "v"));

        List<?> docs = (List<?>) call("COMMAND", "DOCS", "RG.PYEXECUTE");
        assertEquals("rg.pyexecute", docs.get(0));
        assertTrue(String.valueOf(docs.get(1)).contains("module, rg"), String.valueOf(docs));
    }

    @Test
    void commandRepliesKeepRedisStatusTypesSoRedisCliWorks() throws Exception {
        // Flags are status replies on Redis; redis-cli reads COMMAND DOCS at start-up and aborts on a bulk one.
        try (RawResp raw = new RawResp(TestServer.port())) {
            String docs = raw.send("COMMAND", "DOCS", "SET").readRaw();
            assertTrue(docs.contains("+optional\r\n"), docs);
            String info = raw.send("COMMAND", "INFO", "RG.PYEXECUTE").readRaw();
            assertTrue(info.contains("+readonly\r\n+module\r\n"), info);
        }
        Process cli = new ProcessBuilder("redis-cli", "-p", String.valueOf(TestServer.port()))
                .redirectErrorStream(true).start();
        try (var in = cli.getOutputStream()) {
            in.write("SET views:cli 1\nGET views:cli\nRG.PYEXECUTE \"GB().count().run('views:*')\"\n".getBytes());
        }
        String out = new String(cli.getInputStream().readAllBytes());
        assertEquals(0, cli.waitFor(), out);
        assertTrue(out.startsWith("OK\n1\n1\n"), out);
    }
    /** A slow RG.* call is Redis' latency monitor's "command" event: LATENCY LATEST, HISTORY command, RESET. */
    @Test
    void slowRgCallsAreInTheLatencyMonitorsCommandEvent() throws Exception {
        var direct = TestServer.redisDirect();
        direct.configSet("latency-monitor-threshold", "100");
        try {
            Thread.sleep(1100);
            call("RG.PYSTATS");  // jgears reads the threshold again (at most once a second)
            Thread.sleep(500);
            call("LATENCY", "RESET");
            py("GB('ShardsIDReader').foreach(lambda x: __import__('time').sleep(0.3)).run()");
            List<?> command = ((List<?>) call("LATENCY", "LATEST")).stream().map(r -> (List<?>) r)
                    .filter(r -> "command".equals(r.get(0))).findFirst().orElseThrow(() -> new AssertionError("no command event"));
            assertTrue((Long) command.get(2) >= 300 && (Long) command.get(3) >= 300, command.toString());
            List<?> history = (List<?>) call("LATENCY", "HISTORY", "command");
            assertTrue(history.stream().anyMatch(r -> (Long) ((List<?>) r).get(1) >= 300), history.toString());
            assertTrue((Long) call("LATENCY", "RESET", "command") >= 1);
            assertTrue(((List<?>) call("LATENCY", "HISTORY", "command")).isEmpty());
        } finally {
            direct.configSet("latency-monitor-threshold", "0");
        }
    }
}
