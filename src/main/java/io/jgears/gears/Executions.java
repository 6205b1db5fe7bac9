package io.jgears.gears;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Every live execution by id. UNBLOCKING executions stay stored (holding their session) until
 * RG.DROPEXECUTION or until MaxExecutions pushes the oldest finished ones out.
 */
public final class Executions {
    public static final String SHARD_ID = "0000000000000000000000000000000000000000";

    private final GearsConfig config;
    /** This shard's id in execution ids: RedisGears' zeros on a single Redis, the Redis node id on a cluster. */
    private volatile String shardId = SHARD_ID;
    private final AtomicLong counter = new AtomicLong();
    /**
     * Oldest first. This shard's ids by sequence number, not by id string: the ids share a 41-character
     * prefix, and consecutive ones hash into few buckets (1,024 ids land in 356 of 1,024), which turned the
     * busiest buckets into trees under a stream of triggered executions. On a cluster, this shard's part of
     * a run another shard coordinated has that shard's id (see {@link ClusterRunIds}): keyed by id string.
     */
    private final LinkedHashMap<Object, Execution> live = new LinkedHashMap<>();

    Executions(GearsConfig config) {
        this.config = config;
    }

    public String shardId() {
        return shardId;
    }

    void shardId(String id) {
        shardId = id;
    }

    /** A new id in the executions' sequence (registrations take theirs from it too, as in RedisGears). */
    String nextId() {
        return idOf(counter.incrementAndGet());
    }

    private String idOf(long sequence) {
        return shardId + "-" + sequence;
    }

    /**
     * On a cluster: {@code n} ids of the sequence set aside for what one RG.PYEXECUTE creates on every
     * shard; returns the number before the first (the block is first+1 ... first+n).
     */
    public long reserve(int n) {
        return counter.getAndAdd(n);
    }

    /** A restored session holds ids up to {@code sequence}: new ones come after it. */
    void advancePast(long sequence) {
        counter.accumulateAndGet(sequence, Math::max);
    }

    /** An execution a registration triggered: kept per registration (MaxExecutionsPerRegistration), not here. */
    Execution createTriggered(Registration registration) {
        Session session = registration.session();
        session.acquire(Session.Holder.EXECUTION);
        long sequence = counter.incrementAndGet();
        Execution execution = new Execution(idOf(sequence), session, registration.reader(), false, registration.plan());
        execution.registration(registration);
        execution.liveKey = sequence;  // its key without parsing the id back: one per trigger or event
        synchronized (this) {
            live.put(sequence, execution);
        }
        return execution;
    }

    // Public: io.jgears.engine.HostApi creates the execution of a run().
    public Execution create(Session session, String reader, boolean stored, List<List<String>> plan) {
        return create(session, reader, stored, plan, null);
    }

    /** {@code id}: the id the execution has on every shard of a cluster run, or null for the next one here. */
    // Public: io.jgears.engine.HostApi creates the execution of a run().
    public Execution create(Session session, String reader, boolean stored, List<List<String>> plan, String id) {
        if (id == null) {
            id = nextId();
        }
        session.acquire(Session.Holder.EXECUTION);
        Execution execution = new Execution(id, session, reader, stored, plan);
        List<Execution> evicted;
        synchronized (this) {
            execution.liveKey = key(id);
            live.put(execution.liveKey, execution);
            evicted = stored ? evictBeyondLimit() : List.of();
        }
        evicted.forEach(e -> e.session().release(Session.Holder.EXECUTION));
        return execution;
    }

    private List<Execution> evictBeyondLimit() {
        long max = config.getLong(GearsConfig.MAX_EXECUTIONS);
        List<Execution> evicted = new ArrayList<>();
        long storedCount = live.values().stream().filter(Execution::unblocking).count();
        Iterator<Execution> it = live.values().iterator();
        while (storedCount > max && it.hasNext()) {
            Execution e = it.next();
            if (e.unblocking() && e.isFinished()) {
                it.remove();
                evicted.add(e);
                storedCount--;
            }
        }
        return evicted;
    }

    public synchronized Execution find(String id) {
        Execution e = live.get(key(id));
        return e != null && e.id().equals(id) ? e : null;
    }

    /** The map key of an id: its sequence number when it is this shard's ({@code <shard>-<n>}), else the id. */
    private Object key(String id) {
        long sequence = sequence(id, shardId);
        return sequence < 0 ? id : (Object) sequence;
    }

    /** The sequence number of an id ({@code <shard>-<n>}), or -1 when it is not one of {@code shard}'s. */
    private static long sequence(String id, String shard) {
        int dash = id.lastIndexOf('-');
        if (dash != shard.length() || dash + 1 == id.length() || id.length() - dash > 19 || !id.startsWith(shard)) {
            return -1;
        }
        long n = 0;
        for (int i = dash + 1; i < id.length(); i++) {
            char c = id.charAt(i);
            if (c < '0' || c > '9') {
                return -1;
            }
            n = n * 10 + (c - '0');
        }
        return n;
    }

    /** Forgets an execution and drops its session reference; false when it is unknown. */
    // Public: io.jgears.engine.HostApi drops a blocking run() once Python has finished it.
    public boolean release(Execution execution) {
        synchronized (this) {
            if (execution.liveKey == null || live.remove(execution.liveKey) == null) {
                return false;
            }
        }
        execution.session().release(Session.Holder.EXECUTION);
        return true;
    }

    /** Every live execution of a session (stored, running or parked). */
    public synchronized List<Execution> of(Session session) {
        return live.values().stream().filter(e -> e.session() == session).toList();
    }

    /** The executions not finished yet (running, or parked on a future), oldest first. */
    public synchronized List<Execution> unfinished() {
        return live.values().stream().filter(e -> !e.isFinished()).toList();
    }

    /** The stored executions (UNBLOCKING ones and those registrations triggered), oldest first. */
    public synchronized List<Execution> stored() {
        return live.values().stream().filter(Execution::isStored).toList();
    }
}
