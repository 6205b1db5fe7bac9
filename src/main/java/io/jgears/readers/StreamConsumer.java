package io.jgears.readers;

import io.jgears.redis.RedisBackend;
import io.jgears.redis.RedisCommandException;
import io.lettuce.core.api.StatefulRedisConnection;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * Feeds one StreamReader registration the way RedisGears 1.2 does. Each xadd notification of a matching
 * stream counts an entry; when a stream has a batch of them (or its duration passed) an execution is
 * triggered. Executions of the registration run one at a time, in trigger order, and read their entries
 * when they start, through a consumer group: entries are acknowledged (and, with trimStream, deleted)
 * only after their execution succeeded. When a registration first sees a stream (at registration, on
 * unpause, after a retry wait, or on the stream's first xadd) its first execution reads the group's
 * pending entries: entries delivered but never acknowledged run again (at least once).
 * <p>
 * A failing execution, with onFailedPolicy retry or abort, a PAUSE error, RG.PAUSEREGISTRATIONS or
 * RG.UNREGISTER forget the streams' state and abort the executions not started yet; the running one
 * finishes. Nothing triggers while Redis is a replica.
 * <p>
 * All state lives on one control thread (virtual); a second one runs the executions.
 */
public final class StreamConsumer {
    private static final Logger log = LoggerFactory.getLogger(StreamConsumer.class);
    static final String CONSUMER = "jgears";

    public enum Policy { CONTINUE, ABORT, RETRY }

    public enum Status { OK, WAITING_FOR_RETRY_ON_FAILURE, ABORTED, PAUSED, UNREGISTERED }

    public record Settings(String prefix, String group, int batch, long durationMillis, Policy onFailed,
                           long retryIntervalMillis, boolean trim) {
    }

    /** How an execution ended: aborted, or its first error (null when it succeeded). */
    public record Outcome(boolean aborted, String error) {
    }

    /** The registration's side: creating, running and aborting executions, and the replica check. */
    public interface Host {
        /** A new execution, counted as triggered; it has not started. */
        Object trigger();

        /** Runs the execution on these entries ([id, [field, value, ...]] each); completes when it ended. */
        CompletableFuture<Outcome> run(Object execution, String stream, List<Object[]> entries);

        /** Ends an execution that never started, as aborted. */
        void abortNotStarted(Object execution);

        /** Whether Redis is a master: registrations trigger on masters only. */
        boolean master();

        /** The estimated lag of a batch that succeeded: from its first entry's xadd to its acknowledgement. */
        void lag(long nanos);
    }

    /** What the registration knows of one stream (RedisGears' SingleStreamReaderCtx). */
    private static final class StreamState {
        final String name;
        /** Entries counted and not yet acknowledged (XLEN when the stream was first seen). */
        long pending;
        /** Entries of the batch being filled. */
        long nextBatch;
        /** When each waiting batch's first entry came (nanos; 0 when unknown: already there). */
        final ArrayDeque<Long> batchStarts = new ArrayDeque<>();
        ScheduledFuture<?> timer;
        boolean running;
        /** Forgotten (pause, failure, unregister) while its execution ran: that execution triggers nothing more. */
        boolean forgotten;

        StreamState(String name) {
            this.name = name;
        }
    }

    private record Job(Object execution, StreamState stream, int count, boolean readPending) {
    }

    private final RedisBackend redis;
    private final io.jgears.redis.RedisUser user;
    private final Settings settings;
    private final Host host;
    private final ScheduledExecutorService timers;
    private final ExecutorService control;
    private final ExecutorService worker;
    private final String name;

    // Control-thread state.
    private volatile Status status = Status.PAUSED;
    private final Map<String, StreamState> streams = new HashMap<>();
    private final ArrayDeque<Job> queue = new ArrayDeque<>();
    private Job current;
    /** Notifications whose handling is done once no execution is queued or running (sync mode). */
    private final List<Runnable> idleWaiters = new ArrayList<>();
    private StatefulRedisConnection<byte[], byte[]> conn;
    /** The worker thread's connection (reads run there while the control thread acknowledges). */
    private StatefulRedisConnection<byte[], byte[]> readConn;

    public StreamConsumer(RedisBackend redis, io.jgears.redis.RedisUser user, Settings settings, Host host,
                          ScheduledExecutorService timers, String name) {
        this.redis = redis;
        this.user = user;
        this.settings = settings;
        this.host = host;
        this.timers = timers;
        this.name = name;
        this.control = Executors.newSingleThreadExecutor(Thread.ofVirtual().name("jgears-stream-" + name).factory());
        this.worker = Executors.newSingleThreadExecutor(Thread.ofVirtual().name("jgears-stream-run-" + name).factory());
    }

    public String group() {
        return settings.group();
    }

    /** The streams this consumer has seen (read on its control thread, where they are kept). */
    public List<String> streamNames() {
        try {
            return control.submit(() -> List.copyOf(streams.keySet())).get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            return List.of();
        }
    }

    public Status status() {
        return status;
    }

    /** The registration became active: scan for matching streams (on a master). */
    public void start() {
        post(() -> {
            status = Status.OK;
            if (host.master()) {
                scan();
            }
        });
    }

    /**
     * An xadd on a matching stream; {@code handled} runs once this notification is dealt with: at once when
     * {@code waitIdle} is false, else when no execution of the registration is queued or running.
     */
    public void xadd(String stream, boolean waitIdle, Runnable handled) {
        post(() -> {
            try {
                onXadd(stream);
            } finally {
                if (waitIdle && !idle()) {
                    idleWaiters.add(handled);
                } else {
                    handled.run();
                }
            }
        });
    }

    /** Redis became a master again: look for streams (RedisGears' turned-master scan). */
    public void becameMaster() {
        post(() -> {
            if (status == Status.OK) {
                scan();
            }
        });
    }

    /** RG.PAUSEREGISTRATIONS: the running execution finishes, those not started are aborted. */
    public void pause() {
        call(() -> {
            if (status != Status.UNREGISTERED) {
                forgetStreams();
                status = Status.PAUSED;
            }
        });
    }

    /** RG.UNPAUSEREGISTRATIONS: reads the streams again, from their pending entries. */
    public void unpause() {
        call(() -> {
            if (status != Status.UNREGISTERED) {
                status = Status.OK;
                if (host.master()) {
                    scan();
                }
            }
        });
    }

    /** RG.UNREGISTER: no execution starts after this returns; one already running completes. */
    public void stop() {
        CompletableFuture<Boolean> running = new CompletableFuture<>();
        call(() -> {
            status = Status.UNREGISTERED;
            forgetStreams();
            releaseIdleWaiters();
            running.complete(current != null);
            if (current == null) {
                close(conn);
            }
        });
        // A batch still running finishes as on RedisGears: its entries are acknowledged (and trimmed) by
        // done(), which then stops the threads; the next entries stay in the stream.
        if (!running.getNow(false)) {
            stopThreads();
        }
    }

    private void stopThreads() {
        control.shutdown();
        try {
            worker.execute(() -> close(readConn));  // after the running execution, if any
        } catch (java.util.concurrent.RejectedExecutionException e) {
            // already stopped
        }
        worker.shutdown();
    }

    private static void close(StatefulRedisConnection<byte[], byte[]> c) {
        if (c != null) {
            c.closeAsync();
        }
    }

    private void post(Runnable task) {
        try {
            control.execute(() -> {
                try {
                    task.run();
                } catch (RuntimeException e) {
                    log.warn("stream reader {}: {}", settings.group(), e.getMessage());
                }
            });
        } catch (java.util.concurrent.RejectedExecutionException e) {
            // stopped
        }
    }

    /** Runs a task on the control thread and waits for it (management commands). */
    private void call(Runnable task) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        post(() -> {
            try {
                task.run();
            } finally {
                done.complete(null);
            }
        });
        try {
            done.get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            log.warn("stream reader {}: control did not answer: {}", settings.group(), e.toString());
        }
    }

    // ------------------------------------------------------------------ control thread

    private StatefulRedisConnection<byte[], byte[]> conn() {
        if (conn == null || !conn.isOpen()) {
            conn = redis.connectDedicated(user);
        }
        return conn;
    }

    private Object redis(String... args) {
        List<byte[]> argv = new ArrayList<>(args.length);
        for (String a : args) {
            argv.add(a.getBytes(StandardCharsets.UTF_8));
        }
        return RedisBackend.dispatch(conn(), argv);
    }

    /** RedisGears' prefix rule: a trailing * matches by prefix, otherwise the whole name must match. */
    static boolean matches(String prefix, String stream) {
        return Glob.prefixMatches(prefix, stream);
    }

    private void onXadd(String stream) {
        if (status != Status.OK || !host.master() || !matches(settings.prefix(), stream)) {
            return;
        }
        StreamState st = streams.get(stream);
        if (st == null) {
            st = track(stream, true);
            if (st == null) {
                return;
            }
        } else {
            st.pending++;
            st.nextBatch++;
            if (st.nextBatch == 1) {
                st.batchStarts.addLast(System.nanoTime());
            }
            if (st.nextBatch == settings.batch()) {
                st.nextBatch = 0;
            }
        }
        if (settings.batch() <= st.pending && !st.running) {
            cancelTimer(st);
            trigger(st, settings.batch(), false);
        } else if (!st.running && st.timer == null && settings.durationMillis() > 0) {
            setTimer(st, settings.durationMillis());
        }
    }

    /** Every stream whose name matches: tracked, each starting with an execution of its pending entries. */
    private void scan() {
        String cursor = "0";
        String pattern = settings.prefix().endsWith("*") ? globEscape(settings.prefix().substring(0, settings.prefix().length() - 1)) + "*"
                : globEscape(settings.prefix());
        do {
            List<?> r = (List<?>) redis("SCAN", cursor, "MATCH", pattern, "COUNT", "1000", "TYPE", "stream");
            cursor = text(r.get(0));
            for (Object k : (List<?>) r.get(1)) {
                String key = text(k);
                if (!streams.containsKey(key) && status == Status.OK) {
                    track(key, false);
                }
            }
        } while (!cursor.equals("0"));
    }

    private static String globEscape(String s) {
        return s.replaceAll("([*?\\[\\]\\\\])", "\\\\$1");
    }

    /** Starts tracking a stream: its length is what waits; an execution reads its pending entries first. */
    private StreamState track(String stream, boolean startsNow) {
        long length;
        try {
            length = ((Number) redis("XLEN", stream)).longValue();
        } catch (RedisCommandException e) {
            log.warn("stream reader {}: XLEN {}: {}", settings.group(), stream, e.getMessage());
            return null;
        }
        StreamState st = new StreamState(stream);
        st.pending = length;
        for (long i = 0; i < length; i += settings.batch()) {
            st.batchStarts.addLast(startsNow ? System.nanoTime() : 0L);
        }
        streams.put(stream, st);
        trigger(st, 0, true);
        return st;
    }

    private void trigger(StreamState st, int count, boolean readPending) {
        st.running = true;
        queue.addLast(new Job(host.trigger(), st, count, readPending));
        dispatch();
    }

    private void dispatch() {
        if (current != null || queue.isEmpty()) {
            return;
        }
        Job job = queue.pollFirst();
        current = job;
        try {
            worker.execute(() -> runJob(job));
        } catch (java.util.concurrent.RejectedExecutionException e) {
            current = null;
            host.abortNotStarted(job.execution());
        }
    }

    /** Forgets every stream and aborts the executions not started yet (RedisGears' CleanSingleStreamsData). */
    private void forgetStreams() {
        for (StreamState st : streams.values()) {
            cancelTimer(st);
            st.forgotten = true;
        }
        streams.clear();
        while (!queue.isEmpty()) {
            host.abortNotStarted(queue.pollFirst().execution());
        }
    }

    private void setTimer(StreamState st, long millis) {
        st.timer = timers.schedule(() -> post(() -> onTimer(st)), Math.max(1, millis), TimeUnit.MILLISECONDS);
    }

    private static void cancelTimer(StreamState st) {
        if (st.timer != null) {
            st.timer.cancel(false);
            st.timer = null;
        }
    }

    private void onTimer(StreamState st) {
        st.timer = null;
        if (st.forgotten || status != Status.OK) {
            return;
        }
        st.nextBatch = 0;
        if (!host.master()) {
            forgetStreams();
            return;
        }
        if (!st.running) {
            trigger(st, settings.batch(), false);
        }
    }

    /** After a batch: another one if a full batch waits, or its duration passed; else a timer for the rest. */
    private void triggerNextIfNeeded(StreamState st) {
        st.running = false;
        if (st.pending <= 0) {
            return;
        }
        if (settings.batch() <= st.pending) {
            trigger(st, settings.batch(), false);
            return;
        }
        Long first = st.batchStarts.peekFirst();
        long start = first == null ? 0 : first;
        if (start == 0) {
            // Entries that were there before: no start time to wait from.
            st.nextBatch = 0;
            trigger(st, settings.batch(), false);
            return;
        }
        if (settings.durationMillis() > 0) {
            long elapsedMillis = (System.nanoTime() - start) / 1_000_000;
            if (elapsedMillis >= settings.durationMillis()) {
                st.nextBatch = 0;
                trigger(st, settings.batch(), false);
            } else if (st.timer == null) {
                setTimer(st, settings.durationMillis() - elapsedMillis);
            }
        }
    }

    /** {@code readFailed}: the batch's entries could not be read (Redis refused or went away): nothing ran. */
    private void done(Job job, List<String> ids, Outcome outcome, boolean readFailed) {
        current = null;
        StreamState st = job.stream();
        boolean acknowledge = false;
        if (outcome.error() != null) {
            if (outcome.error().startsWith("PAUSE")) {
                forgetStreams();
                if (status != Status.UNREGISTERED) {
                    status = Status.PAUSED;
                }
            } else if (settings.onFailed() != Policy.CONTINUE) {
                // Forget the streams: the next scan reads their unacknowledged entries again.
                forgetStreams();
                if (status != Status.UNREGISTERED && status != Status.PAUSED) {
                    if (settings.onFailed() == Policy.ABORT) {
                        status = Status.ABORTED;
                    } else if (host.master()) {
                        status = Status.WAITING_FOR_RETRY_ON_FAILURE;
                        timers.schedule(() -> post(this::retry), Math.max(1, settings.retryIntervalMillis()), TimeUnit.MILLISECONDS);
                    }
                }
            } else {
                acknowledge = true;
            }
        } else if (!outcome.aborted()) {
            acknowledge = true;
        }
        if (acknowledge) {
            if (!job.readPending()) {
                Long start = st.batchStarts.pollFirst();
                if (start != null && start != 0) {
                    host.lag(System.nanoTime() - start);
                }
            }
            if (host.master()) {
                acknowledge(st.name, ids);
                if (ids.isEmpty() && !job.readPending()) {
                    st.pending = 0;  // nothing was there to read: the count was off (entries deleted or read by others)
                } else {
                    st.pending = Math.max(0, st.pending - (job.readPending() ? 0 : ids.size()));
                }
                if (!st.forgotten) {
                    triggerNextIfNeeded(st);
                }
            } else {
                forgetStreams();
            }
        } else {
            st.running = false;
            if (readFailed && !st.forgotten) {
                // Its entries stay pending in the group. Left tracked, the stream would wait for a new entry
                // (a read refused while Redis turned replica, before the role watch saw it, stalled it for
                // good): forgotten, the next scan reads it again from its pending entries, and one comes
                // after the retry interval.
                cancelTimer(st);
                st.forgotten = true;
                streams.remove(st.name);
                timers.schedule(() -> post(() -> {
                    if (status == Status.OK && host.master()) {
                        scan();
                    }
                }), Math.max(1000, settings.retryIntervalMillis()), TimeUnit.MILLISECONDS);
            }
        }
        if (status == Status.UNREGISTERED) {
            if (idle()) {
                close(conn);
                stopThreads();
            }
            return;
        }
        dispatch();
        if (idle()) {
            releaseIdleWaiters();
        }
    }

    private void retry() {
        if (status == Status.WAITING_FOR_RETRY_ON_FAILURE) {
            status = Status.OK;
            if (host.master()) {
                scan();
            }
        }
    }

    private boolean idle() {
        return current == null && queue.isEmpty();
    }

    private void releaseIdleWaiters() {
        List<Runnable> ready = new ArrayList<>(idleWaiters);
        idleWaiters.clear();
        ready.forEach(Runnable::run);
    }

    private void acknowledge(String stream, List<String> ids) {
        if (ids.isEmpty()) {
            return;
        }
        try {
            List<String> ack = new ArrayList<>(List.of("XACK", stream, settings.group()));
            ack.addAll(ids);
            redis(ack.toArray(String[]::new));
            if (settings.trim()) {
                List<String> del = new ArrayList<>(List.of("XDEL", stream));
                del.addAll(ids);
                redis(del.toArray(String[]::new));
            }
        } catch (RedisCommandException e) {
            log.warn("stream reader {}: acknowledging entries of {}: {}", settings.group(), stream, e.getMessage());
        }
    }

    // ------------------------------------------------------------------ worker thread

    /** Reads the job's entries (creating the group when missing) and runs its execution. */
    private void runJob(Job job) {
        List<String> ids = new ArrayList<>();
        Outcome outcome;
        boolean unread = false;
        try {
            if (readConn == null || !readConn.isOpen()) {
                readConn = redis.connectDedicated(user);
            }
            List<Object[]> entries = read(readConn, job);
            List<Object[]> live = new ArrayList<>(entries.size());
            for (Object[] e : entries) {
                ids.add((String) e[0]);
                if (e[1] != null) {
                    live.add(e);  // a pending entry deleted meanwhile comes back without fields: acknowledged, not run
                }
            }
            outcome = host.run(job.execution(), job.stream().name, live).get();
        } catch (Exception e) {
            log.warn("stream reader {}: a batch of {} failed: {}", settings.group(), job.stream().name, e.getMessage());
            host.abortNotStarted(job.execution());
            outcome = new Outcome(true, null);
            unread = true;
        }
        Outcome result = outcome;
        boolean readFailed = unread;
        post(() -> done(job, ids, result, readFailed));
    }

    private List<Object[]> read(StatefulRedisConnection<byte[], byte[]> c, Job job) {
        try {
            return readGroup(c, job);
        } catch (RedisCommandException e) {
            if (!e.getMessage().startsWith("NOGROUP")) {
                throw e;
            }
            try {
                RedisBackend.dispatch(c, bytes("XGROUP", "CREATE", job.stream().name, settings.group(), "0"));
            } catch (RedisCommandException exists) {
                // created meanwhile, or the stream is gone (the read below then fails)
            }
            return readGroup(c, job);
        }
    }

    private List<Object[]> readGroup(StatefulRedisConnection<byte[], byte[]> c, Job job) {
        List<String> args = new ArrayList<>(List.of("XREADGROUP", "GROUP", settings.group(), CONSUMER));
        if (job.count() > 0) {
            args.addAll(List.of("COUNT", String.valueOf(job.count())));
        }
        args.addAll(List.of("STREAMS", job.stream().name, job.readPending() ? "0" : ">"));
        Object reply = RedisBackend.dispatch(c, bytes(args.toArray(String[]::new)));
        List<Object[]> out = new ArrayList<>();
        if (reply instanceof List<?> perStream) {
            for (Object o : perStream) {
                for (Object e : (List<?>) ((List<?>) o).get(1)) {
                    List<?> entry = (List<?>) e;
                    List<?> fields = (List<?>) entry.get(1);
                    out.add(new Object[]{text(entry.get(0)), fields == null ? null : fields.stream().map(StreamConsumer::text).toArray()});
                }
            }
        }
        return out;
    }

    private static List<byte[]> bytes(String... args) {
        List<byte[]> out = new ArrayList<>(args.length);
        for (String a : args) {
            out.add(a.getBytes(StandardCharsets.UTF_8));
        }
        return out;
    }

    private static String text(Object o) {
        return o instanceof byte[] b ? new String(b, StandardCharsets.UTF_8) : String.valueOf(o);
    }
}
