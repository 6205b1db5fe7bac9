package io.jgears.engine;

import io.jgears.redis.RedisBackend;
import io.jgears.redis.RedisCommandException;
import io.jgears.redis.RedisUser;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Where the lanes of a key registration's batch run, one {@code Lanes} per context: virtual threads
 * scheduled on one carrier thread of their own, and their {@code execute()} round trips pipelined.
 *
 * <p>Why: with a blocking {@code execute()} per event, throughput is the number of events in flight. On
 * platform threads every lane switch is an OS wake-up (5-15 us on this VM, and GraalPy's fair GIL makes
 * each host call one), so more than a few lanes cost more than they gain. Here a lane that calls
 * {@code execute()} queues its command and parks (GraalPy has already released the GIL around the host
 * call); the carrier runs the next lane, without the OS. When no lane can run, the carrier sends every
 * queued command in one write on the shared pipelined connection; Redis answers them in one go, and the
 * replies make their lanes runnable again. Each lane still sees its own reply before it goes on.
 */
public final class Lanes {
    private static final Logger log = LoggerFactory.getLogger(Lanes.class);
    /** Commands queued this long are sent even if the carrier has not (see {@link #run}). */
    private static final long WATCH_NANOS = 2_000_000;
    private static final java.util.concurrent.ScheduledExecutorService WATCH = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(
            r -> Thread.ofPlatform().name("jgears-lane-watch").daemon().unstarted(r));
    private static final long IDLE_SECONDS = 30;
    /** Builds virtual threads on a given scheduler (the JDK's builder has it, not public: null when not opened to us). */
    private static final java.lang.reflect.Constructor<?> VIRTUAL_BUILDER = virtualBuilder();

    private final String name;
    private final long stackSize;
    private final Carrier carrier = new Carrier();
    private final ThreadPoolExecutor workers;
    private final Pipe pipe;
    private final ThreadLocal<Boolean> isLane = new ThreadLocal<>();

    private Lanes(String name, RedisBackend redis, long stackSize) throws ReflectiveOperationException {
        this.name = name;
        this.stackSize = stackSize;
        this.pipe = new Pipe(redis);
        Thread.Builder.OfVirtual onCarrier = (Thread.Builder.OfVirtual) VIRTUAL_BUILDER.newInstance(carrier);
        ThreadFactory factory = onCarrier.name("jgears-lane-" + name + "-", 1).factory();
        // A lane of the last batch is reused (a thread's first entry into a context is costly), a new one made
        // only when all are busy. No upper bound here: a lane of the last batch may not be back in the pool
        // yet when the next batch starts (its result is delivered before its thread returns), and a bound of
        // 256 refused whole batches at KeyEventConcurrency 256; KeyEventConcurrency bounds the lanes of a batch.
        this.workers = new ThreadPoolExecutor(0, Integer.MAX_VALUE, IDLE_SECONDS, TimeUnit.SECONDS, new java.util.concurrent.SynchronousQueue<>(), factory);
    }

    /**
     * Whether lanes run on a carrier of their own here: the default where the JVM lets jgears build such
     * virtual threads (target/jvm.args opens java.lang); {@code -Djgears.carrierLanes=false} turns them off
     * (read for each new context), and key events then run on platform lanes.
     *
     * <p>Interrupts (RegistrationTimeout, RG.ABORTEXECUTION, the heap guard) reach them: Truffle's interrupt
     * reaches a virtual thread mounted on its carrier, and the lanes that have not started yet when it goes
     * out never start (see {@link #stopStarting}).
     */
    public static boolean available() {
        return VIRTUAL_BUILDER != null && !"false".equals(System.getProperty("jgears.carrierLanes"));
    }

    /**
     * New lanes for one context, or null when this JVM does not allow them (see {@link #available}).
     * {@code stackSize}: the carrier's, which is every lane's (a mounted virtual thread runs on its carrier's
     * stack), as deep as an execution thread's so that Python recursion reaches the same depth in a lane.
     */
    static Lanes create(String name, RedisBackend redis, long stackSize) {
        if (!available()) {
            return null;
        }
        try {
            return new Lanes(name, redis, stackSize);
        } catch (ReflectiveOperationException | RuntimeException e) {
            log.warn("lanes on a carrier thread are not available: {}", e.toString());
            return null;
        }
    }

    private static java.lang.reflect.Constructor<?> virtualBuilder() {
        try {
            Class<?> c = Class.forName("java.lang.ThreadBuilders$VirtualThreadBuilder");
            java.lang.reflect.Constructor<?> k = c.getDeclaredConstructor(Executor.class);
            k.setAccessible(true);
            return k;
        } catch (ReflectiveOperationException | RuntimeException e) {
            // Needs --add-opens java.base/java.lang=ALL-UNNAMED (target/jvm.args has it): else the old platform lanes.
            LoggerFactory.getLogger(Lanes.class).info("carrier lanes are not available, key event lanes run on platform threads ({}: {})",
                    e.getClass().getSimpleName(), e.getMessage());
            return null;
        }
    }

    /** The carrier's platform thread while it runs (for the heap guard: virtual threads' allocations count to it). */
    Thread carrierThread() {
        return carrier.thread;
    }

    /**
     * Runs the actions at once, each on a lane, and returns their results in order once all have ended;
     * the first failure is rethrown then. The caller holds the context (no one else enters meanwhile).
     */
    public <T> List<T> run(List<java.util.function.Supplier<T>> actions, java.util.function.Function<Thread, Runnable> whileRunning) {
        Run run = new Run();
        current = run;
        List<CompletableFuture<T>> futures = new ArrayList<>(actions.size());
        for (java.util.function.Supplier<T> action : actions) {
            futures.add(CompletableFuture.supplyAsync(() -> {
                // Checked on both sides of the count: once stopStarting() has returned, either this lane
                // is counted (the interrupter waits for it) or it does not start.
                if (run.stopped) {
                    throw new NotStarted();
                }
                run.active.incrementAndGet();
                isLane.set(Boolean.TRUE);
                try {
                    if (run.stopped) {
                        throw new NotStarted();
                    }
                    return action.get();
                } finally {
                    isLane.remove();
                    run.active.decrementAndGet();
                }
            }, workers));
        }
        // The carrier started with the first lane and stays until they have all ended (it idles for seconds first).
        Runnable untrack = carrier.thread == null ? () -> { } : whileRunning.apply(carrier.thread);
        // The carrier sends the lanes' commands whenever it runs out of lanes to run. Should a lane ever hold on
        // to it while waiting (a pinned virtual thread), this sends them anyway: slower, never stuck.
        java.util.concurrent.ScheduledFuture<?> watch = WATCH.scheduleWithFixedDelay(() -> pipe.flushOlderThan(WATCH_NANOS),
                WATCH_NANOS, WATCH_NANOS, TimeUnit.NANOSECONDS);
        try {
            return io.jgears.python.SubInterpreter.joinAll(futures, new ArrayList<>(futures.size()), null);
        } catch (NotStarted e) {
            // The interrupt's own failure, from a lane it stopped, tells the caller more (timeout, abort, memory).
            for (CompletableFuture<T> f : futures) {
                if (f.isCompletedExceptionally() && f.exceptionNow() instanceof RuntimeException other && !(other instanceof NotStarted)) {
                    throw other;
                }
            }
            throw e;
        } finally {
            current = null;
            watch.cancel(false);
            untrack.run();
        }
    }

    /** One batch's lanes: whether an interrupt has stopped them from starting, and how many run. */
    private static final class Run {
        volatile boolean stopped;
        final AtomicInteger active = new AtomicInteger();
    }

    private volatile Run current;

    /**
     * A lane that did not start: its context was interrupted before its turn came (the lanes of a batch take
     * turns on one carrier, and Truffle's interrupt reaches only the threads that have entered the context).
     */
    public static final class NotStarted extends RuntimeException {
        NotStarted() {
            super("the lane was interrupted before it started", null, false, false);
        }
    }

    /** An interrupt of the context is going out: the current batch's lanes that have not started never do. */
    void stopStarting() {
        Run run = current;
        if (run != null) {
            run.stopped = true;
        }
    }

    /** Whether a lane of the current batch is running (the interrupt goes out again until none is). */
    boolean anyRunning() {
        Run run = current;
        return run != null && run.active.get() > 0;
    }

    /** Whether this thread is one of these lanes (its execute() goes through {@link #call}). */
    boolean isLane() {
        return isLane.get() != null;
    }

    /** execute() of a plain command from a lane: queued, sent with the other lanes' commands, its reply awaited. */
    Object call(RedisUser user, List<byte[]> command) {
        return pipe.call(user, command);
    }

    /**
     * The carrier: one platform thread that runs the lanes' virtual threads in turn, started when there is
     * work and ending after a while without. Before it waits for work, everything the lanes queued goes out.
     */
    private final class Carrier implements Executor {
        private final LinkedBlockingQueue<Runnable> queue = new LinkedBlockingQueue<>();
        private final AtomicInteger state = new AtomicInteger();  // 0 stopped, 1 running
        volatile Thread thread;

        @Override
        public void execute(Runnable task) {
            queue.add(task);
            if (state.get() == 0 && state.compareAndSet(0, 1)) {
                thread = Thread.ofPlatform().name("jgears-carrier-" + name).daemon().stackSize(stackSize).start(this::loop);
            }
        }

        private void loop() {
            while (true) {
                Runnable task = queue.poll();
                if (task == null) {
                    pipe.flush();  // every lane that could run has run: their commands go out in one write
                    try {
                        task = queue.poll(IDLE_SECONDS, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        task = null;
                    }
                    if (task == null) {
                        state.set(0);
                        // A task added after the poll and before the state change would wait: take it back.
                        if (queue.isEmpty() || !state.compareAndSet(0, 1)) {
                            return;
                        }
                        continue;
                    }
                }
                try {
                    task.run();
                } catch (Throwable e) {
                    log.warn("lane carrier {}: {}", name, e.toString());
                }
            }
        }
    }

    /** The lanes' queued commands, sent together. */
    static final class Pipe {
        private final RedisBackend redis;
        private final java.util.concurrent.ConcurrentLinkedQueue<Queued> queued = new java.util.concurrent.ConcurrentLinkedQueue<>();
        /** When the oldest command still queued was queued (0: none). */
        private final java.util.concurrent.atomic.AtomicLong oldest = new java.util.concurrent.atomic.AtomicLong();

        record Queued(RedisUser user, List<byte[]> command, CompletableFuture<Object> reply) {
        }

        Pipe(RedisBackend redis) {
            this.redis = redis;
        }

        Object call(RedisUser user, List<byte[]> command) {
            Queued q = new Queued(user, command, new CompletableFuture<>());
            queued.add(q);
            oldest.compareAndSet(0, System.nanoTime());
            try {
                return q.reply.get();
            } catch (ExecutionException e) {
                if (e.getCause() instanceof RedisCommandException rce) {
                    throw rce;
                }
                throw new RedisCommandException("ERR jgears could not run the command on Redis: " + RedisBackend.rootMessage(e));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RedisCommandException("ERR execute() was interrupted");
            }
        }

        /** Sends what has waited longer than this (the carrier is busy, or a lane is pinned to it). */
        void flushOlderThan(long nanos) {
            long t = oldest.get();
            if (t != 0 && System.nanoTime() - t > nanos) {
                flush();
            }
        }

        void flush() {
            if (queued.isEmpty()) {
                return;
            }
            oldest.set(0);
            List<Queued> out = new ArrayList<>();
            for (Queued q; (q = queued.poll()) != null; ) {
                out.add(q);
            }
            int from = 0;
            while (from < out.size()) {
                // One write per user (a shared-mode context runs sessions of several users): almost always one.
                RedisUser user = out.get(from).user;
                int to = from;
                List<List<byte[]>> commands = new ArrayList<>();
                while (to < out.size() && Objects.equals(out.get(to).user, user)) {
                    commands.add(out.get(to).command);
                    to++;
                }
                List<CompletableFuture<Object>> sent = redis.dispatchAll(user, commands);
                for (int i = 0; i < sent.size(); i++) {
                    CompletableFuture<Object> reply = out.get(from + i).reply;
                    sent.get(i).whenComplete((v, error) -> {
                        if (error != null) {
                            reply.completeExceptionally(error instanceof java.util.concurrent.CompletionException
                                    && error.getCause() != null ? error.getCause() : error);
                        } else {
                            reply.complete(v);
                        }
                    });
                }
                from = to;
            }
        }
    }
}
