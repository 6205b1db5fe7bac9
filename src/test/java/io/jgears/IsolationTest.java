package io.jgears;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Two sessions alive at the same time, each attacking what they share in a CPython process (builtins,
 * stdlib modules, sys state, sys.modules, file descriptors, the host object): every attempt stays inside
 * its own session. Each would fail if sub-interpreter isolation broke.
 */
class IsolationTest extends GearsTestBase {

    private static String session(String who, int seed, int recursion) {
        return """
                import json, random, sys, builtins
                random.seed(%2$d)
                first = random.random()
                draws = 1
                json.dumps = lambda *a, **k: '%1$s-patched'
                builtins.abs = lambda x: '%1$s-abs'
                sys.modules['only_%1$s'] = sys
                sys.setrecursionlimit(%3$d)
                sys.path.append('/%1$s')
                class Thing:
                    who = '%1$s'
                secret = '%1$s-secret'
                te = registerTimer(3600000, lambda: None)
                def probe(args):
                    global draws
                    r = random.Random(%2$d)
                    for _ in range(draws):
                        r.random()
                    draws += 1
                    same_stream = random.random() == r.random()
                    other = 'only_B' if '%1$s' == 'A' else 'only_A'
                    return '|'.join(str(x) for x in [json.dumps([1]), abs(-3), Thing.who, secret, other in sys.modules,
                                                     sys.getrecursionlimit(), same_stream, '/' + ('B' if '%1$s' == 'A' else 'A') in sys.path])
                def deep(args):
                    def f(n):
                        return f(n + 1)
                    return f(0)
                GB('CommandReader').map(probe).register(trigger='iso_probe_%1$s')
                GB('CommandReader').map(deep).register(trigger='iso_deep_%1$s')
                """.formatted(who, seed, recursion);
    }

    @Test
    void liveSessionsCannotReachEachOther() throws Exception {
        assertEquals("OK", py(session("A", 1, 300), "ID", "iso-A"));
        assertEquals("OK", py(session("B", 999, 5000), "ID", "iso-B"));
        try {
            // Each sees only its own patches, classes, globals, modules, limits and random stream.
            assertEquals(List.of("A-patched|A-abs|A|A-secret|False|300|True|False"), call("RG.TRIGGER", "iso_probe_A"));
            assertEquals(List.of("B-patched|B-abs|B|B-secret|False|5000|True|False"), call("RG.TRIGGER", "iso_probe_B"));
            // Exhausting the recursion limit in one leaves the other (and its limit) alone.
            String deepB = error("RG.TRIGGER", "iso_deep_B");
            assertTrue(deepB.contains("RecursionError"), deepB);
            String deepA = error("RG.TRIGGER", "iso_deep_A");
            assertTrue(deepA.contains("RecursionError"), deepA);
            // A fresh session sees none of it.
            assertEquals(List.of("[1] 3 False False"), results("import json, sys\n"
                    + "GB('ShardsIDReader').map(lambda x: '%s %s %s %s' % (json.dumps([1]), abs(-3), 'only_A' in sys.modules, '/A' in sys.path)).run()"));

            // The host object is per session: B cannot end A's time event or finish A's executions.
            String teOfA = null;
            for (Object te : (List<?>) call("RG.DUMPTIMEEVENTS")) {
                List<?> m = (List<?>) te;
                if (m.get(3).equals("iso-A")) {
                    teOfA = (String) m.get(1);
                }
            }
            assertEquals(List.of("False"), results("import polyglot\n"
                    + "h = polyglot.import_value('jgears')\n"
                    + "GB('ShardsIDReader').map(lambda x: str(h.unregisterTimeEvent('" + teOfA + "'))).run()"));
            assertTrue(call("RG.DUMPTIMEEVENTS").toString().contains(teOfA), "A's time event is still there");

            // File descriptors: closing one in B's sandbox cannot close anything of jgears or of A.
            results("import os\n"
                    + "def close_all(x):\n"
                    + "    out = []\n"
                    + "    for fd in range(0, 20):\n"
                    + "        try:\n"
                    + "            os.close(fd)\n"
                    + "            out.append(fd)\n"
                    + "        except OSError:\n"
                    + "            pass\n"
                    + "    return str(out)\n"
                    + "GB('ShardsIDReader').map(close_all).run()");
            assertEquals("PONG", call("PING"));
            assertEquals(List.of("A-patched|A-abs|A|A-secret|False|300|True|False"), call("RG.TRIGGER", "iso_probe_A"),
                    "A is unaffected");
            // Nor the standard streams of another session (RedisGears' documented os.close() caveat).
            assertEquals(List.of("printed"), results("import sys\n"
                    + "def p(x):\n"
                    + "    print('hello', file=sys.stdout)\n"
                    + "    sys.stdout.flush()\n"
                    + "    print('err', file=sys.stderr)\n"
                    + "    return 'printed'\n"
                    + "GB('ShardsIDReader').map(p).run()"));
        } finally {
            for (Object r : (List<?>) call("RG.DUMPREGISTRATIONS")) {
                String text = r.toString();
                if (text.contains("'sessionName':'iso-")) {
                    call("RG.UNREGISTER", (String) ((List<?>) r).get(1));
                }
            }
            for (Object te : (List<?>) call("RG.DUMPTIMEEVENTS")) {
                List<?> m = (List<?>) te;
                if (String.valueOf(m.get(3)).startsWith("iso-")) {
                    call("RG.UNREGISTERTE", (String) m.get(1));
                }
            }
        }
    }
}
