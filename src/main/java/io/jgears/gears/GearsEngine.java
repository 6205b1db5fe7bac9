package io.jgears.gears;

import io.jgears.engine.HostApi;
import io.jgears.engine.InlineGate;
import io.jgears.engine.MemoryGuard;
import io.jgears.engine.ScriptRun;
import io.jgears.python.ContextPool;
import io.jgears.python.PythonRuntime;
import io.jgears.redis.RedisBackend;
import io.jgears.server.Replies;
import io.netty.handler.codec.redis.RedisMessage;
import org.graalvm.polyglot.PolyglotException;
import org.graalvm.polyglot.Value;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * Runs Python for RG.PYEXECUTE and everything a session creates: sessions on sub-interpreters from the
 * warm pool; scripts, executions and time events on a bounded pool of {@code ExecutionThreads} threads
 * (different sessions in parallel, one thread inside a context at a time), each call into Python
 * guarded by the ExecutionTimeout watchdog.
 */
public final class GearsEngine implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(GearsEngine.class);

    private final GearsConfig config;
    private final RedisBackend redis;
    private final PythonRuntime python;
    private final ContextPool pool;
    private final Sessions sessions;
    private final Executions executions;
    private final TimeEvents timeEvents = new TimeEvents();
    private final Registrations registrations;
    private final MemoryGuard memoryGuard;
    private final SessionStore store;
    private volatile boolean closing;
    private final ThreadPoolExecutor executionThreads;
    /** Extra threads inside a context while a key registration's events run in parallel (KeyEventConcurrency). */
    private final java.util.concurrent.ExecutorService laneThreads;
    /** Fires time events, asyncio timers and the ExecutionTimeout watchdog; the work itself runs on executionThreads. */
    private final ScheduledExecutorService timer;

    private final io.jgears.requirements.Requirements requirements;

    private volatile ShardFanOut fanOut;

    /** On a cluster: how RG.PYEXECUTE reaches the other shards (set once at start-up). */
    public void fanOut(ShardFanOut fanOut) {
        this.fanOut = fanOut;
    }

    public ShardFanOut fanOut() {
        return fanOut;
    }

    private volatile io.jgears.server.LocalCommands clusterCommands;

    /** On a cluster: what answers RG.INFOCLUSTER and RG.REFRESHCLUSTER, for execute() from Python too. */
    public void clusterCommands(io.jgears.server.LocalCommands commands) {
        this.clusterCommands = commands;
    }

    public io.jgears.server.LocalCommands clusterCommands() {
        return clusterCommands;
    }

    /** This shard's id (see {@link Executions#shardId()}). */
    public String shardId() {
        return executions.shardId();
    }

    /** On a cluster: the local Redis node's id, for execution ids and ShardsIDReader. Set before any script runs. */
    public void shardId(String id) {
        executions.shardId(id);
    }

    public GearsEngine(GearsConfig config, RedisBackend redis, PythonRuntime python) {
        this(config, redis, python, false);
    }

    /** {@code noStateDatabase}: Redis has no database for jgears' state (a cluster node): sessions are kept in the file copy only. */
    public GearsEngine(GearsConfig config, RedisBackend redis, PythonRuntime python, boolean noStateDatabase) {
        this.config = config;
        this.requirements = new io.jgears.requirements.Requirements(java.nio.file.Path.of(config.get(GearsConfig.REQUIREMENTS_DIR)),
                () -> new io.jgears.requirements.Requirements.PipSettings(config.get(GearsConfig.PYTHON_PIP),
                        config.get(GearsConfig.PYTHON_INDEX_URL), config.get(GearsConfig.PYTHON_FIND_LINKS),
                        config.getLong(GearsConfig.PYTHON_INSTALL_TIMEOUT)));
        this.redis = redis;
        this.python = python;
        this.pool = new ContextPool(python, () -> new HostApi(libraryCalls), (int) config.getLong(GearsConfig.POOL_SIZE));
        this.sessions = new Sessions(pool, this::sessionFreed);
        this.registrations = new Registrations(this);
        this.store = noStateDatabase ? SessionStore.none() : new SessionStore(redis, (int) config.getLong(GearsConfig.STATE_DATABASE));
        this.executions = new Executions(config);
        int threads = (int) Math.max(1, config.getLong(GearsConfig.EXECUTION_THREADS));
        AtomicInteger n = new AtomicInteger();
        this.executionThreads = new ThreadPoolExecutor(threads, threads, 0, TimeUnit.MILLISECONDS,
                new LinkedBlockingQueue<>(),
                r -> Thread.ofPlatform().name("jgears-exec-" + n.incrementAndGet()).daemon()
                        .stackSize(GearsConfig.PYTHON_THREAD_STACK).unstarted(r));
        AtomicInteger lanes = new AtomicInteger();
        this.laneThreads = Executors.newCachedThreadPool(r -> Thread.ofPlatform().name("jgears-lane-" + lanes.incrementAndGet())
                .daemon().stackSize(GearsConfig.PYTHON_THREAD_STACK).unstarted(r));
        this.timer = Executors.newSingleThreadScheduledExecutor(
                r -> Thread.ofPlatform().name("jgears-timer").daemon().unstarted(r));
        this.memoryGuard = new MemoryGuard(config);
        timer.scheduleWithFixedDelay(() -> {
            try {
                memoryGuard.check();
            } catch (RuntimeException e) {
                log.warn("memory guard: {}", e.getMessage());
            }
        }, 100, 100, TimeUnit.MILLISECONDS);
        timer.scheduleWithFixedDelay(this::interruptOverdueCalls, WATCHDOG_MILLIS, WATCHDOG_MILLIS, TimeUnit.MILLISECONDS);
        // Off the timer thread (it runs the watchdog): a Redis round trip and a file write. A check still
        // waiting on an unreachable Redis is not joined by another one.
        timer.scheduleWithFixedDelay(this::logLongRuns, 1, 1, TimeUnit.SECONDS);
        timer.scheduleWithFixedDelay(() -> Thread.ofVirtual().name("jgears-state-check").start(() -> {
            if (stateCheckLock.tryLock()) {
                try {
                    checkStoredSessions();
                } finally {
                    stateCheckLock.unlock();
                }
            }
        }), 1, 1, TimeUnit.SECONDS);
    }

    private final java.util.concurrent.locks.ReentrantLock stateCheckLock = new java.util.concurrent.locks.ReentrantLock();

    /** An execution running this long gets a log line with its progress, and another every LONG_RUN_EVERY. */
    static final long LONG_RUN_FIRST_MILLIS = 5_000;
    static final long LONG_RUN_EVERY_NANOS = TimeUnit.SECONDS.toNanos(60);

    /**
     * A long run shows in the log: one line when an execution has run for 5 s, then one a minute while it
     * goes on, with its ids and its progress (records read and done so far, as RG.GETEXECUTION shows).
     */
    private void logLongRuns() {
        try {
            long now = System.nanoTime();
            for (Execution e : executions.unfinished()) {
                long elapsed = e.elapsedMillis();
                if (elapsed < LONG_RUN_FIRST_MILLIS) {
                    continue;
                }
                long last = e.lastProgressLog();
                if (last != 0 && now - last < LONG_RUN_EVERY_NANOS) {
                    continue;
                }
                e.lastProgressLog(now);
                Registration r = e.registration();
                log.info("execution {} of session {}{} has run for {} s{}: {} records read, {} done so far", e.id(),
                        e.session().id(), r == null ? "" : " (registration " + r.id() + ")", elapsed / 1000,
                        e.inPython() ? "" : " (waiting on a future)", e.recordsRead(), e.recordsDone());
            }
        } catch (RuntimeException e) {
            log.debug("long-run check: {}", e.toString());
        }
    }

    /** How often running Python calls are checked against their time limit (the limit's precision). */
    private static final long WATCHDOG_MILLIS = 20;

    /** A Python call running under a time limit. */
    private static final class TimedCall {
        final Session session;
        final String timeoutKey;
        final long timeoutNanos;
        volatile long deadlineNanos;
        volatile boolean timedOut;

        TimedCall(Session session, String timeoutKey, long timeoutNanos) {
            this.session = session;
            this.timeoutKey = timeoutKey;
            this.timeoutNanos = timeoutNanos;
            this.deadlineNanos = System.nanoTime() + timeoutNanos;
        }
    }

    /**
     * A registration execution of this session starts (the runtime asks before each event of a batch):
     * RegistrationTimeout limits each execution, not the batch a call into Python runs. Without this, a
     * batch of events that were each quick, on a busy machine, passed the limit together and was aborted
     * whole. In a batch run in lanes, a runaway event is interrupted once the other lanes stop starting
     * executions (the interrupt then ends the executions in flight in the other lanes too).
     */
    void executionStarts(Session session) {
        if (timedCalls.isEmpty()) {
            return;
        }
        long now = System.nanoTime();
        for (TimedCall call : timedCalls) {
            if (call.session == session && !call.timedOut && call.timeoutKey.equals(GearsConfig.REGISTRATION_TIMEOUT)) {
                call.deadlineNanos = now + call.timeoutNanos;
            }
        }
    }

    /**
     * The Python calls running under a time limit. A watchdog scans them every WATCHDOG_MILLIS instead of
     * a timer task per call: cancelled tasks stay queued until their time and each one woke the timer
     * thread (about 10 us of CPU per RG.PYEXECUTE or RG.TRIGGER, measured per thread).
     */
    private final java.util.Set<TimedCall> timedCalls = ConcurrentHashMap.newKeySet();

    private void interruptOverdueCalls() {
        long now = System.nanoTime();
        for (TimedCall call : timedCalls) {
            if (now - call.deadlineNanos >= 0) {
                // Again after as long if the call still runs: an interrupt that found no Python running (it
                // came just before a lane entered) must not be the last one.
                call.timedOut = true;
                call.deadlineNanos = now + Math.max(call.timeoutNanos, 1_000_000_000L);
                try {
                    call.session.interpreter().interrupt(Duration.ofSeconds(5));
                } catch (RuntimeException e) {
                    log.warn("could not interrupt an overdue call in session {}: {}", call.session.id(), e.getMessage());
                }
            }
        }
    }

    private final FailureLog failureLog = new FailureLog();

    FailureLog failureLog() {
        return failureLog;
    }

    public GearsConfig config() {
        return config;
    }

    /** jgears' timer thread: short tasks only (they hand work to other threads). */
    java.util.concurrent.ScheduledExecutorService scheduler() {
        return timer;
    }

    public RedisBackend redis() {
        return redis;
    }

    public PythonRuntime python() {
        return python;
    }

    public ContextPool pool() {
        return pool;
    }

    public Sessions sessions() {
        return sessions;
    }

    public Executions executions() {
        return executions;
    }

    public TimeEvents timeEvents() {
        return timeEvents;
    }

    /** How many Python calls the heap guard has interrupted. */
    public long memoryInterruptions() {
        return memoryGuard.interruptions();
    }

    public Registrations registrations() {
        return registrations;
    }

    /**
     * How the RG.* commands run where blocking is not allowed: for execute('RG.…') from Python (null until
     * the server is up). The commands package implements it.
     */
    public interface ModuleCalls {
        CompletableFuture<RedisMessage> executeNonBlocking(List<byte[]> args);
    }

    private volatile ModuleCalls commands;

    public void commands(ModuleCalls commands) {
        this.commands = commands;
    }

    ModuleCalls commands() {
        return commands;
    }

    /**
     * What the host functions of a context (io.jgears.engine.HostApi) call in the library: the one way in
     * from the engine side, so GearsEngine's own members stay package-private. The registrations,
     * executions and time events it hands out have public methods for the same caller.
     */
    public interface LibraryCalls {
        GearsConfig config();

        RedisBackend redis();

        Registrations registrations();

        Executions executions();

        TimeEvents timeEvents();

        ShardFanOut fanOut();

        String shardId();

        ModuleCalls commands();

        void submit(Runnable task);

        void persist(Session session);

        void runQueued(Execution execution);

        void resume(Session session, String executionId);

        void timer(Session session, long millis, long timerId);

        TimeEvent registerTimeEvent(Session session, long intervalMillis, String description, boolean oneshot);

        TimeEvent registerKeyedTimeEvent(Session session, long periodMillis, String key);

        boolean unregisterTimeEvent(TimeEvent te, boolean forgetInPython);

        /** A registration execution of the session starts: its RegistrationTimeout starts now. */
        void executionStarts(Session session);
    }

    /** This engine as its contexts' host functions see it (see {@link LibraryCalls}). */
    private final LibraryCalls libraryCalls = new LibraryCalls() {
        @Override
        public void executionStarts(Session session) {
            GearsEngine.this.executionStarts(session);
        }

        @Override
        public GearsConfig config() {
            return config;
        }

        @Override
        public RedisBackend redis() {
            return redis;
        }

        @Override
        public Registrations registrations() {
            return registrations;
        }

        @Override
        public Executions executions() {
            return executions;
        }

        @Override
        public TimeEvents timeEvents() {
            return timeEvents;
        }

        @Override
        public ShardFanOut fanOut() {
            return fanOut;
        }

        @Override
        public String shardId() {
            return GearsEngine.this.shardId();
        }

        @Override
        public ModuleCalls commands() {
            return commands;
        }

        @Override
        public void submit(Runnable task) {
            GearsEngine.this.submit(task);
        }

        @Override
        public void persist(Session session) {
            GearsEngine.this.persist(session);
        }

        @Override
        public void runQueued(Execution execution) {
            GearsEngine.this.runQueued(execution);
        }

        @Override
        public void resume(Session session, String executionId) {
            GearsEngine.this.resume(session, executionId);
        }

        @Override
        public void timer(Session session, long millis, long timerId) {
            GearsEngine.this.timer(session, millis, timerId);
        }

        @Override
        public TimeEvent registerTimeEvent(Session session, long intervalMillis, String description, boolean oneshot) {
            return GearsEngine.this.registerTimeEvent(session, intervalMillis, description, oneshot);
        }

        @Override
        public TimeEvent registerKeyedTimeEvent(Session session, long periodMillis, String key) {
            return GearsEngine.this.registerKeyedTimeEvent(session, periodMillis, key);
        }

        @Override
        public boolean unregisterTimeEvent(TimeEvent te, boolean forgetInPython) {
            return GearsEngine.this.unregisterTimeEvent(te, forgetInPython);
        }
    };

    public int executionThreads() {
        return executionThreads.getMaximumPoolSize();
    }

    /**
     * A parsed RG.PYEXECUTE. {@code requirements}: REQUIREMENTS, installed before the script runs;
     * {@code allow}: the session's capability policy (ALLOW), null for the configured default.
     */
    public record PyExecute(String code, boolean unblocking, String id, String description,
                            boolean upgrade, String replaceWith, io.jgears.redis.RedisUser user, boolean shared,
                            List<String> requirements, boolean forceReinstall, io.jgears.requirements.SessionPolicy allow,
                            String clusterRole, List<CompletableFuture<Object>> shardReplies, String clusterRunId,
                            ClusterRunIds clusterIds) {
        public PyExecute(String code, boolean unblocking, String id, String description,
                         boolean upgrade, String replaceWith, io.jgears.redis.RedisUser user, boolean shared) {
            this(code, unblocking, id, description, upgrade, replaceWith, user, shared, List.of(), false, null);
        }

        public PyExecute(String code, boolean unblocking, String id, String description,
                         boolean upgrade, String replaceWith, io.jgears.redis.RedisUser user, boolean shared,
                         List<String> requirements, boolean forceReinstall, io.jgears.requirements.SessionPolicy allow) {
            this(code, unblocking, id, description, upgrade, replaceWith, user, shared, requirements, forceReinstall, allow,
                    "none", List.of(), null, null);
        }

        /**
         * The same request on a cluster: {@code role} "coordinator" (the shard a client sent it to; the other
         * shards' replies will be {@code shardReplies}) or "shard" (one shard's part of a coordinator's run);
         * {@code runId} names the run on every shard (their repartition batches are addressed by it);
         * {@code ids}: the session's id and the ids of what the script creates, the same on every shard.
         */
        public PyExecute inCluster(String role, List<CompletableFuture<Object>> replies, String runId, ClusterRunIds ids) {
            return new PyExecute(code, unblocking, id, description, upgrade, replaceWith, user, shared, requirements,
                    forceReinstall, allow, role, replies, runId, ids);
        }

        /** A restored session's script: what it creates takes the ids it had (its stored block). */
        PyExecute withClusterIds(ClusterRunIds ids) {
            return new PyExecute(code, unblocking, id, description, upgrade, replaceWith, user, shared, requirements,
                    forceReinstall, allow, clusterRole, shardReplies, clusterRunId, ids);
        }

        /** The session's id: the client's ID, else (on a cluster) the one every shard uses, else null (a new one). */
        String sessionId() {
            return id != null ? id : clusterIds == null ? null : clusterIds.sessionId();
        }

        /** A session with requirements or more than the default sandbox needs a context of its own. */
        boolean needsOwnContext(io.jgears.requirements.SessionPolicy policy) {
            return !requirements.isEmpty() || !policy.isDefault();
        }
    }

    /** The policy of a session: its ALLOW, else PythonAllowNetwork (threads only when asked for and enabled). */
    io.jgears.requirements.SessionPolicy policyOf(PyExecute request) {
        if (request.allow() != null) {
            return request.allow();
        }
        return io.jgears.requirements.SessionPolicy.parseNetwork(config.get(GearsConfig.PYTHON_ALLOW_NETWORK), false);
    }

    public io.jgears.requirements.Requirements requirements() {
        return requirements;
    }

    public CompletableFuture<RedisMessage> pyExecute(PyExecute request) {
        if (!request.requirements().isEmpty() || request.forceReinstall()) {
            // pip runs on the requirement store's own thread, never on the client's event loop; the script
            // follows on an execution thread once its requirements are there.
            CompletableFuture<List<io.jgears.requirements.Requirements.Requirement>> installed;
            try {
                installed = requirements.ensure(request.requirements(), request.forceReinstall());
            } catch (io.jgears.requirements.Requirements.InstallException e) {
                return done(Replies.error(e.getMessage()));
            }
            return installed.handle((reqs, error) -> {
                if (error != null) {
                    Throwable cause = error instanceof java.util.concurrent.CompletionException && error.getCause() != null ? error.getCause() : error;
                    if (!(cause instanceof io.jgears.requirements.Requirements.InstallException)) {
                        log.error("installing requirements {} failed", request.requirements(), cause);
                    }
                    return done(Replies.error(cause instanceof io.jgears.requirements.Requirements.InstallException
                            ? cause.getMessage() : "Could not satisfy requirements (see jgears' log)"));
                }
                return CompletableFuture.supplyAsync(() -> runScript(request, false), executionThreads).thenCompose(r -> r);
            }).thenCompose(r -> r);
        }
        long limit = config.getLong(GearsConfig.INLINE_EXECUTION_MICROS) * 1000;
        // A one-off shared-mode script whose text ran short before runs right here, on the client's event
        // loop, when the shared context is free: no context to create, and no thread hand-offs.
        // Not on a cluster: a run there may wait for other shards' repartition records, which come in on
        // this server's event loops.
        InlineGate gate = limit > 0 && request.shared() && request.id() == null && !request.upgrade()
                && request.clusterRole().equals("none")
                && !request.needsOwnContext(policyOf(request))
                && request.replaceWith() == null ? sharedScriptGates.of(request.code()) : null;
        if (gate != null && gate.open()) {
            io.jgears.python.SubInterpreter shared = sessions.sharedIfOpen();
            CompletableFuture<RedisMessage> reply = shared == null ? null : inline(shared, () -> timedScript(request, gate, limit, true));
            if (reply != null) {
                return reply;
            }
        }
        return CompletableFuture.supplyAsync(() -> timedScript(request, gate, limit, false), executionThreads)
                .thenCompose(reply -> reply);
    }

    private CompletableFuture<RedisMessage> timedScript(PyExecute request, InlineGate gate, long limitNanos, boolean inline) {
        long start = System.nanoTime();
        CompletableFuture<RedisMessage> reply = runScript(request, false);
        if (gate != null) {
            inlineRan(gate, System.nanoTime() - start, limitNanos, inline);
        }
        return reply;
    }

    /** Calls run on a client's event loop (InlineGate), and how many times a slow one closed its gate. */
    private final java.util.concurrent.atomic.LongAdder inlineCalls = new java.util.concurrent.atomic.LongAdder();
    private final java.util.concurrent.atomic.LongAdder inlineGateClosings = new java.util.concurrent.atomic.LongAdder();

    void inlineRan(InlineGate gate, long nanos, long limitNanos, boolean inline) {
        if (gate.ran(nanos, limitNanos, inline)) {
            inlineGateClosings.increment();
        }
    }

    /**
     * Runs {@code call} on this thread (a client's event loop) when no other thread is inside or waiting
     * for {@code si}, counted in inlineCalls; null, without running it, when the context is busy.
     */
    <T> T inline(io.jgears.python.SubInterpreter si, Supplier<T> call) {
        if (!si.tryHold()) {
            return null;
        }
        inlineCalls.increment();
        try {
            return call.get();
        } finally {
            si.release();
            Thread.interrupted();  // an abort or a timeout may have interrupted this thread: not the event loop's
        }
    }

    public long inlineCalls() {
        return inlineCalls.sum();
    }

    public long inlineGateClosings() {
        return inlineGateClosings.sum();
    }

    /** InlineGates of recent shared-mode script texts, the least recently used dropped past 256. */
    private final ScriptGates sharedScriptGates = new ScriptGates();

    private static final class ScriptGates {
        private static final int MAX = 256;
        /**
         * Keyed by the text's hash and length, not the text (up to MaxScriptSize each). Two texts that
         * collide share a gate: that only moves where one of them runs, until a slow call closes it.
         */
        private final java.util.LinkedHashMap<Long, InlineGate> gates = new java.util.LinkedHashMap<>(64, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(java.util.Map.Entry<Long, InlineGate> eldest) {
                return size() > MAX;
            }
        };

        synchronized InlineGate of(String code) {
            long key = ((long) code.hashCode() << 32) | (code.length() & 0xffffffffL);
            return gates.computeIfAbsent(key, c -> new InlineGate());
        }
    }

    /**
     * Restores the sessions stored in Redis (those holding registrations or time events when jgears
     * stopped): each script runs again in a new sub-interpreter, where only register() and registerTE()
     * take effect. Returns how many came back.
     */
    public int restoreSessions() {
        int restored = 0;
        List<SessionStore.Stored> stored = store.loadAll();
        SessionsFile file = sessionsFile;
        if (stored.isEmpty() && file != null) {
            stored = file.read();
            if (!stored.isEmpty() && store.inRedis()) {
                log.warn("the state database has no stored sessions (flushed directly on Redis?): restoring {} from {}",
                        stored.size(), file.path());
            } else if (!stored.isEmpty()) {
                log.info("restoring {} stored sessions from {}", stored.size(), file.path());
            }
        }
        for (SessionStore.Stored s : stored) {
            RedisMessage reply;
            try {
                reply = loadStored(s, false);
            } catch (Exception e) {
                log.error("could not restore session {}", s.id(), e);
                continue;
            }
            if (reply instanceof io.netty.handler.codec.redis.ErrorRedisMessage error) {
                // Kept in Redis: a script that depends on something missing now may load next time.
                log.error("session {} failed to load on restore and stays stored: {}", s.id(), error.content());
            } else {
                restored++;
                log.info("restored session {} ({} registrations, {} time events)", s.id(),
                        sessions.get(s.id()) == null ? 0 : registrations.of(sessions.get(s.id())).size(),
                        sessions.get(s.id()) == null ? 0 : timeEvents.of(sessions.get(s.id())).size());
            }
        }
        return restored;
    }

    /** The stored sessions (those holding registrations or time events), oldest first: what a restart restores. */
    public List<SessionStore.Stored> storedSessions() {
        return sessions.all().stream()
                .filter(s -> s.persisted() && !s.isDead() && !s.isFreed())
                .sorted(java.util.Comparator.comparing(Session::created))
                .map(SessionStore::of).toList();
    }

    /**
     * Installs a copy of another jgears' stored session as a restart restores one (only register() and
     * registerTE() take effect, no run()), with the same id; {@code replace}: a session of that id exists
     * here and the copy upgrades it. Blocks until the script loaded; the error reply when it did not.
     */
    public RedisMessage installSessionCopy(SessionStore.Stored s, boolean replace) throws Exception {
        return loadStored(s, replace);
    }

    /**
     * Runs a stored session's script as a restart restores it (register() and registerTE() take effect, no
     * run()), its requirements installed first (on disk already, unless the store lost them); its
     * registrations keep the ids of their cluster block. Blocks until the script loaded.
     */
    private RedisMessage loadStored(SessionStore.Stored s, boolean replace) throws Exception {
        io.jgears.requirements.SessionPolicy allow;
        try {
            allow = io.jgears.requirements.SessionPolicy.parseNetwork(s.network(), s.threads());
        } catch (IllegalArgumentException e) {
            allow = io.jgears.requirements.SessionPolicy.DEFAULT;
        }
        ClusterRunIds ids = ClusterRunIds.parse(s.clusterIds(), s.id());
        if (ids != null && ids.prefix().equals(shardId())) {
            // Ids this node gives later come after the block (a restart, or an old master back as a replica).
            executions.advancePast(ids.base() + ClusterRunIds.BLOCK);
        }
        PyExecute request = new PyExecute(s.code(), false, s.id(), s.description(), replace, null,
                s.user() == null ? null : new io.jgears.redis.RedisUser(s.user(), null), s.shared(),
                s.requirements(), false, allow).withClusterIds(ids);
        if (!s.requirements().isEmpty()) {
            requirements.ensure(s.requirements(), false).get();
        }
        return CompletableFuture.supplyAsync(() -> runScript(request, true), executionThreads).thenCompose(r -> r).get();
    }

    /** Ends a session's registrations and time events (it is freed once nothing else holds it); false when there is none. */
    public boolean removeSession(String id) {
        Session s = sessions.get(id);
        if (s == null) {
            return false;
        }
        timeEvents.of(s).forEach(te -> unregisterTimeEvent(te, true));
        registrations.of(s).forEach(registrations::unregister);
        return true;
    }

    private volatile SessionsFile sessionsFile;
    /** Set when the stored sessions changed: the state check writes the file copy again. */
    private volatile boolean sessionsFileDirty;

    /**
     * Keeps a copy of the stored sessions in {@code file} (under --data), written within a second of a
     * change, and read at start-up when the state database is empty. {@code redisIdentity} names the
     * Redis the sessions belong to. Call before {@link #restoreSessions()}.
     */
    public void keepSessionsCopy(java.nio.file.Path file, String redisIdentity) {
        // Written at the first change only: a jgears started on another Redis leaves another's copy alone.
        sessionsFile = new SessionsFile(file, redisIdentity);
    }

    /**
     * Every second: the stored sessions are still in the state database (a FLUSHALL or FLUSHDB sent
     * directly to Redis empties it, and jgears does not see it; it writes them again, as it does after a
     * FLUSHALL through jgears), and the file copy is brought up to date.
     */
    private void checkStoredSessions() {
        if (closing) {
            return;
        }
        long live = sessions.all().stream().filter(s -> s.persisted() && !s.isDead() && !s.isFreed()).count();
        if (live > 0) {
            try {
                long inRedis = store.count();
                if (inRedis < live) {
                    log.warn("the state database holds {} of jgears' {} stored sessions (flushed directly on Redis?): storing them again",
                            inRedis, live);
                    storeSessionsAgain();
                }
            } catch (RuntimeException e) {
                log.debug("stored sessions check: {}", e.getMessage());  // Redis unreachable: the next check retries
            }
        }
        writeSessionsFile();
    }

    private void writeSessionsFile() {
        SessionsFile file = sessionsFile;
        if (file == null || !sessionsFileDirty) {
            return;
        }
        sessionsFileDirty = false;
        List<SessionStore.Stored> stored = sessions.all().stream()
                .filter(s -> s.persisted() && !s.isDead() && !s.isFreed())
                .sorted(java.util.Comparator.comparing(Session::created))
                .map(SessionStore::of).toList();
        try {
            file.write(stored);
        } catch (java.io.IOException | RuntimeException e) {
            sessionsFileDirty = true;
            log.warn("could not write the sessions copy {}: {}", file.path(), e.getMessage());
        }
    }

    /** Stores a session whose script loaded and that holds registrations or time events (it outlives the script). */
    void persist(Session session) {
        if (session.isFreed() || session.isDead()) {
            return;
        }
        if (registrations.of(session).isEmpty() && timeEvents.of(session).isEmpty()) {
            return;
        }
        try {
            store.save(session);
            session.persisted(true);
            sessionsFileDirty = true;
        } catch (RuntimeException e) {
            log.warn("could not store session {} in Redis (it will not be restored after a restart): {}",
                    session.id(), e.getMessage());
        }
    }

    /** After a FLUSHALL (which empties jgears' state database too): the live stored sessions are written again. */
    public void storeSessionsAgain() {
        int n = 0;
        for (Session s : sessions.all()) {
            if (s.persisted() && !s.isDead() && !s.isFreed()) {
                try {
                    synchronized (store) {
                        // Checked under the store's lock: a session freed meanwhile is not written back.
                        if (s.isFreed() || s.isDead() || !s.persisted()) {
                            continue;
                        }
                        store.save(s);
                    }
                    n++;
                } catch (RuntimeException e) {
                    log.warn("could not store session {} again after FLUSHALL: {}", s.id(), e.getMessage());
                }
            }
        }
        if (n > 0) {
            log.info("stored {} sessions again after a flush", n);
        }
    }

    private void sessionFreed(Session session) {
        // Freed because nothing holds it any more (not because jgears stops): it is not restored either,
        // unless a newer session owns its id now.
        if (session.persisted() && !closing && sessions.get(session.id()) == null) {
            sessionsFileDirty = true;
            try {
                store.delete(session.id());
            } catch (RuntimeException e) {
                log.warn("could not remove stored session {}: {}", session.id(), e.getMessage());
            }
        }
    }

    private CompletableFuture<RedisMessage> runScript(PyExecute request, boolean restoring) {
        Session replaced = null;
        if (request.replaceWith() != null || request.upgrade()) {
            String oldId = request.replaceWith() != null ? request.replaceWith() : request.id();
            replaced = oldId == null ? null : sessions.get(oldId);
            if (request.replaceWith() != null && request.id() != null && sessions.get(request.id()) != null) {
                return done(Replies.error("Can not replace an existing session " + request.id() + " with " + request.replaceWith()));
            }
            if (request.replaceWith() != null && replaced == null) {
                return done(Replies.error("Can not replace with " + request.replaceWith() + ", session does not exists."));
            }
        }
        Session session;
        try {
            io.jgears.requirements.SessionPolicy policy = policyOf(request);
            boolean own = request.needsOwnContext(policy);
            session = sessions.create(request.sessionId(), request.description(), request.upgrade() ? replaced : null,
                    request.shared() && !own, policy);
        } catch (IllegalStateException | IllegalArgumentException e) {
            return done(Replies.error(e.getMessage()));
        } catch (org.graalvm.polyglot.PolyglotException e) {
            log.error("could not create a Python context", e);
            return done(Replies.error("could not create a Python context for the session (see jgears' log)"));
        }
        if (!request.requirements().isEmpty()) {
            session.requirements(request.requirements(), requirements.importRoots(request.requirements()));
            try {
                session.enter(si -> si.call("_use_requirements"));
            } catch (RuntimeException e) {
                session.release(Session.Holder.SCRIPT);
                log.error("could not set up the requirements of session {}", session.id(), e);
                return done(Replies.error("could not set up the session's requirements (see jgears' log)"));
            }
        }
        session.code(request.code());
        session.user(request.user());
        session.clusterIds(request.clusterIds());
        session.replacing(replaced);
        ScriptRun run = new ScriptRun(request.unblocking(), restoring, request.clusterRole(), request.shardReplies(),
                request.clusterRunId(), request.clusterIds());
        HostApi host = (HostApi) session.interpreter().host();
        String error;
        try {
            error = callPython(session, GearsConfig.EXECUTION_TIMEOUT, () -> session.enter(si -> {
                host.beginRun(run);
                try {
                    return si.execScript(request.code(), session.isShared() ? session.key() : null);
                } finally {
                    host.endRun();
                }
            }));
        } catch (PythonCallFailed e) {
            error = e.getMessage();
        }
        if (error != null) {
            failureLog.warn("session {}: the script failed to load: {}", session.id(), FailureLog.summary(error));
            // What a failed script made goes with it: queued executions never run, its time events stop.
            for (Execution e : run.started()) {
                if (!e.isFinished()) {
                    e.abort(e.abortRequested() ? "Execution was aborted" : "the script failed to load");
                    // One RG.ABORTEXECUTION named stays stored (a cluster shard's part of an UNBLOCKING run)
                    // until RG.DROPEXECUTION names it too.
                    if (!e.isStored() || !e.abortRequested()) {
                        executions.release(e);
                    }
                }
            }
            run.heldFinished().forEach(executions::release);
            timeEvents.of(session).forEach(te -> unregisterTimeEvent(te, false));
            registrations.of(session).forEach(registrations::unregister);
            session.replacing(null);
            session.release(Session.Holder.SCRIPT);
            return done(Replies.error(error));
        }
        if (replaced != null) {
            takeOver(replaced, session);
        }
        session.replacing(null);
        registrations.activate(session);
        persist(session);
        boolean registered = !registrations.of(session).isEmpty();
        for (Execution e : run.heldFinished()) {
            if (registered) {
                e.keep();  // RedisGears keeps a run of a script that registered, until RG.DROPEXECUTION
            } else {
                executions.release(e);
            }
        }
        CompletableFuture<RedisMessage> reply = done(Replies.OK);
        if (request.unblocking()) {
            for (Execution e : run.started()) {
                submit(() -> runQueued(e));
            }
            if (!run.started().isEmpty()) {
                reply = done(Replies.bulk(run.started().getFirst().id()));
            }
        } else if (!run.started().isEmpty() && !registered) {
            // The last run() may be parked on a gearsFuture: the reply waits for it, the server does not.
            reply = run.started().getLast().done().thenApply(GearsEngine::resultsReply);
        }
        // A script that registered answers OK even when it also ran something, as on RedisGears (the run
        // goes on; its results are not sent).
        session.release(Session.Holder.SCRIPT);
        return reply;
    }

    /**
     * An upgrade loaded: the new session owns the id, the old one's time events (and registrations)
     * end, and it is freed when its last running execution ends.
     */
    private void takeOver(Session old, Session replacement) {
        sessions.promote(replacement);
        old.markDead();
        sessionsFileDirty = true;
        if (old.persisted() && !old.id().equals(replacement.id())) {
            try {
                store.delete(old.id());
            } catch (RuntimeException e) {
                log.warn("could not remove stored session {}: {}", old.id(), e.getMessage());
            }
        }
        old.persisted(false);
        for (TimeEvent te : timeEvents.of(old)) {
            unregisterTimeEvent(te, false);
        }
        for (Registration r : registrations.of(old)) {
            registrations.unregister(r);
        }
        log.info("session {} replaced by {}{}", old.id(), replacement.id(),
                old.isFreed() ? "" : " (still running: freed when its executions end)");
    }

    private static CompletableFuture<RedisMessage> done(RedisMessage m) {
        return CompletableFuture.completedFuture(m);
    }

    java.util.concurrent.Executor laneThreads() {
        return laneThreads;
    }

    /** Counts what {@code thread} allocates against the heap guard (a lane carrier's); run the result to stop. */
    Runnable trackThread(Session session, Thread thread) {
        MemoryGuard.Call tracked = memoryGuard.begin(session, thread);
        return () -> memoryGuard.end(tracked);
    }

    /** Counts what this thread allocates against the heap guard while it runs {@code call} in the session. */
    <T> T tracked(Session session, Supplier<T> call) {
        MemoryGuard.Call tracked = memoryGuard.begin(session);
        try {
            return call.get();
        } finally {
            memoryGuard.end(tracked);
        }
    }

    public void submit(Runnable task) {
        try {
            executionThreads.execute(task);
        } catch (RejectedExecutionException e) {
            log.debug("shutting down: task dropped");
        }
    }

    /** Runs an execution that run() queued (UNBLOCKING), on an execution thread. */
    void runQueued(Execution execution) {
        if (execution.abortRequested()) {
            execution.abort("Execution was aborted");
            return;
        }
        execution.running();
        enterExecution(execution, "_run_pending");
    }

    /** A gearsFuture or asyncio future that {@code executionId} waits on is done: continue it. */
    void resume(Session session, String executionId) {
        submit(() -> {
            Execution execution = executions.find(executionId);
            if (execution == null || execution.isFinished() || execution.session() != session) {
                return;
            }
            enterExecution(execution, "_resume");
        });
    }

    private void enterExecution(Execution execution, String function) {
        Session session = execution.session();
        try {
            callPython(session, execution.registration() != null ? GearsConfig.REGISTRATION_TIMEOUT : GearsConfig.EXECUTION_TIMEOUT,
                    () -> session.enter(si -> {
                // Marked only once inside: an abort must interrupt this execution, not another one of the session.
                execution.inPython(true);
                HostApi host = (HostApi) si.host();
                HostApi.HookCall outer = host.beginHook(execution.hook());
                try {
                    return si.call(function, execution.id());
                } finally {
                    host.endHook(outer);
                    execution.inPython(false);
                }
            }));
        } catch (PythonCallFailed e) {
            failed(execution, execution.abortRequested() ? "Execution was aborted" : e.getMessage());
        }
    }

    /** Ends an execution that will not finish by itself; a blocking one also drops its reference. */
    void failed(Execution execution, String why) {
        if (execution.isFinished()) {
            return;
        }
        execution.abort(why);
        if (!execution.isStored()) {
            executions.release(execution);
        }
        forgetInPython(execution);
    }

    /** Drops the Python side of a parked or queued execution that ended from outside. */
    private void forgetInPython(Execution execution) {
        if (!execution.session().isFreed()) {
            forgetInSession(execution.session(), "_drop", execution.id(), null);
        }
    }

    /**
     * Calls the runtime's {@code function(id)} in the session, on an execution thread, so that Python
     * forgets something jgears ended; then releases {@code holder}'s reference (if not null). The release
     * comes after the call: the session must not be freed while Python still holds the thing.
     */
    void forgetInSession(Session session, String function, String id, Session.Holder holder) {
        submit(() -> {
            try {
                session.enter(si -> si.call(function, id));
            } catch (RuntimeException e) {
                log.debug("could not run {}({}) in session {}: {}", function, id, session.id(), e.getMessage());
            } finally {
                if (holder != null) {
                    session.release(holder);
                }
            }
        });
    }

    void timer(Session session, long millis, long timerId) {
        timer.schedule(() -> submit(() -> {
            if (session.isFreed()) {
                return;
            }
            try {
                callPython(session, GearsConfig.EXECUTION_TIMEOUT, () -> session.enter(si -> si.call("_fire_timer", timerId)));
            } catch (PythonCallFailed e) {
                log.warn("asyncio timer in session {} failed: {}", session.id(), e.getMessage());
            }
        }), millis, TimeUnit.MILLISECONDS);
    }

    public static RedisMessage resultsReply(Execution execution) {
        List<RedisMessage> results = new ArrayList<>(execution.results().size());
        for (Object r : execution.results()) {
            results.add(Replies.record(r));
        }
        List<RedisMessage> errors = new ArrayList<>(execution.errors().size());
        for (String e : execution.errors()) {
            errors.add(Replies.bulk(e));
        }
        return Replies.array(List.of(Replies.array(results), Replies.array(errors)));
    }

    /** An abort request: a queued or parked execution ends at once, a running one is interrupted. */
    public String abort(Execution execution) {
        if (execution.isFinished()) {
            return "OK";
        }
        execution.requestAbort();
        if (execution.inPython()) {
            execution.session().interpreter().interrupt(Duration.ofSeconds(5));
        } else if (execution.status() == Execution.Status.RUNNING) {
            failed(execution, "Execution was aborted");
            interruptIfStillRunning(execution.session());
        } else {
            execution.abort("Execution was aborted");
        }
        return "OK";
    }

    /** How long an aborted execution of a batch has before its batch's call into Python is interrupted. */
    private static final long ABORT_GRACE_MILLIS = 500;

    /**
     * An aborted execution that runs in a batch (key events, stream entries): only the batch's whole call into
     * Python can be interrupted, so the execution ends at once for its callers while its Python goes on. If
     * the call that runs now is still running after a grace period (a looping handler never ends, and the
     * registration's later events wait behind it), it is interrupted: the batch's executions still in flight
     * end as aborted too.
     */
    private void interruptIfStillRunning(Session session) {
        io.jgears.python.SubInterpreter si = session.interpreter();
        long call = si.runningCall();
        if (call < 0) {
            return;
        }
        timer.schedule(() -> {
            if (si.runningCall() == call) {
                Thread.ofVirtual().name("jgears-abort").start(() -> si.interrupt(Duration.ofSeconds(5)));
            }
        }, ABORT_GRACE_MILLIS, TimeUnit.MILLISECONDS);
    }

    /** Drops a finished stored execution and its session reference. */
    public boolean drop(Execution execution) {
        return executions.release(execution);
    }

    // ------------------------------------------------------------------ time events

    TimeEvent registerTimeEvent(Session session, long intervalMillis, String description, boolean oneshot) {
        TimeEvent te = timeEvents.create(session, intervalMillis, description, oneshot);
        scheduleTimeEvent(te);
        return te;
    }

    /**
     * RedisGears' registerTE: with a key, the key is created holding the session's marker (null when the
     * key exists, unless it holds this session's marker and no live event owns it: a restored session
     * takes its event back). Period 0 fires as often as jgears can (every millisecond).
     */
    TimeEvent registerKeyedTimeEvent(Session session, long periodMillis, String key) {
        if (key != null) {
            byte[] k = key.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            byte[] marker = TimeEvent.marker(session).getBytes(java.nio.charset.StandardCharsets.UTF_8);
            Object set = redis.execute(List.of("SET".getBytes(), k, marker, "NX".getBytes()));
            if (set == null && !(ownsKey(key, session) && timeEvents.byKey(key) == null)) {
                return null;
            }
        }
        TimeEvent te = timeEvents.create(session, Math.max(1, periodMillis), null, false, key, true);
        scheduleTimeEvent(te);
        return te;
    }

    /** Whether {@code key} still holds the marker of this session's time event (not deleted or overwritten). */
    private boolean ownsKey(String key, Session session) {
        try {
            Object v = redis.execute(List.of("GET".getBytes(), key.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
            return v != null && TimeEvent.marker(session).equals(v instanceof byte[] b
                    ? new String(b, java.nio.charset.StandardCharsets.UTF_8) : String.valueOf(v));
        } catch (RuntimeException e) {
            return false;  // another type now (WRONGTYPE), or Redis unreachable: the event stops
        }
    }

    private void scheduleTimeEvent(TimeEvent te) {
        te.schedule(() -> timer.schedule(() -> submit(() -> fireTimeEvent(te)), te.intervalMillis(), TimeUnit.MILLISECONDS));
    }

    private void fireTimeEvent(TimeEvent te) {
        if (te.isCancelled()) {
            return;
        }
        if (!registrations.redisIsMaster()) {
            scheduleTimeEvent(te);  // a replica's jgears runs nothing: the event waits for a promotion
            return;
        }
        Session session = te.session();
        if (te.key() != null && !ownsKey(te.key(), session)) {
            unregisterTimeEvent(te, true);  // its key was deleted or overwritten: the event ends
            return;
        }
        long start = System.nanoTime();
        String error;
        try {
            error = callPython(session, GearsConfig.REGISTRATION_TIMEOUT, () -> session.enter(si -> {
                Value result = si.call("_fire_te", te.id(), te.oneshot());
                return result.isNull() ? null : result.asString();
            }));
        } catch (PythonCallFailed e) {
            error = e.getMessage();
        }
        if (error != null && te.isCancelled()) {
            return; // unregistered while this firing waited for the context: not a failure of the callback
        }
        te.recordRun((System.nanoTime() - start) / 1000, error);
        long failures = te.failures();
        if (error != null && (failures <= 3 || failures % 1000 == 0)) {
            // A callback that fails every few milliseconds must not flood the log: the count is in RG.DUMPTIMEEVENTS.
            failureLog.warn("time event {} of session {} failed ({} failures so far): {}", te.id(), session.id(), failures,
                    FailureLog.summary(error));
        }
        if (error != null && te.stopsOnError()) {
            log.warn("Error occured on TimeEvent_Callback, error={}", error);
            unregisterTimeEvent(te, true);
        } else if (te.oneshot()) {
            unregisterTimeEvent(te, false);
        } else {
            scheduleTimeEvent(te);
        }
    }

    /**
     * Ends a time event and releases its reference. With {@code forgetInPython} (RG.UNREGISTERTE) the
     * callback is dropped inside the session first; unregisterTE() from Python has already dropped it.
     */
    public boolean unregisterTimeEvent(TimeEvent te, boolean forgetInPython) {
        if (!te.cancel()) {
            return false;
        }
        timeEvents.remove(te);
        Session session = te.session();
        if (forgetInPython) {
            forgetInSession(session, "_forget_te", te.id(), Session.Holder.TIME_EVENT);
        } else {
            session.release(Session.Holder.TIME_EVENT);
        }
        return true;
    }

    // ------------------------------------------------------------------ calling Python

    static final class PythonCallFailed extends RuntimeException {
        PythonCallFailed(String message) {
            super(message, null, false, false);
        }
    }

    /**
     * What a reply says of a call that failed outside Python's own exceptions (those come back as
     * tracebacks): the message without the Java class name a host error puts in front of it.
     */
    static String failureText(PolyglotException e) {
        if (e.isExit()) {
            return "the script ended its interpreter (exit status " + e.getExitStatus() + ")";
        }
        return failureTextOf(e.getMessage());
    }

    // Public: the tests check the rewording on the messages GraalPy gives.
    public static String failureTextOf(String message) {
        String text = message == null ? "" : JAVA_CLASS_PREFIX.matcher(message).replaceFirst("").strip();
        return text.isEmpty() ? "internal error (see jgears' log)" : text;
    }

    /** {@code java.lang.SecurityException: }, {@code com.oracle...Library$UnsupportedFeature: }, or a bare class name. */
    private static final java.util.regex.Pattern JAVA_CLASS_PREFIX =
            java.util.regex.Pattern.compile("^(?:[a-z_][\\w]*\\.)+[A-Z][\\w$]*(?::|$)");

    /**
     * Calls into Python under the time limit named by {@code timeoutKey} (ExecutionTimeout or
     * RegistrationTimeout) and the heap guard; failures of the call become PythonCallFailed.
     */
    <T> T callPython(Session session, String timeoutKey, Supplier<T> call) {
        long timeout = config.getLong(timeoutKey);
        TimedCall timed = timeout <= 0 ? null : new TimedCall(session, timeoutKey, timeout * 1_000_000);
        if (timed != null) {
            timedCalls.add(timed);
        }
        MemoryGuard.Call tracked = memoryGuard.begin(session);
        try {
            return call.get();
        } catch (io.jgears.engine.Lanes.NotStarted e) {
            throw interrupted(session, timeoutKey, timeout, timed, tracked);
        } catch (PolyglotException e) {
            if (e.isInterrupted() || e.isCancelled()) {
                throw interrupted(session, timeoutKey, timeout, timed, tracked);
            }
            if (e.isResourceExhausted()) {
                throw new PythonCallFailed("Execution ran out of resources: " + e.getMessage());
            }
            if (e.isInternalError()) {
                log.warn("Python call failed in session {}", session.id(), e);  // jgears' bug: the stack helps
            } else {
                failureLog.warn("session {}: Python call failed: {}", session.id(), FailureLog.summary(e.getMessage()));
            }
            throw new PythonCallFailed("Execution failed: " + failureText(e));
        } catch (IllegalStateException e) {
            throw new PythonCallFailed("Execution failed: " + e.getMessage());
        } finally {
            memoryGuard.end(tracked);
            if (timed != null) {
                timedCalls.remove(timed);
            }
        }
    }

    /** The failure of a call that was interrupted: by the heap guard, its time limit, or an abort. */
    private PythonCallFailed interrupted(Session session, String timeoutKey, long timeout, TimedCall timed, MemoryGuard.Call tracked) {
        if (tracked.killed) {
            return new PythonCallFailed("Execution was interrupted: the heap passed MemoryWatermark ("
                    + config.get(GearsConfig.MEMORY_WATERMARK) + "% of " + (Runtime.getRuntime().maxMemory() >> 20)
                    + " MB) and this call had allocated the most (" + (tracked.allocated >> 20) + " MB)");
        }
        if (timed != null && timed.timedOut) {
            // A limit the user set fired: say so in the log too, the client may be long gone.
            failureLog.warn("session {}: a call ran longer than {} ({} ms) and was interrupted", session.id(), timeoutKey, timeout);
            return new PythonCallFailed("Execution timed out: it ran longer than " + timeoutKey + " (" + timeout
                    + " ms) and was interrupted");
        }
        return new PythonCallFailed("Execution was aborted");
    }

    @Override
    public void close() {
        closing = true;
        try {
            if (stateCheckLock.tryLock(5, TimeUnit.SECONDS)) {
                try {
                    writeSessionsFile();  // the last change, before the sessions are closed
                } finally {
                    stateCheckLock.unlock();
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        registrations.close();
        executionThreads.shutdownNow();
        laneThreads.shutdownNow();
        timer.shutdownNow();
        pool.close();
        sessions.close();
        store.close();
        requirements.close();
    }
}
