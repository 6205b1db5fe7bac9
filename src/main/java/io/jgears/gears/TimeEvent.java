package io.jgears.gears;

import java.time.Instant;
import java.util.concurrent.ScheduledFuture;

/**
 * A time event: calls its callback in its session every interval (or once), holding a reference on it.
 * RedisGears' registerTE() events stop when their callback raises and, with a key name, when that key
 * no longer holds their marker; jgears' registerTimer() events go on and are stopped by unregisterTE().
 */
public final class TimeEvent {
    private final String id;
    private final Session session;
    private final long intervalMillis;
    private final String description;
    private final boolean oneshot;
    /** The Redis key that keeps a RedisGears key-backed event alive (null: none). */
    private final String key;
    /** Whether a failing callback stops the event (RedisGears' registerTE). */
    private final boolean stopsOnError;
    private final Instant created = Instant.now();
    private long fired;
    private long failures;
    private String lastError = "";
    private long lastRunMicros;
    private long totalRunMicros;
    private ScheduledFuture<?> next;
    private boolean cancelled;

    TimeEvent(String id, Session session, long intervalMillis, String description, boolean oneshot,
              String key, boolean stopsOnError) {
        this.id = id;
        this.session = session;
        this.intervalMillis = intervalMillis;
        this.description = description;
        this.oneshot = oneshot;
        this.key = key;
        this.stopsOnError = stopsOnError;
    }

    public String key() {
        return key;
    }

    /** The value its key holds while the event lives: names the session that owns it. */
    public static String marker(Session session) {
        return "jgears-time-event:" + session.id();
    }

    public boolean stopsOnError() {
        return stopsOnError;
    }

    public String id() {
        return id;
    }

    public Session session() {
        return session;
    }

    public long intervalMillis() {
        return intervalMillis;
    }

    public String description() {
        return description;
    }

    public boolean oneshot() {
        return oneshot;
    }

    public Instant created() {
        return created;
    }

    synchronized void recordRun(long micros, String error) {
        fired++;
        lastRunMicros = micros;
        totalRunMicros += micros;
        if (error != null) {
            failures++;
            lastError = error;
        }
    }

    public synchronized long fired() {
        return fired;
    }

    public synchronized long failures() {
        return failures;
    }

    public synchronized String lastError() {
        return lastError;
    }

    public synchronized long lastRunMicros() {
        return lastRunMicros;
    }

    public synchronized long totalRunMicros() {
        return totalRunMicros;
    }

    /** Sets the next firing unless the event was cancelled meanwhile; false when it was. */
    synchronized boolean schedule(java.util.function.Supplier<ScheduledFuture<?>> scheduler) {
        if (cancelled) {
            return false;
        }
        next = scheduler.get();
        return true;
    }

    /** Stops future firings; true for the first caller only (who then owns releasing the reference). */
    synchronized boolean cancel() {
        if (cancelled) {
            return false;
        }
        cancelled = true;
        if (next != null) {
            next.cancel(false);
        }
        return true;
    }

    public synchronized boolean isCancelled() {
        return cancelled;
    }
}
