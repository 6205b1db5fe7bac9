package io.jgears.engine;

import io.jgears.gears.GearsConfig;
import io.jgears.gears.Session;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A heap guard for GraalPy contexts. GraalVM Community has no per-context memory limit (the
 * {@code sandbox.MaxHeapMemory} option is Oracle GraalVM only), so jgears watches the JVM heap: when it
 * stays above {@code MemoryWatermark} percent of the maximum after a GC, the Python call that has
 * allocated the most since it started is interrupted (its allocation read from the JVM's per-thread
 * allocation counter). The session's own objects go when the session is freed.
 */
public final class MemoryGuard {
    private static final Logger log = LoggerFactory.getLogger(MemoryGuard.class);
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    private static final MemoryMXBean MEMORY = ManagementFactory.getMemoryMXBean();

    /** One call into Python in progress. */
    public static final class Call {
        final Session session;
        final Thread thread;
        final long allocatedAtStart;
        public volatile boolean killed;
        public volatile long allocated;

        Call(Session session, Thread thread) {
            this.session = session;
            this.thread = thread;
            this.allocatedAtStart = THREADS.getThreadAllocatedBytes(thread.threadId());
        }
    }

    private final GearsConfig config;
    private final Map<Thread, Call> active = new ConcurrentHashMap<>();
    private long lastGc;
    /** After an interruption the culprit's memory needs a moment (context close, GC) to go. */
    private long quietUntil;
    private volatile long interruptions;

    public MemoryGuard(GearsConfig config) {
        this.config = config;
    }

    public Call begin(Session session) {
        return begin(session, Thread.currentThread());
    }

    public Call begin(Session session, Thread thread) {
        Call call = new Call(session, thread);
        active.put(call.thread, call);
        return call;
    }

    public void end(Call call) {
        active.remove(call.thread, call);
    }

    public long interruptions() {
        return interruptions;
    }

    /** Runs every 100 ms on the timer thread. */
    public void check() {
        long percent = config.getLong(GearsConfig.MEMORY_WATERMARK);
        if (percent <= 0 || active.isEmpty() || System.currentTimeMillis() < quietUntil) {
            return;
        }
        long max = MEMORY.getHeapMemoryUsage().getMax();
        long limit = max / 100 * percent;
        if (MEMORY.getHeapMemoryUsage().getUsed() < limit) {
            return;
        }
        // Over the mark: is it garbage? A full GC at most every 2 s tells.
        long now = System.currentTimeMillis();
        if (now - lastGc > 2000) {
            lastGc = now;
            System.gc();
        }
        long used = MEMORY.getHeapMemoryUsage().getUsed();
        if (used < limit) {
            return;
        }
        // Only a call that allocated a real share of the heap can be the culprit: a small one is left alone
        // (the memory may belong to a session that is idle or being freed).
        long minimum = Math.max(64L << 20, max / 20);
        Call biggest = null;
        for (Call c : active.values()) {
            c.allocated = THREADS.getThreadAllocatedBytes(c.thread.threadId()) - c.allocatedAtStart;
            if (!c.killed && c.allocated >= minimum && (biggest == null || c.allocated > biggest.allocated)) {
                biggest = c;
            }
        }
        if (biggest != null) {
            quietUntil = System.currentTimeMillis() + 2000;
            biggest.killed = true;
            interruptions++;
            log.warn("heap at {} MB of {} MB (MemoryWatermark {}%): interrupting session {}, which allocated {} MB in this call",
                    used >> 20, max >> 20, percent, biggest.session.id(), biggest.allocated >> 20);
            biggest.session.interpreter().interrupt(Duration.ofSeconds(5));
        }
    }
}
