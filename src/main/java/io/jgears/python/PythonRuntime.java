package io.jgears.python;

import io.jgears.requirements.SessionPolicy;
import org.graalvm.polyglot.Context;
import org.graalvm.polyglot.Engine;
import org.graalvm.polyglot.EnvironmentAccess;
import org.graalvm.polyglot.HostAccess;
import org.graalvm.polyglot.PolyglotAccess;
import org.graalvm.polyglot.Source;
import org.graalvm.polyglot.Value;
import org.graalvm.polyglot.io.IOAccess;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * The one GraalPy {@link Engine} every sub-interpreter shares (parsed code and JIT-compiled code are
 * shared through it), and the factory of sandboxed contexts over it.
 */
public final class PythonRuntime implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(PythonRuntime.class);
    /** Only methods jgears marks as exported are reachable from Python; arrays it returns are readable. */
    static final HostAccess HOST_ACCESS = HostAccess.newBuilder()
            .allowAccessAnnotatedBy(HostAccess.Export.class)
            .allowArrayAccess(true)
            .build();

    private final Engine engine;
    /**
     * The runtime as one cached Source: the engine parses it once, and the call targets it creates (and
     * their JIT-compiled code) are shared by every context instead of being rebuilt in each.
     */
    private final Source runtimeSource;
    private final String[] preImports;
    private final AtomicInteger live = new AtomicInteger();
    private final AtomicLong created = new AtomicLong();
    private final AtomicLong createNanos = new AtomicLong();
    private final AtomicLong createCpuNanos = new AtomicLong();
    private static final java.lang.management.ThreadMXBean THREADS = java.lang.management.ManagementFactory.getThreadMXBean();

    public PythonRuntime(java.util.List<String> preImports) {
        this.engine = Engine.newBuilder("python")
                .option("engine.WarnInterpreterOnly", "false")
                .in(InputStream.nullInputStream())
                .out(OutputStream.nullOutputStream())
                .err(OutputStream.nullOutputStream())
                .build();
        this.runtimeSource = Source.newBuilder("python", resource("gears_runtime.py"), "_jgears.py")
                .cached(true).buildLiteral();
        this.preImports = preImports.toArray(String[]::new);
        log.info("Python runtime: GraalPy {} on {} {} ({}), JIT {}", engine.getVersion(),
                System.getProperty("java.vm.name"), System.getProperty("java.version"), engine.getImplementationName(),
                jitEnabled() ? "on (Graal compiler via JVMCI)" : "OFF: interpreter only, start with the jgears launcher flags");
    }

    /** True when Truffle runs with the optimizing Graal compiler, not interpreter-only. */
    public boolean jitEnabled() {
        return !engine.getImplementationName().toLowerCase().contains("interpreted");
    }

    public String implementationName() {
        return engine.getImplementationName();
    }

    /**
     * A new sandboxed sub-interpreter with the GearsBuilder runtime loaded. The sandbox: no host files,
     * no processes, no native code, no environment, no threads, no host classes; only the host object
     * given here is reachable (as {@code polyglot.import_value('jgears')}).
     */
    public SubInterpreter create(Supplier<Object> hostObject) {
        return create(hostObject, SessionPolicy.DEFAULT, false);
    }

    /**
     * A sub-interpreter for a session's capability policy: host sockets when it allows network (the
     * file system stays closed either way), threads when it allows them. What the policy refuses raises
     * PermissionError in Python (see _apply_policy in the runtime).
     */
    public SubInterpreter create(Supplier<Object> hostObject, SessionPolicy policy) {
        return create(hostObject, policy, false);
    }

    /**
     * As {@link #create(Supplier, SessionPolicy)}, importing the configured pre-imports when {@code withPreImports}
     * (the pool does so when it is idle; a context created on a caller's path skips them: a script pays
     * only for the modules it imports).
     */
    public SubInterpreter create(Supplier<Object> hostObject, SessionPolicy policy, boolean withPreImports) {
        long start = System.nanoTime();
        long cpuStart = THREADS.getCurrentThreadCpuTime();
        Object host = hostObject.get();
        Context context = Context.newBuilder("python")
                .engine(engine)
                .allowIO(policy.socketAccess() ? IOAccess.newBuilder().allowHostSocketAccess(true).build() : IOAccess.NONE)
                .allowCreateProcess(false)
                .allowCreateThread(policy.threads())
                .allowNativeAccess(false)
                .allowEnvironmentAccess(EnvironmentAccess.NONE)
                .allowHostClassLookup(name -> false)
                .allowHostAccess(HOST_ACCESS)
                .allowPolyglotAccess(PolyglotAccess.newBuilder().allowBindingsAccess("python").build())
                // Streams of its own: os.close(0/1/2) in one context closes only these (with the engine's or
                // the JVM's streams it would close jgears' stdin, or every other context's stdout).
                .in(InputStream.nullInputStream())
                .out(OutputStream.nullOutputStream())
                .err(OutputStream.nullOutputStream())
                .option("python.PosixModuleBackend", "java")
                .option("python.DontWriteBytecodeFlag", "true")
                // No site.py: it only adds site-packages paths, which the sandbox cannot read anyway.
                .option("python.NoSiteFlag", "true")
                .build();
        try {
            context.getPolyglotBindings().putMember("jgears", host);
            context.eval(runtimeSource);
            Value module = context.getBindings("python").getMember("_become_module")
                    .execute(policy.network(), String.join(",", policy.allowed()), policy.threads(),
                            withPreImports ? preImports : new String[0]);
            SubInterpreter si = new SubInterpreter(this, context, module, host, withPreImports || preImports.length == 0);
            live.incrementAndGet();
            created.incrementAndGet();
            createNanos.addAndGet(System.nanoTime() - start);
            createCpuNanos.addAndGet(THREADS.getCurrentThreadCpuTime() - cpuStart);
            return si;
        } catch (RuntimeException e) {
            context.close(true);
            throw e;
        }
    }

    /** The modules every pool context imports when idle (GearsConfig PreImports). */
    String[] preImports() {
        return preImports;
    }

    void closed() {
        live.decrementAndGet();
    }

    /** Contexts created and not yet closed, pooled ones included. */
    public int liveContexts() {
        return live.get();
    }

    public long createdContexts() {
        return created.get();
    }

    public double averageCreateMillis() {
        long n = created.get();
        return n == 0 ? 0 : createNanos.get() / 1e6 / n;
    }

    /**
     * CPU time of the creating thread per context, in ms (wall time under load mostly measures waiting for a
     * core; this is what a context costs). The JIT's compiler threads are not counted.
     */
    public double averageCreateCpuMillis() {
        long n = created.get();
        return n == 0 ? 0 : createCpuNanos.get() / 1e6 / n;
    }

    private static String resource(String name) {
        try (InputStream in = PythonRuntime.class.getResourceAsStream(name)) {
            if (in == null) {
                throw new IllegalStateException("missing resource " + name);
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void close() {
        engine.close(true);
    }
}
