package io.jgears.python;

import org.graalvm.polyglot.Context;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Releases a GIL that GraalPy left held by a thread whose call into Python has ended.
 *
 * <p>Why: in GraalPy 25.0 a call from the host that has to wait for the GIL (another thread of the context
 * holds it) and is interrupted while it waits (Context.interrupt: RegistrationTimeout, RG.ABORTEXECUTION,
 * the heap guard) takes the GIL anyway before it throws, and nothing releases it: the host thread leaves the
 * context as the GIL's owner. The next thread that needs the GIL waits for good, and the context with it.
 * Reproduced outside jgears with four platform threads calling a looping function and one interrupt: from
 * the second context of an engine on (once the entry call site is cached), three of the four threads left
 * holding it, every time. jgears runs several threads in one context for key-event lanes, so a timeout of
 * a looping lane hung the registration's context.
 *
 * <p>The GIL is GraalPy's own lock object, reached by reflection once per context; where that fails (another
 * GraalPy version), nothing is released and a warning says so once.
 */
final class GilRelease {
    private static final Logger log = LoggerFactory.getLogger(GilRelease.class);
    private static final Method CONTEXT_GET;
    private static final Field LOCK;

    static {
        Method get = null;
        Field lock = null;
        try {
            Class<?> pythonContext = Class.forName("com.oracle.graal.python.runtime.PythonContext");
            get = pythonContext.getMethod("get", Class.forName("com.oracle.truffle.api.nodes.Node"));
            lock = pythonContext.getDeclaredField("globalInterpreterLock");
            lock.setAccessible(true);
        } catch (ReflectiveOperationException | RuntimeException e) {
            log.warn("this GraalPy version keeps its GIL where jgears does not look: a thread interrupted while it waited "
                    + "for the GIL may leave it held and its context stuck");
            log.debug("GraalPy's GIL: {}", e.toString());
            get = null;
            lock = null;
        }
        CONTEXT_GET = get;
        LOCK = lock;
    }

    private GilRelease() {
    }

    /** The GIL of a new context (not entered by any thread yet), or null where it cannot be reached. */
    static ReentrantLock of(Context context) {
        if (CONTEXT_GET == null) {
            return null;
        }
        context.enter();
        try {
            return LOCK.get(CONTEXT_GET.invoke(null, (Object) null)) instanceof ReentrantLock gil ? gil : null;
        } catch (ReflectiveOperationException | RuntimeException e) {
            log.debug("GraalPy's GIL: {}", e.toString());
            return null;
        } finally {
            context.leave();
        }
    }

    /** Call on a thread whose calls into Python have all returned: true when it still held the GIL. */
    static boolean ifHeld(ReentrantLock gil) {
        if (gil == null || !gil.isHeldByCurrentThread()) {
            return false;
        }
        while (gil.isHeldByCurrentThread()) {
            gil.unlock();
        }
        return true;
    }
}
