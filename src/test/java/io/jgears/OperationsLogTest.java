package io.jgears;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What an operator sees: a long run's progress (RG.GETEXECUTION while it runs, a log line after 5 s),
 * one rate-limited line per failing registration execution or load error with the ids and the Python
 * error (no Java stack trace), a user-set time limit that fires, and log() at its level.
 */
class OperationsLogTest extends GearsTestBase {
    private ListAppender<ILoggingEvent> captured;

    @BeforeEach
    void capture() {
        captured = new ListAppender<>();
        captured.start();
        ((Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME)).addAppender(captured);
    }

    @AfterEach
    void release() {
        ((Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME)).detachAppender(captured);
    }

    private List<ILoggingEvent> events(Predicate<ILoggingEvent> which) {
        // Logback's AppenderBase appends under the appender's own lock, not the list's.
        synchronized (captured) {
            return new ArrayList<>(captured.list.stream().filter(which).toList());
        }
    }

    private ILoggingEvent awaitEvent(String what, Predicate<ILoggingEvent> which) throws InterruptedException {
        await(what, () -> !events(which).isEmpty());
        return events(which).getFirst();
    }

    private Map<String, Object> plan(String eid) {
        List<?> shard = (List<?>) ((List<?>) call("RG.GETEXECUTION", eid)).getFirst();
        List<?> details = (List<?>) shard.get(3);
        Map<String, Object> out = new HashMap<>();
        for (int i = 0; i < details.size(); i += 2) {
            out.put(String.valueOf(details.get(i)), details.get(i + 1));
        }
        return out;
    }

    @Test
    void aLongRunShowsItsProgressAndIsLogged() throws Exception {
        var direct = TestServer.redisDirect();
        Map<String, String> keys = new HashMap<>();
        for (int i = 0; i < 4000; i++) {
            keys.put("oplong:" + i, "v");
        }
        direct.mset(keys);
        String eid = (String) py("import time\nGB().foreach(lambda r: time.sleep(0.003)).run('oplong:*')", "UNBLOCKING");
        try {
            // While it runs: RedisGears' results -1 and no errors yet, and jgears' progress counters.
            await("records read while running", () -> {
                Map<String, Object> p = plan(eid);
                return "running".equals(p.get("status")) && (Long) p.get("records_read") >= 1024;
            });
            Map<String, Object> running = plan(eid);
            if ("running".equals(running.get("status"))) {
                assertEquals(-1L, running.get("results"));
                assertEquals(List.of(), running.get("errors"));
            }
            ILoggingEvent line = awaitEvent("the long-run log line", e -> e.getFormattedMessage().startsWith("execution " + eid));
            assertTrue(line.getFormattedMessage().matches("execution " + Pattern.quote(eid)
                    + " of session \\S+ has run for \\d+ s: \\d+ records read, \\d+ done so far"), line.getFormattedMessage());
            call("RG.GETRESULTSBLOCKING", eid);
            Map<String, Object> done = plan(eid);
            assertEquals("done", done.get("status"));
            assertEquals(4000L, done.get("results"));
            assertEquals(4000L, done.get("records_read"));
            assertEquals(4000L, done.get("records_done"));
        } finally {
            call("RG.DROPEXECUTION", eid);
            direct.del(keys.keySet().toArray(new String[0]));
        }
    }

    @Test
    void failingRegistrationExecutionsAreLoggedOneLineEachRateLimited() throws Exception {
        var direct = TestServer.redisDirect();
        assertEquals("OK", py("def boom(r):\n    return 1 / 0\nGB().foreach(boom).register(prefix='opfail:*')", "ID", "opfail"));
        String rid = String.valueOf(((List<?>) ((List<?>) call("RG.DUMPREGISTRATIONS")).stream()
                .filter(r -> String.valueOf(r).contains("opfail")).findFirst().orElseThrow()).get(1));
        try {
            Map<String, String> keys = new HashMap<>();
            for (int i = 0; i < 200; i++) {
                keys.put("opfail:" + i, "v");
            }
            direct.mset(keys);
            Predicate<ILoggingEvent> failureLine = e -> e.getLoggerName().equals("io.jgears.failures")
                    && e.getFormattedMessage().startsWith("registration " + rid + " (session opfail)");
            ILoggingEvent first = awaitEvent("a failure line", failureLine);
            assertTrue(first.getFormattedMessage().contains("ZeroDivisionError: division by zero"), first.getFormattedMessage());
            assertTrue(first.getFormattedMessage().contains("in boom"), "the Python frame: " + first.getFormattedMessage());
            assertEquals(1, first.getFormattedMessage().lines().count(), first.getFormattedMessage());
            assertNull(first.getThrowableProxy(), "no Java stack trace for a user's error");
            assertEquals(Level.WARN, first.getLevel());
            await("200 failures counted", () -> String.valueOf(call("RG.DUMPREGISTRATIONS")).contains("numFailures, 200"));
            // Lines held back are counted on the next line that passes: every failure is accounted for.
            Thread.sleep(1100);
            direct.set("opfail:last", "v");
            Pattern held = Pattern.compile("^\\((\\d+) similar failure lines were not logged");
            long[] counts = new long[2];
            await("every failure logged or counted as held back", () -> {
                counts[0] = events(failureLine).size();
                counts[1] = 0;
                for (ILoggingEvent e : events(e -> held.matcher(e.getFormattedMessage()).find())) {
                    Matcher m = held.matcher(e.getFormattedMessage());
                    m.find();
                    counts[1] += Long.parseLong(m.group(1));
                }
                return counts[0] + counts[1] >= 201;
            });
            long logged = counts[0];
            long heldBack = counts[1];
            // Rate-limited: at most 10 lines a second (20 in a sliding second, which spans two of the log's windows).
            List<Long> times = events(failureLine).stream().map(ILoggingEvent::getTimeStamp).sorted().toList();
            for (int i = 0; i < times.size(); i++) {
                long from = times.get(i);
                long inSecond = times.stream().filter(t -> t >= from && t < from + 1000).count();
                assertTrue(inSecond <= 21, inSecond + " failure lines within a second");
            }
            assertEquals(201, logged + heldBack, logged + " logged + " + heldBack + " held back");
        } finally {
            call("RG.UNREGISTER", rid);
        }
    }

    @Test
    void aScriptThatFailsToLoadIsLogged() throws Exception {
        pyError("x = 1\nraise ValueError('bad config')", "ID", "opbadload");
        ILoggingEvent line = awaitEvent("the load error line", e -> e.getFormattedMessage().startsWith("session opbadload: the script failed to load"));
        assertTrue(line.getFormattedMessage().contains("ValueError: bad config"), line.getFormattedMessage());
        assertNull(line.getThrowableProxy());
    }

    @Test
    void noDefaultTimeLimitAndAUserSetOneIsLoggedWhenItFires() throws Exception {
        assertEquals(List.of(0L, 0L), call("RG.CONFIGGET", "ExecutionTimeout", "RegistrationTimeout"));
        call("RG.CONFIGSET", "ExecutionTimeout", "300");
        try {
            String error = pyError("while True:\n    pass");
            assertTrue(error.contains("ExecutionTimeout (300 ms)"), error);
        } finally {
            call("RG.CONFIGSET", "ExecutionTimeout", "0");
        }
        ILoggingEvent line = awaitEvent("the timeout line", e -> e.getFormattedMessage().contains("ran longer than ExecutionTimeout (300 ms)"));
        assertEquals(Level.WARN, line.getLevel());
    }

    @Test
    void logLevelsAreHonoured() throws Exception {
        assertEquals("OK", py("log('oplevel-warning', level='warning')\nlog('oplevel-notice')\n"
                + "log('oplevel-verbose', level='verbose')\nlog('oplevel-debug', level='debug')"));
        ILoggingEvent warning = awaitEvent("the warning", e -> e.getFormattedMessage().endsWith("oplevel-warning"));
        assertEquals(Level.WARN, warning.getLevel());
        assertEquals(Level.INFO, awaitEvent("the notice", e -> e.getFormattedMessage().endsWith("oplevel-notice")).getLevel());
        // Below notice, hidden at the default level (as Redis' default loglevel notice hides them).
        assertTrue(events(e -> e.getFormattedMessage().contains("oplevel-verbose") || e.getFormattedMessage().contains("oplevel-debug")).isEmpty());
    }
}
