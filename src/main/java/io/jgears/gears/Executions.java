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
    private final AtomicLong counter = new AtomicLong();
    private final LinkedHashMap<String, Execution> live = new LinkedHashMap<>();

    Executions(GearsConfig config) {
        this.config = config;
    }

    /** A new id in the executions' sequence (registrations take theirs from it too, as in RedisGears). */
    String nextId() {
        return SHARD_ID + "-" + counter.incrementAndGet();
    }

    /** An execution a registration triggered: kept per registration (MaxExecutionsPerRegistration), not here. */
    Execution createTriggered(Registration registration) {
        Session session = registration.session();
        session.acquire(Session.Holder.EXECUTION);
        Execution execution = new Execution(nextId(), session, registration.reader(), false, registration.plan());
        execution.registration(registration);
        synchronized (this) {
            live.put(execution.id(), execution);
        }
        return execution;
    }

    Execution create(Session session, String reader, boolean stored, List<List<String>> plan) {
        String id = nextId();
        session.acquire(Session.Holder.EXECUTION);
        Execution execution = new Execution(id, session, reader, stored, plan);
        List<Execution> evicted;
        synchronized (this) {
            live.put(id, execution);
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
        return live.get(id);
    }

    /** Forgets an execution and drops its session reference; false when it is unknown. */
    boolean release(Execution execution) {
        synchronized (this) {
            if (live.remove(execution.id()) == null) {
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

    /** The stored executions (UNBLOCKING ones and those registrations triggered), oldest first. */
    public synchronized List<Execution> stored() {
        return live.values().stream().filter(e -> e.unblocking() || e.registration() != null).toList();
    }
}
