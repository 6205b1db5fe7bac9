package io.jgears;

import io.lettuce.core.api.sync.RedisCommands;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Command hooks as RedisGears 1.2 has them: CommandReader hook= chains with call_next, KeysReader
 * register(commands=[...]) with override_reply, the registrations RedisGears refuses, keymiss events.
 */
class CompatHooksTest extends GearsTestBase {

    private static RedisCommands<String, String> direct() {
        return TestServer.redisDirect();
    }

    @Test
    void hookRegistrationsRedisGearsRefusesAreRefused() {
        assertTrue(pyError("GB('CommandReader').register(hook='nosuchcmd', keyprefix='x')")
                .contains("Can not override an unexisting command"));
        assertTrue(pyError("GB('CommandReader').register(hook='multi')")
                .contains("Can not override a command which are not allowed inside a script"));
        assertTrue(pyError("GB('CommandReader').register(hook='xread', keyprefix='x')")
                .contains("Can not override a command with moveable keys by key prefix"));
        assertTrue(pyError("GB().register(commands=['nosuchcmd'])").contains("bad reply"));
        assertTrue(pyError("GB().register(commands=['exec'])")
                .contains("Can not hook a command which are not allowed inside a script"));
        assertTrue(pyError("GB().register(commands=['xread'])")
                .contains("Can not hook a command with moveable keys by key prefix"));
        assertTrue(pyError("GB('CommandReader').register(hook='append')\nGB('CommandReader').register(hook='append')",
                "ID", "ch-two").contains("Can not override a none sync registration which already created on this session"));
        assertEquals("OK", py("GB('CommandReader').register(hook='append')", "ID", "ch-async"));
        try {
            assertTrue(pyError("GB('CommandReader').register(hook='append', mode='sync')", "ID", "ch-over")
                    .contains("Can not override a none sync registration"));
        } finally {
            unregisterSessions("ch-async");
        }
    }

    @Test
    void hooksOnOneCommandChainThroughCallNextTheLastRegisteredFirst() {
        direct().del("ch:h", "ch:log");
        String hook = "def h(r):\n"
                + "    execute('RPUSH', 'ch:log', '%s %s' % (NAME, r[0]))\n"
                + "    return call_next(*(r[1:] + [NAME, '1']))\n"
                + "GB('CommandReader').map(h).register(hook='hmset', mode='sync', keyprefix='ch:')";
        py("NAME = 'first'\n" + hook, "ID", "ch-1");
        py("NAME = 'second'\n" + hook, "ID", "ch-2");
        try {
            assertEquals("OK", call("HMSET", "ch:h", "f", "v"), "the outer hook's single result");
            assertEquals(List.of("second HMSET", "first hmset"), direct().lrange("ch:log", 0, -1),
                    "the last registered runs first; call_next gives the next one the hooked name");
            assertEquals("1", direct().hget("ch:h", "first"));
            assertEquals("1", direct().hget("ch:h", "second"));
            assertEquals("OK", call("HMSET", "other:ch", "f", "v"));
            assertNull(direct().hget("other:ch", "first"), "a key outside the keyprefix is not hooked");
        } finally {
            unregisterSessions("ch-1", "ch-2");
        }
        call("HMSET", "ch:h2", "f", "v2");
        assertNull(direct().hget("ch:h2", "first"), "unhooked again");
    }

    @Test
    void aHookAnswersWithExactlyOneResultAndPlusOrMinusStringsAreStatusOrError() {
        py("GB('CommandReader').flatmap(lambda r: r).register(hook='setrange', mode='sync')", "ID", "ch-many");
        try {
            assertTrue(error("SETRANGE", "ch:r", "0", "x").contains("Command hook must return exactly one result"));
        } finally {
            unregisterSessions("ch-many");
        }
        py("GB('CommandReader').map(lambda r: '-no ' + r[1] if r[1] == 'bad' else '+OK').register(hook='getrange', mode='sync')",
                "ID", "ch-status");
        py("GB('CommandReader').map(lambda r: '+OK').register(trigger='ch-plus', mode='sync')", "ID", "ch-plus");
        try {
            assertEquals("OK", call("GETRANGE", "good", "0", "1"));
            assertEquals("no bad", error("GETRANGE", "bad", "0", "1"));
            assertEquals(List.of("OK"), call("RG.TRIGGER", "ch-plus"), "RG.TRIGGER results too");
        } finally {
            unregisterSessions("ch-status", "ch-plus");
        }
    }

    @Test
    void executeOfAHookedCommandRunsASyncHookAndRefusesANonSyncOne() {
        py("GB('CommandReader').map(lambda r: 'hooked ' + r[1]).register(hook='strlen', mode='sync')", "ID", "ch-sync");
        try {
            assertEquals(List.of("hooked k"), results("GB('ShardsIDReader').map(lambda x: execute('STRLEN', 'k')).run()"));
        } finally {
            unregisterSessions("ch-sync");
        }
        py("GB('CommandReader').map(lambda r: 'hooked').register(hook='strlen')", "ID", "ch-nosync");
        try {
            List<Object> errors = errors("GB('ShardsIDReader').map(lambda x: execute('STRLEN', 'k')).run()");
            assertTrue(errors.toString().contains("blocking is not allowed"), errors.toString());
        } finally {
            unregisterSessions("ch-nosync");
        }
    }

    @Test
    void keysReaderCommandsHookTheCommandAndOverrideItsReply() throws Exception {
        direct().del("kc:here");
        py("GB().foreach(lambda x: override_reply('no such key ' + x['key']))"
                + ".register(prefix='kc:*', eventTypes=['keymiss'], commands=['get'], mode='sync')", "ID", "kc");
        try {
            assertEquals("no such key kc:gone", call("GET", "kc:gone"));
            assertNull(call("GET", "other:gone"), "a key outside the prefix is not hooked");
            direct().set("kc:here", "v");
            assertEquals("v", call("GET", "kc:here"), "no keymiss: Redis' own reply");
            direct().get("kc:direct");
            Thread.sleep(100);
            // Only the hooked command's keymiss fired it, not the same event from elsewhere.
            assertEquals(1L, registrationTriggered("kc"));
        } finally {
            unregisterSessions("kc");
        }
        assertNull(call("GET", "kc:gone"), "unhooked again");
    }

    @Test
    void aHookShowsAsTheTriggerOfItsCommand() {
        py("GB('CommandReader').map(lambda r: 'x').register(hook='append', keyprefix='hs:')", "ID", "hs");
        try {
            List<?> data = null;
            for (Object r : (List<?>) call("RG.DUMPREGISTRATIONS")) {
                List<?> reg = (List<?>) r;
                if (reg.toString().contains("'sessionName':'hs'")) {
                    data = (List<?>) reg.get(7);
                }
            }
            assertEquals(List.of("trigger", "append", "inorder", 0L), data.get(data.indexOf("args") + 1));
            assertTrue(String.valueOf(call("INFO", "rg")).contains(",trigger=append,inorder=0,PD="), "INFO rg shows the same");
        } finally {
            unregisterSessions("hs");
        }
    }

    @Test
    void getCommandGivesTheHookedCommand() throws Exception {
        direct().del("gc:e", "gc:seen");
        py("GB().foreach(lambda x: execute('SET', 'gc:seen', repr(get_command())))"
                + ".register(prefix='gc:*', commands=['hset'], mode='sync')", "ID", "gc");
        try {
            assertEquals(1L, call("HSET", "gc:e", "f", "v"));
            assertEquals("['HSET', 'gc:e', 'f', 'v']", direct().get("gc:seen"));
            assertEquals("v", direct().hget("gc:e", "f"), "the hooked command still runs");
        } finally {
            unregisterSessions("gc");
        }
    }

    @Test
    void keymissEventsFireButJgearsOwnReadsNeverCauseThem() throws Exception {
        direct().del("km:count", "km:1");
        py("GB().foreach(lambda x: execute('INCR', 'km:count')).register(prefix='km:x*', eventTypes=['KEYMISS'])", "ID", "km-miss");
        // A registration reading the value of a key just deleted: that read must not count as a keymiss.
        py("GB().foreach(lambda x: execute('SET', 'km:seen', x['type'])).register(prefix='km:x*', eventTypes=['del'], mode='sync')",
                "ID", "km-del");
        try {
            call("SET", "km:x1", "v");
            call("DEL", "km:x1");
            await("the del event", () -> direct().get("km:seen") != null);
            call("GET", "km:x2");
            await("one keymiss", () -> "1".equals(direct().get("km:count")));
            Thread.sleep(200);
            assertEquals("1", direct().get("km:count"), "only the client's read of a missing key is a keymiss");
        } finally {
            unregisterSessions("km-miss", "km-del");
        }
    }

    @Test
    void eventTypesMatchWhateverTheirCaseAndASyncExecutionsOwnWritesDoNotTriggerAgain() throws Exception {
        direct().del("se:x", "se:x1", "se:x11");
        py("GB().foreach(lambda x: execute('SET', '%s1' % x['key'], '1')).register(prefix='se:*', eventTypes=['SET'], mode='sync')",
                "ID", "se");
        try {
            call("SET", "se:x", "v");
            assertEquals("1", call("GET", "se:x1"), "written before SET replied");
            Thread.sleep(300);
            assertEquals(0L, direct().exists("se:x11"), "the registration's own write fired nothing");
            direct().set("se:x1", "again");
            await("a write from elsewhere still fires", () -> direct().exists("se:x11") == 1);
        } finally {
            unregisterSessions("se");
        }
    }

    private long registrationTriggered(String sessionId) {
        for (Object r : (List<?>) call("RG.DUMPREGISTRATIONS")) {
            List<?> reg = (List<?>) r;
            if (reg.toString().contains("'sessionName':'" + sessionId + "'")) {
                List<?> data = (List<?>) reg.get(7);
                return (Long) data.get(data.indexOf("numTriggered") + 1);
            }
        }
        throw new AssertionError("no registration of " + sessionId);
    }
}
