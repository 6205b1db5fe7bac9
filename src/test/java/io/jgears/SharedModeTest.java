package io.jgears;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * ISOLATION shared: RedisGears 1.2's model, a globals dict per session in one shared context. What it
 * isolates (globals) and what it does not (modules, builtins), checked both ways.
 */
class SharedModeTest extends GearsTestBase {

    @Test
    void globalsArePerSessionButModulesAndBuiltinsAreShared() throws Exception {
        long sessions = stat("sessions");
        long contexts = TestServer.get().engine().python().liveContexts();
        assertEquals(List.of("a 1"), results0("x = 'a'\nimport json\njson.shared_mark = 1\n"
                + "GB('ShardsIDReader').map(lambda r: '%s %s' % (x, json.shared_mark)).run()"));
        // A second shared session: its own globals (no x), but the same json module object.
        assertEquals(List.of("False 1"), results0("import json\n"
                + "GB('ShardsIDReader').map(lambda r: '%s %s' % ('x' in globals(), getattr(json, 'shared_mark', None))).run()"));
        // An interpreter-mode session sees none of it.
        assertEquals(List.of("None"), results("import json\n"
                + "GB('ShardsIDReader').map(lambda r: str(getattr(json, 'shared_mark', None))).run()"));
        results0("import json\ndel json.shared_mark\nGB('ShardsIDReader').run()");
        awaitSessions(sessions);
        assertTrue(TestServer.get().engine().python().liveContexts() <= contexts + 1,
                "shared sessions add no context per session (only the shared one)");
    }

    @Test
    void sharedSessionsAreCountedAndFreedLikeOthers() throws Exception {
        long sessions = stat("sessions");
        String eid = (String) py("GB('ShardsIDReader').map(lambda x: 'kept').run()", "UNBLOCKING", "ID", "sh1", "ISOLATION", "shared");
        assertEquals(List.of(List.of("kept"), List.of()), call("RG.GETRESULTSBLOCKING", eid));
        List<?> s = (List<?>) ((List<?>) call("RG.PYDUMPSESSIONS", "VERBOSE", "HOLDERS", "SESSIONS", "sh1")).getFirst();
        assertEquals("shared", s.get(s.indexOf("isolation") + 1));
        assertEquals(1L, s.get(s.indexOf("refCount") + 1));
        // Registrations and time events work in shared sessions too.
        assertEquals("OK", py("GB('CommandReader').map(lambda a: 'shared ' + a[1]).register(trigger='sh_echo')", "ID", "sh2",
                "ISOLATION", "shared"));
        assertEquals(List.of("shared hi"), call("RG.TRIGGER", "sh_echo", "hi"));
        call("RG.DROPEXECUTION", eid);
        for (Object r : (List<?>) call("RG.DUMPREGISTRATIONS")) {
            if (r.toString().contains("'sessionName':'sh2'")) {
                call("RG.UNREGISTER", (String) ((List<?>) r).get(1));
            }
        }
        awaitSessions(sessions);
        assertEquals("ERR ISOLATION must be 'interpreter' or 'shared'", pyError("x = 1", "ISOLATION", "loose"));
        assertTrue(call("RG.CONFIGSET", "DefaultIsolation", "loose").toString().contains("interpreter or shared"));
    }

    private List<Object> results0(String code) {
        @SuppressWarnings("unchecked")
        List<Object> reply = (List<Object>) py(code, "ISOLATION", "shared");
        assertEquals(List.of(), reply.get(1));
        @SuppressWarnings("unchecked")
        List<Object> r = (List<Object>) reply.get(0);
        return r;
    }
}
