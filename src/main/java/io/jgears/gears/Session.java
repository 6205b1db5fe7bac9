package io.jgears.gears;

import io.jgears.engine.HostApi;
import io.jgears.python.SubInterpreter;

import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * A session: what one RG.PYEXECUTE created, around its own sub-interpreter. Everything the script
 * creates holds a reference on it (the running script, each stored execution; registrations and time
 * events later). When the last reference goes, the owner closes the sub-interpreter and its memory is released.
 */
public final class Session {
    /** What holds a reference; counted per kind for RG.PYDUMPSESSIONS. */
    public enum Holder { SCRIPT, EXECUTION, REGISTRATION, TIME_EVENT }

    private final String id;
    private final String description;
    private final SubInterpreter interpreter;
    private final Instant created = Instant.now();
    private final Map<Holder, Integer> holders = new LinkedHashMap<>();
    private final Consumer<Session> onFree;
    private int refCount;
    private boolean freed;
    private volatile boolean dead;
    /** The session an UPGRADE or REPLACE_WITH of this one replaces, while it loads; else null. */
    private volatile Session replacing;
    /** Whether its code is stored in Redis to be restored at start-up. */
    private volatile boolean persisted;
    /** Its code, kept to store it for restarts. */
    private volatile String code;
    /** The ACL user its commands run as (the client's), or null for jgears' own. */
    private volatile io.jgears.redis.RedisUser user;
    /** On a cluster: the block of ids its script's registrations took, the same on every shard; else null. */
    private volatile ClusterRunIds clusterIds;

    /** The requirements it asked for (REQUIREMENTS), as given. */
    private volatile java.util.List<String> requirements = java.util.List.of();
    /** The directories its import hook reads, those of its requirements' wheels. */
    private volatile java.util.List<java.nio.file.Path> requirementRoots = java.util.List.of();
    /** What its sandbox allows beyond the default (ALLOW, PythonAllowNetwork). */
    private volatile io.jgears.requirements.SessionPolicy policy = io.jgears.requirements.SessionPolicy.DEFAULT;

    public java.util.List<String> requirements() {
        return requirements;
    }

    public java.util.List<java.nio.file.Path> requirementRoots() {
        return requirementRoots;
    }

    void requirements(java.util.List<String> names, java.util.List<java.nio.file.Path> roots) {
        requirements = java.util.List.copyOf(names);
        requirementRoots = java.util.List.copyOf(roots);
    }

    public io.jgears.requirements.SessionPolicy policy() {
        return policy;
    }

    void policy(io.jgears.requirements.SessionPolicy p) {
        policy = p;
    }

    /** RedisGears 1.2 mode: a globals dict of its own in the one shared context (see Sessions). */
    private final boolean shared;
    /** Names this session's globals in the shared context (ids repeat across upgrades, this does not). */
    private final String key;
    private static final java.util.concurrent.atomic.AtomicLong KEYS = new java.util.concurrent.atomic.AtomicLong();
    private int registrationsMade;

    Session(String id, String description, SubInterpreter interpreter, Consumer<Session> onFree, boolean shared) {
        this.id = id;
        this.description = description;
        this.interpreter = interpreter;
        this.onFree = onFree;
        this.shared = shared;
        this.key = id + "#" + KEYS.incrementAndGet();
    }

    public boolean isShared() {
        return shared;
    }

    String key() {
        return key;
    }

    /** The next register() position of this session (names its stream consumer groups). */
    // Public: io.jgears.engine.HostApi numbers the session's register() calls.
    public synchronized int nextRegistrationIndex() {
        return registrationsMade++;
    }

    /**
     * Runs {@code action} inside this session's context. In the shared context, the host object is bound
     * to this session first: whoever enters it next may be another session.
     */
    public <T> T enter(java.util.function.Function<SubInterpreter, T> action) {
        return interpreter.enter(si -> {
            if (shared) {
                ((HostApi) si.host()).bind(this);
            }
            return action.apply(si);
        });
    }

    /** {@link SubInterpreter#enterParallel} into this session's context (bound to it in shared mode). */
    public <T> java.util.List<T> enterParallel(java.util.List<java.util.function.Function<SubInterpreter, T>> actions,
                                              java.util.concurrent.Executor threads) {
        // The lock is reentrant: the binding and the parallel run happen under one hold of it.
        return enter(si -> si.enterParallel(actions, threads));
    }

    public String id() {
        return id;
    }

    public String description() {
        return description;
    }

    public SubInterpreter interpreter() {
        return interpreter;
    }

    public Instant created() {
        return created;
    }

    public synchronized void acquire(Holder holder) {
        if (freed) {
            throw new IllegalStateException("session " + id + " was already freed");
        }
        refCount++;
        holders.merge(holder, 1, Integer::sum);
    }

    /** Drops one reference; the last one closes the sub-interpreter (outside any Python call). */
    public void release(Holder holder) {
        synchronized (this) {
            Integer n = holders.get(holder);
            if (n == null || refCount == 0) {
                throw new IllegalStateException("session " + id + " has no " + holder + " reference to release");
            }
            if (n == 1) {
                holders.remove(holder);
            } else {
                holders.put(holder, n - 1);
            }
            if (--refCount > 0) {
                return;
            }
            freed = true;
        }
        // The owner closes the sub-interpreter (off the request path: closing a context takes milliseconds).
        onFree.accept(this);
    }

    public synchronized int refCount() {
        return refCount;
    }

    public synchronized Map<Holder, Integer> holders() {
        return new LinkedHashMap<>(holders);
    }

    public synchronized boolean isFreed() {
        return freed;
    }

    public Session replacing() {
        return replacing;
    }

    void replacing(Session s) {
        replacing = s;
    }

    boolean persisted() {
        return persisted;
    }

    void persisted(boolean p) {
        persisted = p;
    }

    public io.jgears.redis.RedisUser user() {
        return user;
    }

    void user(io.jgears.redis.RedisUser u) {
        user = u;
    }

    // Public: io.jgears.engine.HostApi places a script's registerTE() on its shard of a cluster.
    public ClusterRunIds clusterIds() {
        return clusterIds;
    }

    void clusterIds(ClusterRunIds ids) {
        clusterIds = ids;
    }

    public String code() {
        return code;
    }

    void code(String c) {
        code = c;
    }

    /** Replaced by an upgrade but still running something. */
    public boolean isDead() {
        return dead;
    }

    void markDead() {
        dead = true;
    }
}
