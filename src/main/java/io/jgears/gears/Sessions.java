package io.jgears.gears;

import io.jgears.engine.HostApi;
import io.jgears.python.ContextPool;
import io.jgears.python.SubInterpreter;

import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/** The live sessions by id. A session leaves when its last reference is released. */
public final class Sessions {
    private final ContextPool pool;
    private final ConcurrentHashMap<String, Session> byId = new ConcurrentHashMap<>();
    /** Every session not yet freed, replaced ('dead') ones included. */
    private final java.util.Set<Session> alive = ConcurrentHashMap.newKeySet();
    /** Closes freed sub-interpreters in the background, in the order they were freed. */
    private final ScheduledExecutorService closer = Executors.newSingleThreadScheduledExecutor(
            r -> Thread.ofPlatform().name("jgears-context-closer").daemon().unstarted(r));
    /**
     * Freed shared-mode sessions whose globals are still to be dropped. They are dropped together every
     * DROP_MILLIS: one entry into the shared context for all of them, rather than one per session, each
     * contending with the next call for the context (a one-off RG.PYEXECUTE frees its session at once).
     */
    private final java.util.concurrent.ConcurrentLinkedQueue<Session> sharedDrops = new java.util.concurrent.ConcurrentLinkedQueue<>();
    private static final long DROP_MILLIS = 100;

    private final java.util.function.Consumer<Session> onFreed;

    Sessions(ContextPool pool, java.util.function.Consumer<Session> onFreed) {
        this.pool = pool;
        this.onFreed = onFreed;
        closer.scheduleWithFixedDelay(this::dropSharedSessions, DROP_MILLIS, DROP_MILLIS, TimeUnit.MILLISECONDS);
    }

    private void dropSharedSessions() {
        if (sharedDrops.isEmpty()) {
            return;
        }
        SubInterpreter context;
        synchronized (this) {
            context = shared;
        }
        try {
            context.enter(si -> {
                for (Session s; (s = sharedDrops.poll()) != null; ) {
                    si.call("_drop_session", s.key());
                }
                return null;
            });
        } catch (RuntimeException e) {
            sharedDrops.clear();  // the shared context is closing (or gone: then so are the globals)
        }
    }

    /**
     * A new session on a fresh sub-interpreter from the pool, holding one SCRIPT reference.
     *
     * @param id null for a generated id
     * @param replacing the session an UPGRADE replaces (may hold the same id), or null
     * @throws IllegalStateException when the id is taken and this is not an upgrade of it
     */
    Session create(String id, String description, Session replacing) {
        return create(id, description, replacing, false);
    }

    /** The one context every shared-mode session runs in, created on first use and kept until shutdown. */
    private SubInterpreter shared;

    private synchronized SubInterpreter sharedInterpreter() {
        if (shared == null || shared.isClosed()) {
            shared = pool.take();
        }
        return shared;
    }

    /** The shared context if it exists and is open, without creating it. */
    synchronized SubInterpreter sharedIfOpen() {
        return shared == null || shared.isClosed() ? null : shared;
    }

    /** A new session id (when the client gives no ID): 32 hex digits. */
    public static String newId() {
        return UUID.randomUUID().toString().replace("-", "");
    }

    Session create(String id, String description, Session replacing, boolean sharedMode) {
        return create(id, description, replacing, sharedMode, io.jgears.requirements.SessionPolicy.DEFAULT);
    }

    /** As above, on a context built for {@code policy} when it is not the default sandbox (never shared). */
    Session create(String id, String description, Session replacing, boolean sharedMode, io.jgears.requirements.SessionPolicy policy) {
        String sid = id != null ? id : newId();
        Session existing = byId.get(sid);
        if (existing != null && existing != replacing) {
            throw new IllegalStateException("Session " + sid + " already exists");
        }
        SubInterpreter interpreter = sharedMode ? sharedInterpreter() : pool.take(policy);
        Session session = new Session(sid, description, interpreter, this::removed, sharedMode);
        session.policy(policy);
        if (!sharedMode) {
            ((HostApi) interpreter.host()).bind(session);
        }
        session.acquire(Session.Holder.SCRIPT);
        alive.add(session);
        if (replacing == null || !replacing.id().equals(sid)) {
            if (byId.putIfAbsent(sid, session) != null) {
                session.release(Session.Holder.SCRIPT);
                throw new IllegalStateException("Session " + sid + " already exists");
            }
        }
        return session;
    }

    /** Makes an upgraded session the owner of its id. */
    void promote(Session session) {
        byId.put(session.id(), session);
    }

    private void removed(Session session) {
        byId.remove(session.id(), session);
        alive.remove(session);
        onFreed.accept(session);
        if (session.isShared()) {
            // The shared context stays; only this session's globals go, with the others freed meanwhile.
            sharedDrops.add(session);
            return;
        }
        if (closer.isShutdown()) {
            // Freed while jgears shuts down: close here rather than have the closer refuse the task.
            session.interpreter().close();
        } else {
            closer.execute(session.interpreter()::close);
        }
    }

    void close() {
        closer.shutdown();
        try {
            closer.awaitTermination(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (Session s : snapshot()) {
            s.interpreter().close();
        }
        synchronized (this) {
            if (shared != null) {
                shared.close();
            }
        }
    }

    public Session get(String id) {
        return byId.get(id);
    }

    /** Every live session, replaced ones still running included, oldest first. */
    public List<Session> all() {
        List<Session> out = new ArrayList<>(alive);
        out.sort(java.util.Comparator.comparing(Session::created));
        return out;
    }

    public int count() {
        return alive.size();
    }

    List<Session> snapshot() {
        return new ArrayList<>(alive);
    }
}
