package io.jgears.python;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * Keeps {@code size} ready sub-interpreters (runtime loaded, common modules imported) so that creating
 * one stays off the request path. A context handed out is never returned: each session gets a fresh one.
 * One background thread refills the pool; when it is empty the caller creates a context itself.
 */
public final class ContextPool implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ContextPool.class);

    private final PythonRuntime runtime;
    private final Supplier<Object> hostObjects;
    private final LinkedBlockingQueue<SubInterpreter> ready = new LinkedBlockingQueue<>();
    private final Object refill = new Object();
    private final Thread filler;
    private volatile int size;
    private volatile boolean closed;
    /** 1 while topUpOne imports into a context it took out of the queue: the pool still holds it. */
    private volatile int importing;

    public ContextPool(PythonRuntime runtime, Supplier<Object> hostObjects, int size) {
        this.runtime = runtime;
        this.hostObjects = hostObjects;
        this.size = Math.max(0, size);
        this.filler = Thread.ofPlatform().name("jgears-context-pool").daemon().stackSize(32L << 20).unstarted(this::fill);
        filler.start();
    }

    private void fill() {
        while (!closed) {
            try {
                if (ready.size() < size) {
                    // Every empty slot gets a bare context first (json alone costs ~340 ms of CPU); topUpOne adds
                    // the pre-imports once the pool is full: a ready context matters more than ready modules,
                    // at start-up (the pool is full sooner) and when sessions drain it.
                    SubInterpreter si = runtime.create(hostObjects, io.jgears.requirements.SessionPolicy.DEFAULT, false);
                    if (closed) {
                        si.close();
                        return;
                    }
                    ready.add(si);
                    continue;
                }
                if (topUpOne()) {
                    continue;
                }
                synchronized (refill) {
                    refill.wait(1000);
                }
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException e) {
                if (closed) {
                    return;
                }
                log.error("could not create a Python context for the pool", e);
                try {
                    Thread.sleep(1000);
                } catch (InterruptedException ie) {
                    return;
                }
            }
        }
    }

    /**
     * With the pool full and nobody waiting, imports the pre-imports into one ready context that lacks them
     * (created while the pool was being drained). The context leaves the queue meanwhile, so it is never
     * handed out half-imported. False when there was nothing to do.
     */
    private boolean topUpOne() {
        for (SubInterpreter si : ready) {
            if (!si.preImported() && ready.remove(si)) {
                importing = 1;
                try {
                    si.preImport();
                    if (closed) {
                        si.close();
                    } else {
                        ready.add(si);
                    }
                } catch (RuntimeException e) {
                    si.close();
                    if (!closed) {  // at shutdown, closing the pool cancels the import: nothing went wrong
                        log.warn("pre-imports failed in a pooled context; it was dropped: {}", e.getMessage());
                        log.debug("pre-imports failed", e);
                    }
                } finally {
                    importing = 0;
                }
                return true;
            }
        }
        return false;
    }

    /** A ready sub-interpreter: from the pool when one is there, else created on the calling thread. */
    public SubInterpreter take() {
        SubInterpreter si = ready.poll();
        synchronized (refill) {
            refill.notifyAll();
        }
        return si != null ? si : runtime.create(hostObjects);
    }

    /** A sub-interpreter for this policy: the pool's for the default sandbox, else one built for it. */
    public SubInterpreter take(io.jgears.requirements.SessionPolicy policy) {
        return policy.isDefault() ? take() : runtime.create(hostObjects, policy);
    }

    /** Waits until the pool holds {@code size} contexts (used at start-up and by tests). */
    public boolean awaitFull(long timeout, TimeUnit unit) throws InterruptedException {
        long deadline = System.nanoTime() + unit.toNanos(timeout);
        while (ready() < size) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.sleep(10);
        }
        return true;
    }

    /** Contexts the pool holds: the queue's, and the one taking its pre-imports (handed out right after). */
    public int ready() {
        return ready.size() + importing;
    }

    /** Ready contexts that already hold the pre-imports (the rest get them when the pool is idle). */
    public int readyWithPreImports() {
        int n = 0;
        for (SubInterpreter si : ready) {
            if (si.preImported()) {
                n++;
            }
        }
        return n;
    }

    public int size() {
        return size;
    }

    public void resize(int newSize) {
        size = Math.max(0, newSize);
        SubInterpreter extra;
        while (ready.size() > size && (extra = ready.poll()) != null) {
            extra.close();
        }
        synchronized (refill) {
            refill.notifyAll();
        }
    }

    @Override
    public void close() {
        closed = true;
        filler.interrupt();
        try {
            filler.join(1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        SubInterpreter si;
        while ((si = ready.poll()) != null) {
            si.close();
        }
    }
}
