package io.jgears;

import io.lettuce.core.api.StatefulRedisConnection;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * 400 sessions created and freed through every kind of holder (blocking run, stored execution,
 * one-shot time event, named session); after each round the live-context count is back to its start, and
 * the heap stops growing, within a bound far below what one leaked context per session would cost (~3.7 MB).
 * (400, not more: each interpreter-mode session costs a new context, and the suite must stay within
 * minutes on a busy 2-core machine.)
 */
@Tag("long")  // minutes on 2 cores: ./jgears test-long
class SessionLeakTest extends GearsTestBase {
    private static final int SESSIONS = 400;
    private static final int CLIENTS = 3;
    private static final int ROUNDS = 4;

    @Test
    void hundredsOfSessionsComeAndGoWithoutLeakingContextsOrMemory() throws Exception {
        var engine = TestServer.get().engine();
        engine.pool().awaitFull(120, TimeUnit.SECONDS);
        long sessionsBefore = stat("sessions");
        int contextsBefore = engine.python().liveContexts();
        long heapBefore = usedHeapAfterGc();

        // Four rounds of 100: the first ones also warm caches (code, JIT profiles), so the leak check is
        // on the later rounds, where a per-session leak would keep growing the heap.
        List<Long> heap = new ArrayList<>(List.of(heapBefore));
        AtomicInteger next = new AtomicInteger();
        // A round that times out must not leave its clients running into the tests after this one.
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        try {
            for (int round = 1; round <= ROUNDS; round++) {
                int end = SESSIONS * round / ROUNDS;
                List<CompletableFuture<Void>> clients = new ArrayList<>();
                for (int c = 0; c < CLIENTS; c++) {
                    clients.add(CompletableFuture.runAsync(() -> {
                        try (StatefulRedisConnection<byte[], byte[]> conn = TestServer.connectRaw()) {
                            int i;
                            while (!stop.get() && (i = next.getAndIncrement()) < end) {
                                oneSession(conn, i);
                            }
                        }
                        next.set(end);
                    }));
                }
                CompletableFuture.allOf(clients.toArray(CompletableFuture[]::new)).get(600, TimeUnit.SECONDS);
                awaitSessions(sessionsBefore);
                engine.pool().awaitFull(120, TimeUnit.SECONDS);
                long deadline = System.currentTimeMillis() + 120_000;
                while (engine.python().liveContexts() != contextsBefore && System.currentTimeMillis() < deadline) {
                    Thread.sleep(20);
                }
                assertEquals(contextsBefore, engine.python().liveContexts(), "live contexts after round " + round);
                heap.add(usedHeapAfterGc());
            }
        } finally {
            stop.set(true);
        }
        System.out.printf("leak test: %d sessions; used heap after GC, MB, start and after each round: %s%n",
                SESSIONS, heap.stream().map(h -> h >> 20).toList());
        long lateGrowth = heap.get(ROUNDS) - heap.get(ROUNDS / 2);
        long perSession = lateGrowth / (SESSIONS / 2);
        // GC readings swing by ~30 MB here (pooled contexts, caches); one leaked context is ~3.7 MB, so a
        // leak of even 1/7 of a context per session fails this bound.
        assertTrue(perSession < 512 * 1024, "heap grew by " + (lateGrowth >> 20) + " MB over the last "
                + SESSIONS / 2 + " sessions (" + perSession + " bytes each)");
    }

    /** Session i, held by a different kind of owner depending on i. */
    private static void oneSession(StatefulRedisConnection<byte[], byte[]> conn, int i) {
        switch (i % 4) {
            case 0 -> TestServer.call(conn, "RG.PYEXECUTE", "GB('ShardsIDReader').map(lambda x: x).run()");
            case 1 -> {
                String eid = (String) TestServer.call(conn, "RG.PYEXECUTE", "GB('ShardsIDReader').run()", "UNBLOCKING");
                TestServer.call(conn, "RG.GETRESULTSBLOCKING", eid);
                TestServer.call(conn, "RG.DROPEXECUTION", eid);
            }
            case 2 -> TestServer.call(conn, "RG.PYEXECUTE", "registerTimer(1, lambda: None, oneshot=True)");
            default -> TestServer.call(conn, "RG.PYEXECUTE", "x = [str(n) for n in range(1000)]", "ID", "leak-" + i);
        }
    }

    private static long usedHeapAfterGc() throws InterruptedException {
        long used = Long.MAX_VALUE;
        for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(200);
            used = Math.min(used, ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed());
        }
        return used;
    }
}
