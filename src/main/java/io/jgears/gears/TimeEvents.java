package io.jgears.gears;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/** Every live time event by id. Each holds a TIME_EVENT reference on its session while it lives. */
public final class TimeEvents {
    private final AtomicLong counter = new AtomicLong();
    private final LinkedHashMap<String, TimeEvent> byId = new LinkedHashMap<>();

    TimeEvent create(Session session, long intervalMillis, String description, boolean oneshot) {
        return create(session, intervalMillis, description, oneshot, null, false);
    }

    TimeEvent create(Session session, long intervalMillis, String description, boolean oneshot, String key, boolean stopsOnError) {
        String id = "te-" + counter.incrementAndGet();
        session.acquire(Session.Holder.TIME_EVENT);
        TimeEvent te = new TimeEvent(id, session, intervalMillis, description, oneshot, key, stopsOnError);
        synchronized (this) {
            byId.put(id, te);
        }
        return te;
    }

    public synchronized TimeEvent find(String id) {
        return byId.get(id);
    }

    /** Forgets a cancelled time event; the caller releases its session reference. */
    synchronized void remove(TimeEvent te) {
        byId.remove(te.id(), te);
    }

    public synchronized List<TimeEvent> all() {
        return List.copyOf(byId.values());
    }

    /** The live event kept alive by this Redis key, or null. */
    public synchronized TimeEvent byKey(String key) {
        return byId.values().stream().filter(t -> key.equals(t.key())).findFirst().orElse(null);
    }

    public synchronized List<TimeEvent> of(Session session) {
        return byId.values().stream().filter(t -> t.session() == session).toList();
    }
}
