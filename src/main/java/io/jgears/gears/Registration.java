package io.jgears.gears;

import io.jgears.engine.InlineGate;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A register() of a session: the reader's arguments, the counters RG.DUMPREGISTRATIONS shows, and the
 * events waiting to run. Holds a REGISTRATION reference on its session while registered.
 */
public final class Registration {
    public enum Kind { KEYS, KEYS_ONLY, STREAM, COMMAND }

    private final String id;
    private final Session session;
    private final Kind kind;
    private final String reader;
    private final String description;
    private final String mode;
    /** The reader's arguments, as register() gave them (lists for eventTypes/keyTypes, null when unset). */
    private final Map<String, Object> args;
    private final List<List<String>> plan;
    /** Its position among its session's register() calls: names its stream consumer group across restarts. */
    private final int index;
    private final Instant created = Instant.now();

    /** Events (KeysReader) waiting for their execution, in arrival order. */
    final ConcurrentLinkedQueue<Object[]> events = new ConcurrentLinkedQueue<>();
    /** Whether a drain task runs or is queued: one at a time keeps events in order. */
    final AtomicBoolean draining = new AtomicBoolean();
    /** Key events accepted, and those whose execution ended (or that were filtered out): the sync barrier. */
    final java.util.concurrent.atomic.AtomicLong received = new java.util.concurrent.atomic.AtomicLong();
    private long processed;
    private final java.util.List<Object[]> waiters = new java.util.ArrayList<>();
    /** Finished executions kept for RG.DUMPEXECUTIONS, oldest first (MaxExecutionsPerRegistration). */
    final ArrayDeque<Execution> recent = new ArrayDeque<>();
    /** Whether RG.TRIGGER may run this registration on the client's event loop (its calls are short). */
    final InlineGate inline = new InlineGate();

    private volatile boolean unregistered;
    private volatile boolean active;
    private volatile boolean paused;
    private volatile String status = "running";
    private long triggered;
    private long success;
    private long failures;
    private long aborted;
    private long lastRunMicros;
    private long totalRunMicros;
    /** The last error, null until there is one (and, for StreamReader, again after a success). */
    private String lastError;
    private long lastLagNanos;
    private long totalLagNanos;
    /** A StreamReader registration's status is its consumer's (OK, PAUSED, ABORTED, ...). */
    private volatile java.util.function.Supplier<Object> streamStatus;
    private long notificationGaps;
    private String lastGap = "";

    Registration(String id, Session session, Kind kind, String reader, String description, String mode,
                 Map<String, Object> args, List<List<String>> plan, int index) {
        this.id = id;
        this.session = session;
        this.kind = kind;
        this.reader = reader;
        this.description = description;
        this.mode = mode;
        this.args = args;
        this.plan = plan;
        this.index = index;
    }

    public String id() {
        return id;
    }

    public Session session() {
        return session;
    }

    public Kind kind() {
        return kind;
    }

    public String reader() {
        return reader;
    }

    public String description() {
        return description;
    }

    public String mode() {
        return mode;
    }

    public Map<String, Object> args() {
        return args;
    }

    public List<List<String>> plan() {
        return plan;
    }

    public int index() {
        return index;
    }

    public Instant created() {
        return created;
    }

    public String stringArg(String name) {
        Object v = args.get(name);
        return v == null ? null : v.toString();
    }

    public long longArg(String name) {
        return ((Number) args.get(name)).longValue();
    }

    /**
     * Its arguments as RedisGears shows them (RG.DUMPREGISTRATIONS' args, INFO rg): name/value pairs. A
     * CommandReader hook shows as the trigger of its command, as there; a stream's consumer group is
     * jgears' addition.
     */
    public List<Object> redisGearsArgs() {
        return switch (kind()) {
            case KEYS, KEYS_ONLY -> List.of("regex", stringArg("prefix"),
                    "eventTypes", listArg("eventTypes") == null ? List.of() : listArg("eventTypes"),
                    "keyTypes", listArg("keyTypes") == null ? List.of() : listArg("keyTypes"),
                    "hookCommands", listArg("commands") == null ? List.of() : listArg("commands"));
            case STREAM -> List.of("batchSize", longArg("batch"), "durationMS", longArg("duration"),
                    "stream", stringArg("prefix"), "trimStream", boolArg("trimStream") ? 1L : 0L,
                    "onFailedPolicy", stringArg("onFailedPolicy"), "retryInterval", longArg("onFailedRetryInterval") / 1000,
                    "consumerGroup", Registrations.groupName(this));
            case COMMAND -> List.of("trigger", stringArg("trigger") != null ? stringArg("trigger") : stringArg("hook"),
                    "inorder", boolArg("inorder") ? 1L : 0L);
        };
    }

    public boolean boolArg(String name) {
        return Boolean.TRUE.equals(args.get(name));
    }

    @SuppressWarnings("unchecked")
    public List<String> listArg(String name) {
        return (List<String>) args.get(name);
    }

    public boolean isActive() {
        return active;
    }

    void activate() {
        active = true;
    }

    public boolean isUnregistered() {
        return unregistered;
    }

    void markUnregistered() {
        unregistered = true;
        status = "unregistered";
        processed(Long.MAX_VALUE / 4);
    }

    public boolean isPaused() {
        return paused;
    }

    void paused(boolean p) {
        paused = p;
        if (!unregistered && !"aborted".equals(status)) {
            status = p ? "paused" : "running";
        }
    }

    public String status() {
        java.util.function.Supplier<Object> s = streamStatus;
        return s != null ? s.get().toString() : status;
    }

    void streamStatus(java.util.function.Supplier<Object> consumerStatus) {
        streamStatus = consumerStatus;
    }

    synchronized void lag(long nanos) {
        lastLagNanos = nanos;
        totalLagNanos += nanos;
        lagSamples++;
        lagMetricNanos += nanos;
    }

    /**
     * Key events' lag, for metrics: {@code total} nanoseconds waited by {@code events} events between their
     * notification and the start of their batch, the oldest of them {@code oldest}. (DUMPREGISTRATIONS shows
     * lag for StreamReader only, as RedisGears does.)
     */
    synchronized void eventLag(long total, long events, long oldest) {
        lastEventLagNanos = oldest;
        lagSamples += events;
        lagMetricNanos += total;
    }

    /** Lag samples (events, or stream batches), their total (ns) and the last one, as metrics export them. */
    private long lagSamples;
    private long lagMetricNanos;
    private long lastEventLagNanos;

    void status(String s) {
        status = s;
    }

    synchronized void triggered(long n) {
        triggered += n;
    }

    synchronized void finished(Execution e) {
        long micros = e.durationMicros();
        lastRunMicros = micros;
        totalRunMicros += micros;
        if (e.status() == Execution.Status.ABORTED) {
            aborted++;
        } else if (!e.errors().isEmpty()) {
            failures++;
            lastError = e.errors().getFirst();
        } else {
            success++;
            if (kind == Kind.STREAM) {
                lastError = null;  // RedisGears: a StreamReader registration's error clears once a batch succeeds
            }
        }
    }

    synchronized void gap(String when) {
        notificationGaps++;
        lastGap = when;
    }

    synchronized void clearStats() {
        triggered = success = failures = aborted = lastRunMicros = totalRunMicros = lastLagNanos = totalLagNanos = 0;
        lastError = null;
    }

    /** The RedisGears RegistrationData counters, in its order. */
    public synchronized List<Object> stats() {
        long done = success + failures + aborted;
        List<Object> out = new java.util.ArrayList<>(List.of("numTriggered", triggered, "numSuccess", success, "numFailures", failures,
                "numAborted", aborted, "lastRunDurationMS", lastRunMicros / 1000,
                "totalRunDurationMS", totalRunMicros / 1000,
                "avgRunDurationMS", done == 0 ? "0" : String.format(java.util.Locale.ROOT, "%.3f", totalRunMicros / 1000.0 / done)));
        if (kind == Kind.STREAM) {
            // RedisGears' StreamReader adds the batches' estimated lag (from the first entry's xadd to the end).
            out.addAll(List.of("lastEstimatedLagMS", lastLagNanos / 1_000_000, "avgEstimatedLagMS",
                    done == 0 ? "0" : String.format(java.util.Locale.ROOT, "%.3f", totalLagNanos / 1_000_000.0 / done)));
        }
        out.add("lastError");
        out.add(lastError);  // nil until the first error
        return out;
    }

    /** {@code n} more events are done with. */
    void processed(long n) {
        if (n == 0) {
            return;
        }
        List<java.util.concurrent.CompletableFuture<Void>> ready = new java.util.ArrayList<>();
        synchronized (waiters) {
            processed += n;
            waiters.removeIf(w -> {
                if ((long) w[0] <= processed) {
                    @SuppressWarnings("unchecked")
                    var f = (java.util.concurrent.CompletableFuture<Void>) w[1];
                    ready.add(f);
                    return true;
                }
                return false;
            });
        }
        ready.forEach(f -> f.complete(null));
    }

    /** Completes when the first {@code target} events received are done with. */
    java.util.concurrent.CompletableFuture<Void> processedUpTo(long target) {
        synchronized (waiters) {
            if (processed >= target || unregistered) {
                return java.util.concurrent.CompletableFuture.completedFuture(null);
            }
            var f = new java.util.concurrent.CompletableFuture<Void>();
            waiters.add(new Object[]{target, f});
            return f;
        }
    }

    public synchronized long notificationGaps() {
        return notificationGaps;
    }

    public synchronized String lastGap() {
        return lastGap;
    }

    /** The counters metrics export: events triggered, executions by outcome, events received but not done. */
    public record Counts(long triggered, long succeeded, long failed, long aborted, long backlog,
                         long lagSamples, long lagNanos, long lastLagNanos) {
    }

    public Counts counts() {
        long backlog;
        synchronized (waiters) {
            backlog = Math.max(0, received.get() - processed);
        }
        synchronized (this) {
            return new Counts(triggered, success, failures, aborted, backlog, lagSamples, lagMetricNanos,
                    kind == Kind.STREAM ? lastLagNanos : lastEventLagNanos);
        }
    }
}
