package io.jgears.engine;

/**
 * Whether a short Python call may run on the thread that received its command (the client's event loop)
 * rather than be handed to an execution thread and its reply handed back. On 2 cores those two hand-offs
 * cost more than a short call itself: measured on RG.TRIGGER, 6.4 context switches and 42 µs of event loop
 * CPU per call handed off, against 4 and about the same CPU with the call inline, and no execution thread.
 *
 * <p>A call site (a command registration, or one shared-mode script text) earns the inline path with a
 * streak of calls each shorter than the limit (InlineExecutionMicros), wherever they ran. A lone overrun
 * does not count: it is most likely a GC pause or the JIT's threads taking the core, which stop the event
 * loop wherever the call runs (measured while warming up: 10-45 ms stalls with under 300 µs of CPU). A
 * second overrun within OVERRUN_MEMORY calls of the site does, and so does any overrun past LONG_STALL
 * (longer than those pauses): the gate closes and the streak needed to open it again doubles, so a call
 * site that is sometimes slow blocks an event loop ever more rarely. Counters are updated without locks: a
 * lost update only shifts when the gate opens.
 */
public final class InlineGate {
    static final int FIRST_STREAK = 16;
    private static final int MAX_STREAK = 4096;
    private static final int OVERRUN_MEMORY = 64;
    private static final long LONG_STALL_NANOS = 200_000_000;

    private volatile int fast;
    private volatile int needed = FIRST_STREAK;
    /** Calls since the last overrun; past OVERRUN_MEMORY an overrun counts as a lone one again. */
    private volatile int sinceOverrun = OVERRUN_MEMORY;

    public boolean open() {
        return fast >= needed;
    }

    /**
     * Records one call of this site that took {@code nanos}; {@code inline}: it ran on the caller's thread.
     * Returns true when this call closed an open gate.
     */
    public boolean ran(long nanos, long limitNanos, boolean inline) {
        if (nanos <= limitNanos) {
            if (fast < needed) {
                fast++;
            }
            if (sinceOverrun < OVERRUN_MEMORY) {
                sinceOverrun++;
            }
            return false;
        }
        boolean lone = sinceOverrun >= OVERRUN_MEMORY && nanos < LONG_STALL_NANOS;
        sinceOverrun = 0;
        if (lone) {
            return false;
        }
        boolean wasOpen = open();
        fast = 0;
        if (inline) {
            needed = Math.min(MAX_STREAK, needed * 2);
        }
        return wasOpen;
    }
}
