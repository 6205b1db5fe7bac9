package io.jgears.gears;

import io.jgears.python.ContextPool;
import io.jgears.python.PythonRuntime;
import io.jgears.redis.RedisBackend;
import io.jgears.server.Replies;
import io.netty.handler.codec.redis.RedisMessage;
import org.graalvm.polyglot.PolyglotException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * Runs Python for RG.PYEXECUTE and its executions: sessions on sub-interpreters from the warm pool,
 * scripts and executions on a bounded pool of {@code ExecutionThreads} threads (different sessions in
 * parallel), each call into Python guarded by the ExecutionTimeout watchdog.
 */
public final class GearsEngine implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(GearsEngine.class);
    /** Python frames are deep on the JVM stack while code is still interpreted; leave RecursionError room. */
    private static final long PYTHON_THREAD_STACK = 16L << 20;

    private final GearsConfig config;
    private final RedisBackend redis;
    private final PythonRuntime python;
    private final ContextPool pool;
    private final Sessions sessions;
    private final Executions executions;
    private final ThreadPoolExecutor executionThreads;
    private final ScheduledExecutorService watchdog;

    public GearsEngine(GearsConfig config, RedisBackend redis, PythonRuntime python) {
        this.config = config;
        this.redis = redis;
        this.python = python;
        this.pool = new ContextPool(python, () -> new HostApi(this), (int) config.getLong(GearsConfig.POOL_SIZE));
        this.sessions = new Sessions(pool);
        this.executions = new Executions(config);
        int threads = (int) Math.max(1, config.getLong(GearsConfig.EXECUTION_THREADS));
        AtomicInteger n = new AtomicInteger();
        this.executionThreads = new ThreadPoolExecutor(threads, threads, 0, TimeUnit.MILLISECONDS,
                new LinkedBlockingQueue<>(),
                r -> Thread.ofPlatform().name("jgears-exec-" + n.incrementAndGet()).daemon()
                        .stackSize(PYTHON_THREAD_STACK).unstarted(r));
        this.watchdog = Executors.newSingleThreadScheduledExecutor(
                r -> Thread.ofPlatform().name("jgears-watchdog").daemon().unstarted(r));
    }

    public GearsConfig config() {
        return config;
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

    public int executionThreads() {
        return executionThreads.getMaximumPoolSize();
    }

    /** A parsed RG.PYEXECUTE. */
    public record PyExecute(String code, boolean unblocking, String id, String description,
                            boolean upgrade, String replaceWith) {
    }

    public CompletableFuture<RedisMessage> pyExecute(PyExecute request) {
        return CompletableFuture.supplyAsync(() -> runScript(request), executionThreads);
    }

    private RedisMessage runScript(PyExecute request) {
        Session replaced = null;
        if (request.replaceWith() != null || request.upgrade()) {
            String oldId = request.replaceWith() != null ? request.replaceWith() : request.id();
            replaced = oldId == null ? null : sessions.get(oldId);
            if (request.replaceWith() != null && replaced == null) {
                return Replies.error("Session " + request.replaceWith() + " does not exist");
            }
        }
        Session session;
        try {
            session = sessions.create(request.id(), request.description(), request.upgrade() ? replaced : null);
        } catch (IllegalStateException e) {
            return Replies.error(e.getMessage());
        }
        ScriptRun run = new ScriptRun(request.unblocking());
        HostApi host = (HostApi) session.interpreter().host();
        String error;
        try {
            error = callPython(session, () -> session.interpreter().enter(si -> {
                host.beginRun(run);
                try {
                    return si.execScript(request.code());
                } finally {
                    host.endRun();
                }
            }));
        } catch (PythonCallFailed e) {
            error = e.getMessage();
        }
        if (error != null) {
            // Executions a failed script queued never run; blocking ones already released themselves.
            for (Execution e : run.started()) {
                if (!e.isFinished()) {
                    e.abort("the script failed to load");
                    executions.release(e);
                }
            }
            session.release(Session.Holder.SCRIPT);
            return Replies.error(error);
        }
        if (replaced != null) {
            sessions.promote(session);
            replaced.markDead();
        }
        RedisMessage reply = Replies.OK;
        if (request.unblocking()) {
            for (Execution e : run.started()) {
                executionThreads.execute(() -> runQueued(e));
            }
            if (!run.started().isEmpty()) {
                reply = Replies.bulk(run.started().getFirst().id());
            }
        } else if (!run.started().isEmpty()) {
            reply = resultsReply(run.started().getLast());
        }
        session.release(Session.Holder.SCRIPT);
        return reply;
    }

    /** Runs an execution run() queued under UNBLOCKING, on an execution thread. */
    private void runQueued(Execution execution) {
        Session session = execution.session();
        if (execution.abortRequested()) {
            execution.abort("Execution was aborted");
            return;
        }
        execution.running();
        try {
            callPython(session, () -> session.interpreter().enter(si -> {
                si.runPending(execution.id());
                return null;
            }));
        } catch (PythonCallFailed e) {
            execution.abort(execution.abortRequested() ? "Execution was aborted" : e.getMessage());
        }
        if (!execution.isFinished()) {
            execution.abort("Execution ended without a result");
        }
    }

    public static RedisMessage resultsReply(Execution execution) {
        List<RedisMessage> results = new ArrayList<>(execution.results().size());
        for (Object r : execution.results()) {
            results.add(Replies.of(r));
        }
        List<RedisMessage> errors = new ArrayList<>(execution.errors().size());
        for (String e : execution.errors()) {
            errors.add(Replies.bulk(e));
        }
        return Replies.array(List.of(Replies.array(results), Replies.array(errors)));
    }

    /** An abort request: queued executions never start, a running one is interrupted. */
    public String abort(Execution execution) {
        if (execution.isFinished()) {
            return "OK";
        }
        execution.requestAbort();
        if (execution.status() == Execution.Status.RUNNING) {
            execution.session().interpreter().interrupt(Duration.ofSeconds(5));
        } else {
            execution.abort("Execution was aborted");
        }
        return "OK";
    }

    /** Drops a finished stored execution and its session reference. */
    public boolean drop(Execution execution) {
        return executions.release(execution);
    }

    private static final class PythonCallFailed extends RuntimeException {
        PythonCallFailed(String message) {
            super(message, null, false, false);
        }
    }

    /** Calls into Python with the ExecutionTimeout watchdog; failures of the call become PythonCallFailed. */
    private <T> T callPython(Session session, Supplier<T> call) {
        long timeout = config.getLong(GearsConfig.EXECUTION_TIMEOUT);
        boolean[] timedOut = new boolean[1];
        ScheduledFuture<?> guard = timeout <= 0 ? null : watchdog.schedule(() -> {
            timedOut[0] = true;
            session.interpreter().interrupt(Duration.ofSeconds(5));
        }, timeout, TimeUnit.MILLISECONDS);
        try {
            return call.get();
        } catch (PolyglotException e) {
            if (e.isInterrupted() || e.isCancelled()) {
                throw new PythonCallFailed(timedOut[0]
                        ? "Execution timed out: it ran longer than ExecutionTimeout (" + timeout + " ms) and was interrupted"
                        : "Execution was aborted");
            }
            if (e.isResourceExhausted()) {
                throw new PythonCallFailed("Execution ran out of resources: " + e.getMessage());
            }
            log.warn("Python call failed in session {}", session.id(), e);
            throw new PythonCallFailed("Execution failed: " + e.getMessage());
        } catch (IllegalStateException e) {
            throw new PythonCallFailed("Execution failed: " + e.getMessage());
        } finally {
            if (guard != null) {
                guard.cancel(false);
            }
        }
    }

    @Override
    public void close() {
        executionThreads.shutdownNow();
        watchdog.shutdownNow();
        pool.close();
        sessions.close();
    }
}
