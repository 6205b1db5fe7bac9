package io.jgears.gears;

import io.jgears.engine.HostApi;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/** One run() of a pipeline: its status, its results and errors once done. */
public final class Execution {
    public enum Status { CREATED, RUNNING, DONE, ABORTED;

        public String label() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    private final String id;
    /** Its key among Executions' live ones (set there when it is added; the id's parse, done once). */
    Object liveKey;
    private final Session session;
    private final String reader;
    private final boolean unblocking;
    private final long createdNanos = System.nanoTime();
    private final CompletableFuture<Execution> done = new CompletableFuture<>();
    private volatile Status status = Status.CREATED;
    private volatile boolean abortRequested;
    /** True while a thread runs this execution's Python (false while it is parked on a future). */
    private volatile boolean inPython;
    /** The hooked command this execution serves (override_reply, call_next), also when it resumes later. */
    private volatile HostApi.HookCall hook;
    private volatile List<Object> results = List.of();
    private volatile List<String> errors = List.of();
    private volatile long durationNanos;
    /** [type, name, arg] per step, as run() described its pipeline. */
    private final List<List<String>> plan;
    /** On a cluster, a coordinator's run: the other shards' replies (their records), else empty. */
    private volatile List<CompletableFuture<Object>> shardReplies = List.of();
    /** With ProfileExecutions: nanoseconds in the reader, then in each step; else null. */
    private volatile long[] profileNanos;
    private volatile Registration registration;
    /** Progress of a run() while it runs: records out of the reader, and out of the last step, so far. */
    private volatile long recordsRead;
    private volatile long recordsDone;
    /** When the long-run log last named this execution (System.nanoTime), 0 before. */
    private volatile long lastProgressLog;
    private final java.util.concurrent.atomic.AtomicBoolean counted = new java.util.concurrent.atomic.AtomicBoolean();

    /** On a cluster: the run's name on every shard, and how many repartitions its plan has (0: none). */
    private volatile String clusterRunId;
    private volatile int exchangePhases;

    // Public: io.jgears.engine.HostApi names a cluster run's execution when run() starts it.
    public void clusterRun(String runId) {
        clusterRunId = runId;
    }

    // Public: io.jgears.engine.HostApi addresses the run's repartition batches by it.
    public String clusterRunId() {
        return clusterRunId;
    }

    // Public: io.jgears.engine.HostApi reports how many repartitions the run's plan has.
    public void exchangePhases(int phases) {
        exchangePhases = phases;
    }

    // Public: io.jgears.engine.HostApi tells the other shards which repartitions this run did not reach.
    public int exchangePhases() {
        return exchangePhases;
    }

    // Public: io.jgears.engine.HostApi hands a coordinator's run the other shards' replies.
    public void shardReplies(List<CompletableFuture<Object>> replies) {
        shardReplies = replies;
    }

    public List<CompletableFuture<Object>> shardReplies() {
        return shardReplies;
    }

    Execution(String id, Session session, String reader, boolean unblocking, List<List<String>> plan) {
        this.id = id;
        this.session = session;
        this.reader = reader;
        this.unblocking = unblocking;
        this.plan = plan;
    }

    public List<List<String>> plan() {
        return plan;
    }

    public long[] profileNanos() {
        return profileNanos;
    }

    // Public: io.jgears.engine.HostApi reports the run's step times (ProfileExecutions).
    public void profile(long[] nanos) {
        this.profileNanos = nanos;
    }

    public String id() {
        return id;
    }

    public Session session() {
        return session;
    }

    public String reader() {
        return reader;
    }

    public boolean unblocking() {
        return unblocking;
    }

    public Status status() {
        return status;
    }

    HostApi.HookCall hook() {
        return hook;
    }

    void hook(HostApi.HookCall call) {
        hook = call;
    }

    public boolean isFinished() {
        return status == Status.DONE || status == Status.ABORTED;
    }

    public CompletableFuture<Execution> done() {
        return done;
    }

    public List<Object> results() {
        return results;
    }

    public List<String> errors() {
        return errors;
    }

    public long durationMillis() {
        return durationNanos / 1_000_000;
    }

    public long durationMicros() {
        return durationNanos / 1000;
    }

    /**
     * Kept for RG.GETRESULTS/RG.DUMPEXECUTIONS: an UNBLOCKING run, a registration's execution, or a blocking
     * run of a script that also registered (RedisGears keeps those until RG.DROPEXECUTION).
     */
    public boolean isStored() {
        return unblocking || registration != null || kept;
    }

    private volatile boolean kept;

    void keep() {
        kept = true;
    }

    /** The registration that triggered this execution, or null for run(). */
    public Registration registration() {
        return registration;
    }

    void registration(Registration r) {
        registration = r;
    }

    public long recordsRead() {
        return recordsRead;
    }

    public long recordsDone() {
        return recordsDone;
    }

    // Public: io.jgears.engine.HostApi reports the run's progress.
    public void progress(long read, long done) {
        recordsRead = read;
        recordsDone = done;
    }

    /** How long it has run so far (ms), or its whole duration once finished. */
    public long elapsedMillis() {
        return isFinished() ? durationMillis() : (System.nanoTime() - createdNanos) / 1_000_000;
    }

    long lastProgressLog() {
        return lastProgressLog;
    }

    void lastProgressLog(long nanos) {
        lastProgressLog = nanos;
    }

    boolean abortRequested() {
        return abortRequested;
    }

    boolean inPython() {
        return inPython;
    }

    // Public: io.jgears.engine.HostApi marks a run that is inside Python (an abort interrupts it).
    public void inPython(boolean inside) {
        inPython = inside;
    }

    void requestAbort() {
        abortRequested = true;
    }

    // Public: io.jgears.engine.HostApi starts a run inside a script load.
    public void running() {
        status = Status.RUNNING;
    }

    // Public: io.jgears.engine.HostApi reports the run's results.
    public void complete(List<Object> results, List<String> errors) {
        finish(Status.DONE, results, errors);
    }

    void abort(String why) {
        finish(Status.ABORTED, results, appended(errors, why));
    }

    /** True the first time only: a finished execution is counted in its registration's stats once. */
    boolean countOnce() {
        return counted.compareAndSet(false, true);
    }

    private synchronized void finish(Status status, List<Object> results, List<String> errors) {
        if (isFinished()) {
            return;
        }
        this.results = results;
        this.errors = errors;
        this.recordsDone = results.size();
        this.durationNanos = System.nanoTime() - createdNanos;
        this.status = status;
        done.complete(this);
    }

    private static List<String> appended(List<String> list, String item) {
        java.util.ArrayList<String> out = new java.util.ArrayList<>(list);
        out.add(item);
        return out;
    }
}
