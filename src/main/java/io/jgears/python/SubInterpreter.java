package io.jgears.python;

import org.graalvm.polyglot.Context;
import org.graalvm.polyglot.PolyglotException;
import org.graalvm.polyglot.Source;
import org.graalvm.polyglot.Value;

import java.time.Duration;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;

/**
 * One Python sub-interpreter: a GraalPy context of its own (globals, sys.modules, builtins, classes),
 * entered by one thread at a time. Different sub-interpreters run in parallel on different threads.
 */
public final class SubInterpreter implements AutoCloseable {
    private final PythonRuntime runtime;
    private final Context context;
    private final Value module;
    private final Value execScript;
    private final java.util.concurrent.ConcurrentHashMap<String, Value> functions = new java.util.concurrent.ConcurrentHashMap<>();
    private final Object host;
    /** GraalPy's GIL of this context, null where it cannot be reached (see {@link GilRelease}). */
    private final ReentrantLock gil;
    private final ReentrantLock lock = new ReentrantLock();
    private volatile Thread inside;
    private volatile boolean closed;
    private volatile boolean preImported;

    SubInterpreter(PythonRuntime runtime, Context context, Value module, Object host, boolean preImported) {
        this.runtime = runtime;
        this.context = context;
        this.module = module;
        this.execScript = module.getMember("_exec_script");
        this.host = host;
        this.preImported = preImported;
        this.gil = GilRelease.of(context);
    }

    /** True once the configured pre-imports are in this context's sys.modules. */
    boolean preImported() {
        return preImported;
    }

    /** Imports the configured pre-imports into sys.modules (the pool does it for idle contexts not yet handed out). */
    void preImport() {
        enter(si -> module.getMember("_pre_import").execute((Object) runtime.preImports()));
        preImported = true;
    }

    /** The host object this context's runtime calls (its {@code polyglot.import_value('jgears')}). */
    public Object host() {
        return host;
    }

    /** Runs {@code action} inside the context, waiting while another thread is inside it. */
    public <T> T enter(Function<SubInterpreter, T> action) {
        lock.lock();
        try {
            if (closed) {
                throw new IllegalStateException("sub-interpreter is closed");
            }
            calls.incrementAndGet();  // every call: one taken with tryHold() enters here at depth 2
            inside = Thread.currentThread();
            return action.apply(this);
        } finally {
            if (lock.getHoldCount() == 1) {
                releaseGilIfHeld();  // outermost: no call into Python of this thread is still running
            }
            inside = null;
            lock.unlock();
        }
    }

    /**
     * Call on a thread none of whose calls into Python is still running, after calls that may have been
     * interrupted: releases the GIL if GraalPy left this thread holding it (see {@link GilRelease}).
     */
    public void releaseGilIfHeld() {
        if (GilRelease.ifHeld(gil)) {
            gilReleases.incrementAndGet();
            log.debug("released the GIL an interrupted call left held by {}", Thread.currentThread().getName());
        }
    }

    private final java.util.concurrent.atomic.AtomicLong calls = new java.util.concurrent.atomic.AtomicLong();

    /** The number of the latest call that entered this context while one runs, or -1 when none runs. */
    public long runningCall() {
        long n = calls.get();
        return inside != null ? n : -1;
    }

    /** How many times a GIL left held by an interrupted call was released (all contexts). */
    public static long gilReleases() {
        return gilReleases.get();
    }

    private static final java.util.concurrent.atomic.AtomicLong gilReleases = new java.util.concurrent.atomic.AtomicLong();
    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(SubInterpreter.class);

    /**
     * Takes the context for this thread if no other thread is inside it or waiting for it, without waiting
     * (for a caller that must not block, such as an event loop); enter() then re-enters at no cost. Pair
     * with {@link #release()}. Waiters go first: callers that only try would otherwise barge ahead of them
     * for as long as they keep coming.
     */
    public boolean tryHold() {
        if (closed || lock.hasQueuedThreads() || !lock.tryLock()) {
            return false;
        }
        if (closed) {
            lock.unlock();
            return false;
        }
        return true;
    }

    public void release() {
        if (lock.getHoldCount() == 1) {
            releaseGilIfHeld();  // as at the end of an outermost enter(): its calls ran at depth 2
        }
        lock.unlock();
    }

    /**
     * Runs the actions at once inside the context, the first on this thread and each other one on a thread
     * of {@code threads}, and returns their results in order once all have left. GraalPy releases its GIL
     * around calls to the host, so while one action waits on Redis in execute() another runs Python. No
     * other caller enters meanwhile. The first failure is rethrown after every action has ended.
     */
    public <T> java.util.List<T> enterParallel(java.util.List<Function<SubInterpreter, T>> actions,
                                              java.util.concurrent.Executor threads) {
        return enter(si -> {
            java.util.List<java.util.concurrent.CompletableFuture<T>> others = new java.util.ArrayList<>();
            for (int i = 1; i < actions.size(); i++) {
                Function<SubInterpreter, T> action = actions.get(i);
                others.add(java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                    try {
                        return action.apply(si);
                    } finally {
                        si.releaseGilIfHeld();
                    }
                }, threads));
            }
            RuntimeException failure = null;
            java.util.List<T> out = new java.util.ArrayList<>(actions.size());
            try {
                out.add(actions.getFirst().apply(si));
            } catch (RuntimeException e) {
                failure = e;
                out.add(null);
            } finally {
                si.releaseGilIfHeld();  // before waiting for the others: they may need it to end
            }
            return joinAll(others, out, failure);
        });
    }

    /**
     * Waits for every future and adds its result to {@code out} in order (null for a failed one), then
     * rethrows the first failure: {@code failure} when not null, else the first future's that failed.
     * Shared with io.jgears.engine.Lanes, whose lanes end the same way.
     */
    public static <T> java.util.List<T> joinAll(java.util.List<java.util.concurrent.CompletableFuture<T>> futures,
                                                java.util.List<T> out, RuntimeException failure) {
        for (java.util.concurrent.CompletableFuture<T> f : futures) {
            try {
                out.add(f.join());
            } catch (java.util.concurrent.CompletionException e) {
                out.add(null);
                if (failure == null) {
                    failure = e.getCause() instanceof RuntimeException re ? re : e;
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
        return out;
    }

    /** Runs a script in __main__; null when it loaded, else the RedisGears-style error text. Call inside enter(). */
    public String execScript(String code) {
        return execScript(code, null);
    }

    /**
     * Runs a script in the globals of {@code sessionKey} (shared mode: one dict per session in this
     * context), or in __main__ when null.
     */
    public String execScript(String code, String sessionKey) {
        // compile() inside the context goes through the Engine's source cache like a host-parsed Source
        // would; running from the host's parse is not possible here because a host-evaluated Source runs
        // in the context's first __main__, which is the runtime module's namespace (see PythonRuntime).
        Value error = execScript.execute(code, sessionKey);
        return error.isNull() ? null : error.asString();
    }

    /** Calls a function of the runtime module ({@code _run_pending}, {@code _resume}, ...). Call inside enter(). */
    public Value call(String function, Object... args) {
        return functions.computeIfAbsent(function, module::getMember).execute(args);
    }

    /**
     * Interrupts Python code running in this context (busy loops included); the running call ends with a
     * {@link PolyglotException} whose {@code isInterrupted()} is true. Returns false when nothing ran.
     */
    public boolean interrupt(Duration wait) {
        if (inside == null || closed) {
            return false;
        }
        ThreadsInside threads = host instanceof ThreadsInside t ? t : null;
        long deadline = System.nanoTime() + wait.toNanos();
        try {
            if (threads != null) {
                threads.stopStarting();
            }
            context.interrupt(wait);
            // A thread that was about to enter when the interrupt went out enters after it: interrupted again.
            while (threads != null && threads.anyRunning()) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                context.interrupt(Duration.ofNanos(Math.min(left, RE_INTERRUPT_NANOS)));
            }
            return true;
        } catch (TimeoutException e) {
            return false;
        }
    }

    private static final long RE_INTERRUPT_NANOS = 100_000_000;

    /**
     * A host object whose context runs calls on threads of its own while one thread is inside (the key-event
     * lanes of io.jgears.engine.Lanes): Truffle's interrupt reaches the threads entered in the context when it
     * goes out, not one that enters afterwards, such as a lane still waiting for its turn on a busy carrier.
     */
    public interface ThreadsInside {
        /** From now on until the current run ends, no new call starts: it fails as interrupted instead. */
        void stopStarting();

        /** Whether a call of the current run is still running. */
        boolean anyRunning();
    }

    public boolean isClosed() {
        return closed;
    }

    /** How long close() lets a thread inside finish its call before cancelling it. */
    private static final long CLOSE_WAIT_SECONDS = 2;

    /**
     * Closes the context and frees its memory. A thread inside gets a moment to leave; one that does not (a
     * step waiting in a loop for something that never comes, whose sleeps the shutdown's interrupts cut
     * short) is cancelled: without that, jgears never finished stopping on SIGTERM.
     */
    @Override
    public void close() {
        boolean locked = false;
        try {
            locked = lock.tryLock(CLOSE_WAIT_SECONDS, java.util.concurrent.TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            if (!markClosed()) {
                return;
            }
            context.close(true);  // cancels a thread still inside and waits for it to leave
            runtime.closed();
        } finally {
            if (locked) {
                lock.unlock();
            }
        }
    }

    /** True for the one call that closes it. */
    private synchronized boolean markClosed() {
        if (closed) {
            return false;
        }
        closed = true;
        return true;
    }
}
