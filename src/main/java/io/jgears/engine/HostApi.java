package io.jgears.engine;

import io.jgears.gears.ClusterRunIds;
import io.jgears.gears.Execution;
import io.jgears.gears.GearsConfig;
import io.jgears.gears.GearsEngine;
import io.jgears.gears.Registration;
import io.jgears.gears.Session;
import io.jgears.gears.ShardFanOut;
import io.jgears.gears.TimeEvent;
import io.jgears.redis.GenericOutput;
import io.jgears.readers.KeyBatches;
import io.jgears.redis.RedisBackend;
import io.jgears.redis.RedisCommandException;
import io.jgears.redis.RedisError;
import io.lettuce.core.api.StatefulRedisConnection;
import org.graalvm.polyglot.HostAccess;
import org.graalvm.polyglot.Value;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * The host functions one sub-interpreter's Python runtime may call: the whole surface Python can reach
 * in the sandbox. One instance per context; it is bound to its session when the pool hands it out, and
 * only ever called by the thread inside that context.
 *
 * <p>Its public methods without {@code @HostAccess.Export} are for the library (io.jgears.gears), which binds
 * it to sessions, script loads and command hooks; Python reaches only the exported ones.
 */
public final class HostApi implements io.jgears.python.SubInterpreter.ThreadsInside {
    private static final Logger pythonLog = LoggerFactory.getLogger("jgears.python");

    private final GearsEngine.LibraryCalls engine;
    private Session session;
    private ScriptRun run;
    /**
     * Open atomic() blocks by thread: several threads may be inside this context at once (a key
     * registration's events run in parallel), and each block's MULTI is its own.
     */
    private final java.util.concurrent.ConcurrentHashMap<Thread, AtomicBlock> atomics = new java.util.concurrent.ConcurrentHashMap<>();

    /** One open atomic() block: its dedicated connection (inside MULTI) and how deeply it is nested. */
    private static final class AtomicBlock {
        final StatefulRedisConnection<byte[], byte[]> connection;
        int depth = 1;

        AtomicBlock(StatefulRedisConnection<byte[], byte[]> connection) {
            this.connection = connection;
        }
    }
    /** The command hook whose execution runs now (call_next, override_reply), or null. */
    private HookCall hook;

    /**
     * One hooked command. A CommandReader hook may call_next() (the next hook of its chain, else the command
     * itself); a KeysReader commands=[...] hook may override_reply() once, for every execution it fired.
     */
    public static final class HookCall {
        /** The command call_next() runs (as the hook registered it), or null: no call_next here. */
        private final String command;
        /** The next hook of the chain for these arguments, run: [ok, value]; null when none (Redis runs it). */
        private final java.util.function.Function<List<byte[]>, Object[]> next;
        private final boolean overridable;
        /** The client's command that fired a KeysReader commands= hook (get_command()), or null. */
        private final List<byte[]> fired;
        private boolean overridden;
        private Object override;

        private HookCall(String command, java.util.function.Function<List<byte[]>, Object[]> next, boolean overridable,
                         List<byte[]> fired) {
            this.command = command;
            this.next = next;
            this.overridable = overridable;
            this.fired = fired;
        }

        public static HookCall chained(String command, java.util.function.Function<List<byte[]>, Object[]> next) {
            return new HookCall(command, next, false, null);
        }

        /** A KeysReader commands= hook of the client's command {@code fired}: it may override the reply. */
        public static HookCall overriding(List<byte[]> fired) {
            return new HookCall(null, null, true, List.copyOf(fired));
        }

        public List<byte[]> fired() {
            return fired;
        }

        public synchronized boolean overridden() {
            return overridden;
        }

        public synchronized Object override() {
            return override;
        }

        /** The first override wins, as on RedisGears. */
        synchronized boolean setOverride(Object value) {
            if (overridden) {
                return false;
            }
            override = value;
            overridden = true;
            return true;
        }
    }

    /** Starts a hook's call into Python; returns the hook it replaces (a nested call), for {@link #endHook}. */
    public HookCall beginHook(HookCall call) {
        HookCall outer = this.hook;
        this.hook = call;
        return outer;
    }

    public void endHook(HookCall outer) {
        this.hook = outer;
    }

    /** A sync trigger run where blocking is not allowed (MULTI): its steps may not wait. */
    private boolean noAsync;

    public void noAsync(boolean noAsync) {
        this.noAsync = noAsync;
    }

    public boolean noAsync() {
        return noAsync;
    }

    public HostApi(GearsEngine.LibraryCalls engine) {
        this.engine = engine;
    }

    /** This context's key-event lanes (see {@link Lanes}), made on first use; null where they are not available. */
    private volatile Lanes lanes;
    private static final java.util.concurrent.atomic.AtomicInteger LANE_GROUPS = new java.util.concurrent.atomic.AtomicInteger();

    public Lanes lanes() {
        Lanes l = lanes;
        if (l == null && Lanes.available()) {
            synchronized (this) {
                l = lanes;
                if (l == null) {
                    l = lanes = Lanes.create(String.valueOf(LANE_GROUPS.incrementAndGet()), engine.redis(), GearsConfig.PYTHON_THREAD_STACK);
                }
            }
        }
        return l;
    }

    @Override
    public void stopStarting() {
        Lanes l = lanes;
        if (l != null) {
            l.stopStarting();
        }
    }

    @Override
    public boolean anyRunning() {
        Lanes l = lanes;
        return l != null && l.anyRunning();
    }

    public void bind(Session session) {
        this.session = session;
    }

    /** While a script loads, run() calls are tied to its RG.PYEXECUTE invocation. */
    public void beginRun(ScriptRun run) {
        this.run = run;
    }

    public void endRun() {
        if (run != null) {
            run.started().forEach(e -> e.inPython(false));  // one parked on a future resumes in a call of its own
        }
        this.run = null;
        // A script that left an atomic() block open does not leave the transaction behind.
        closeAtomic();
    }

    // ------------------------------------------------------------------ Redis

    /**
     * Commands that would change the state of the connection every session shares (its database, a
     * transaction, a subscription), so execute() refuses them; atomic() is the way to a transaction.
     */
    private static final Set<String> CONNECTION_STATE = Set.of("SELECT", "MULTI", "EXEC", "DISCARD", "WATCH",
            "UNWATCH", "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE",
            "MONITOR", "QUIT", "RESET", "HELLO", "AUTH", "CLIENT");
    /** Commands that may block their connection; they get a connection of their own. */
    private static final Set<String> BLOCKING = Set.of("BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP",
            "BZPOPMIN", "BZPOPMAX", "BZMPOP", "XREAD", "XREADGROUP", "WAIT", "WAITAOF");

    /**
     * execute() with plain string arguments, as Java strings: the common case, with no foreign array to
     * read. Returns a scalar reply as it is, else [ok, value] (see {@link #run}).
     */
    @HostAccess.Export
    public Object executeArgs(String... args) {
        List<byte[]> command = new ArrayList<>(args.length);
        for (String a : args) {
            command.add(a.getBytes(StandardCharsets.UTF_8));
        }
        return run(command);
    }

    /** execute() with arguments that include bytes. */
    @HostAccess.Export
    public Object execute(Value args) {
        int n = (int) args.getArraySize();
        List<byte[]> command = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            command.add(bytesOf(args.getArrayElement(i)));
        }
        return run(command);
    }

    /**
     * Runs a command for execute(): a successful scalar reply (string, integer, double, nil) is returned
     * as it is; an array reply as [true, array]; an error as [false, message].
     */
    private Object run(List<byte[]> command) {
        if (command.isEmpty()) {
            return new Object[]{Boolean.FALSE, "ERR execute() needs a command"};
        }
        String name = new String(command.getFirst(), StandardCharsets.UTF_8).toUpperCase(Locale.ROOT);
        if (name.startsWith("RG.")) {
            return gearsCommand(name, command);
        }
        io.jgears.redis.RedisUser user = session.user();
        try {
            String refused = refusal(name, command, "execute()");
            if (refused != null) {
                return new Object[]{Boolean.FALSE, refused};
            }
            Object[] hooked = engine.registrations().hookExecute(command);
            if (hooked != null) {
                return hooked;  // a CommandReader hook answered it, as on RedisGears
            }
            engine.registrations().beforeExecute(command);
            Object reply;
            AtomicBlock atomic = atomics.isEmpty() ? null : atomics.get(Thread.currentThread());
            if (atomic != null) {
                reply = RedisBackend.dispatch(atomic.connection, command, true);
            } else if (BLOCKING.contains(name)) {
                try (StatefulRedisConnection<byte[], byte[]> own = engine.redis().connectDedicated(user)) {
                    reply = RedisBackend.dispatch(own, command, true);
                }
            } else if (lanes != null && lanes.isLane()) {
                reply = lanes.call(user, command);  // pipelined with the other lanes' commands (see Lanes)
            } else {
                reply = engine.redis().executeBlocking(user, command, true);
            }
            Object value = GenericOutput.toHost(reply);
            // Arrays, and strings that are not UTF-8 (a bytearray in Python), go through the runtime's _to_py.
            return value instanceof Object[] || value instanceof io.jgears.redis.BinaryString
                    ? new Object[]{Boolean.TRUE, value} : value;
        } catch (RedisCommandException e) {
            return new Object[]{Boolean.FALSE, e.getMessage()};
        } catch (RuntimeException e) {
            return new Object[]{Boolean.FALSE, "ERR jgears could not reach Redis: " + e.getMessage()};
        }
    }

    /**
     * execute('RG.…'): jgears' own commands, as RedisGears answers them to a module call, where blocking is
     * not allowed: RG.PYEXECUTE is refused, and so is any command that would wait for an execution.
     */
    private Object gearsCommand(String name, List<byte[]> command) {
        GearsEngine.ModuleCalls commands = engine.commands();
        if (commands == null) {
            return new Object[]{Boolean.FALSE, "ERR unknown command '" + name + "'"};
        }
        java.util.concurrent.CompletableFuture<io.netty.handler.codec.redis.RedisMessage> reply = commands.executeNonBlocking(command);
        try {
            return fromReply(reply.get(engine.config().getLong(GearsConfig.EXECUTION_TIMEOUT) + 1000,
                    java.util.concurrent.TimeUnit.MILLISECONDS));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Object[]{Boolean.FALSE, "Execution was aborted"};
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            return new Object[]{Boolean.FALSE, "ERR " + RedisBackend.rootMessage(e)};
        }
    }

    /** A reply of jgears' own commands as execute() returns it (see {@link #run}). */
    private static Object fromReply(io.netty.handler.codec.redis.RedisMessage m) {
        if (m instanceof io.netty.handler.codec.redis.ErrorRedisMessage e) {
            return new Object[]{Boolean.FALSE, e.content()};
        }
        Object value = replyValue(m);
        return value instanceof Object[] ? new Object[]{Boolean.TRUE, value} : value;
    }

    private static Object replyValue(io.netty.handler.codec.redis.RedisMessage m) {
        if (m instanceof io.netty.handler.codec.redis.SimpleStringRedisMessage s) {
            return s.content();
        }
        if (m instanceof io.netty.handler.codec.redis.ErrorRedisMessage e) {
            return e.content();
        }
        if (m instanceof io.netty.handler.codec.redis.IntegerRedisMessage i) {
            return i.value();
        }
        if (m instanceof io.netty.handler.codec.redis.FullBulkStringRedisMessage b) {
            return b.isNull() ? null : b.content().toString(StandardCharsets.UTF_8);
        }
        if (m instanceof io.netty.handler.codec.redis.ArrayRedisMessage a) {
            if (a.isNull()) {
                return null;
            }
            Object[] out = new Object[a.children().size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = replyValue(a.children().get(i));
            }
            return out;
        }
        return null;
    }

    /** Why a command may not run from a script (connection state, ACL), or null. */
    private String refusal(String name, List<byte[]> command, String function) {
        if (CONNECTION_STATE.contains(name)) {
            return "ERR " + name + " is not allowed in " + function + ": it would change the "
                    + "connection jgears shares between sessions (use atomic() for a transaction)";
        }
        io.jgears.redis.RedisUser user = session.user();
        return engine.redis().needsDryRun(user) ? engine.redis().dryRun(user, command) : null;
    }

    /** The execute_async() commands of one thread: those to send, and the replies it has not collected yet. */
    private static final class AsyncReplies {
        final Thread owner = Thread.currentThread();
        /** Commands not sent yet, with their ids and user: they go out in one write when the thread collects. */
        final List<List<byte[]>> unsent = new ArrayList<>();
        final List<Long> unsentIds = new ArrayList<>();
        io.jgears.redis.RedisUser unsentUser;
        final java.util.concurrent.ConcurrentLinkedQueue<Object[]> answered = new java.util.concurrent.ConcurrentLinkedQueue<>();
        final java.util.concurrent.atomic.AtomicInteger outstanding = new java.util.concurrent.atomic.AtomicInteger();
    }

    private final java.util.concurrent.ConcurrentHashMap<Thread, AsyncReplies> asyncReplies = new java.util.concurrent.ConcurrentHashMap<>();
    private final java.util.concurrent.atomic.AtomicLong asyncIds = new java.util.concurrent.atomic.AtomicLong();

    /**
     * execute_async(): queues the command and returns its id at once. When the thread collects its
     * replies ({@link #takeReplies}), its queued commands go out in one write on the session user's shared
     * pipelined connection: a lane's events, each awaiting a command, cost one system call, not one each.
     * Commands that block or belong in atomic() are refused here (their reply is an error).
     */
    @HostAccess.Export
    public long executeAsync(String... args) {
        long id = asyncIds.incrementAndGet();
        AsyncReplies replies = asyncReplies.computeIfAbsent(Thread.currentThread(), t -> new AsyncReplies());
        replies.outstanding.incrementAndGet();
        List<byte[]> command = new ArrayList<>(args.length);
        for (String a : args) {
            command.add(a.getBytes(StandardCharsets.UTF_8));
        }
        String name = args.length == 0 ? "" : args[0].toUpperCase(Locale.ROOT);
        String refused;
        try {
            refused = args.length == 0 ? "ERR execute_async() needs a command"
                    : BLOCKING.contains(name) ? "ERR " + name + " blocks: use execute() for it"
                    : atomics.containsKey(Thread.currentThread()) ? "ERR execute_async() can not be used inside atomic()"
                    : refusal(name, command, "execute_async()");
        } catch (RuntimeException e) {
            refused = "ERR jgears could not reach Redis: " + e.getMessage();
        }
        if (refused != null) {
            answer(replies, id, new RedisError(refused));
        } else {
            io.jgears.redis.RedisUser user = session.user();
            if (!replies.unsent.isEmpty() && !java.util.Objects.equals(user, replies.unsentUser)) {
                send(replies);  // shared mode: another session's user, another connection
            }
            replies.unsentUser = user;
            replies.unsent.add(command);
            replies.unsentIds.add(id);
        }
        return id;
    }

    /** Sends a thread's queued execute_async() commands in one write. */
    private void send(AsyncReplies replies) {
        if (replies.unsent.isEmpty()) {
            return;
        }
        List<java.util.concurrent.CompletableFuture<Object>> sent = engine.redis().dispatchAll(replies.unsentUser, replies.unsent);
        for (int i = 0; i < sent.size(); i++) {
            long id = replies.unsentIds.get(i);
            sent.get(i).whenComplete((reply, error) -> answer(replies, id,
                    error == null ? reply : new RedisError(RedisBackend.rootMessage(error))));
        }
        replies.unsent.clear();
        replies.unsentIds.clear();
    }

    /** Queues a reply for its thread; the last one outstanding wakes it (one wake-up per batch, not per reply). */
    private static void answer(AsyncReplies replies, long id, Object reply) {
        replies.answered.add(new Object[]{id, reply});
        if (replies.outstanding.decrementAndGet() == 0) {
            java.util.concurrent.locks.LockSupport.unpark(replies.owner);
        }
    }

    /**
     * The replies to this thread's execute_async() commands, once all it sent are answered (Redis answers
     * a pipeline in one go): [ids (comma-joined), kinds (one letter each: s string, i integer, n nil,
     * e error, o other), scalar values concatenated, their lengths, the other values as a host array],
     * or null when it has sent none.
     */
    @HostAccess.Export
    public Object[] takeReplies() {
        AsyncReplies replies = asyncReplies.get(Thread.currentThread());
        if (replies == null || (replies.answered.isEmpty() && replies.outstanding.get() == 0)) {
            return null;
        }
        send(replies);
        // Each command is bounded by the command timeout, so this ends; the context's interrupt (the
        // execution timeout) is seen when this returns.
        boolean interrupted = false;
        while (replies.outstanding.get() > 0) {
            java.util.concurrent.locks.LockSupport.parkNanos(replies, 10_000_000L);
            interrupted |= Thread.interrupted();  // or park would return at once: the flag is set again below
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        StringBuilder ids = new StringBuilder();
        StringBuilder kinds = new StringBuilder();
        StringBuilder values = new StringBuilder();
        StringBuilder lengths = new StringBuilder();
        List<Object> others = new ArrayList<>();
        for (Object[] r; (r = replies.answered.poll()) != null; ) {
            if (!ids.isEmpty()) {
                ids.append(',');
                lengths.append(',');
            }
            ids.append(r[0]);
            Object v = r[1];
            String scalar;
            if (v instanceof String str) {
                kinds.append('s');
                scalar = str;
            } else if (v instanceof Long n) {
                kinds.append('i');
                scalar = n.toString();
            } else if (v == null) {
                kinds.append('n');
                scalar = "";
            } else if (v instanceof RedisError e) {
                kinds.append('e');
                scalar = e.message();
            } else {
                kinds.append('o');
                others.add(GenericOutput.toHost(v));
                scalar = "";
            }
            values.append(scalar);
            lengths.append(scalar.codePointCount(0, scalar.length()));
        }
        if (replies.outstanding.get() == 0 && replies.answered.isEmpty()) {
            asyncReplies.remove(Thread.currentThread(), replies);  // lane threads come and go
        }
        return new Object[]{ids.toString(), kinds.toString(), values.toString(), lengths.toString(), others.toArray()};
    }

    /** For a session restored for another ACL user: drops the keys that user may not read. */
    List<?> readable(List<?> batch, int step) {
        io.jgears.redis.RedisUser user = session.user();
        if (!engine.redis().needsDryRun(user)) {
            return batch;
        }
        List<Object> out = new ArrayList<>(batch.size());
        out.add(batch.getFirst());
        for (int i = 1; i + step - 1 < batch.size(); i += step) {
            byte[] key = String.valueOf(batch.get(i)).getBytes(StandardCharsets.UTF_8);
            if (engine.redis().dryRun(user, List.of("GET".getBytes(), key)) == null) {
                out.addAll(batch.subList(i, i + step));
            }
        }
        return out;
    }

    /**
     * call_next(*args) in a CommandReader hook: the next hook of the chain these arguments match, else the
     * hooked command itself, straight to Redis.
     */
    @HostAccess.Export
    public Object[] callNext(Value args) {
        HookCall call = hook;
        if (call == null || call.command == null) {
            return new Object[]{Boolean.FALSE, "Can not get CommandHook ctx"};
        }
        int n = (int) args.getArraySize();
        List<byte[]> command = new ArrayList<>(n + 1);
        command.add(call.command.getBytes(StandardCharsets.UTF_8));
        for (int i = 0; i < n; i++) {
            command.add(bytesOf(args.getArrayElement(i)));
        }
        Object[] chained = call.next.apply(command);
        if (chained != null) {
            return chained;
        }
        try {
            io.jgears.redis.RedisUser user = session.user();
            if (engine.redis().needsDryRun(user)) {
                String denied = engine.redis().dryRun(user, command);
                if (denied != null) {
                    return new Object[]{Boolean.FALSE, denied};
                }
            }
            return new Object[]{Boolean.TRUE, GenericOutput.toHost(RedisBackend.dispatch(engine.redis().connectionFor(user), command))};
        } catch (RedisCommandException e) {
            return new Object[]{Boolean.FALSE, e.getMessage()};
        } catch (RuntimeException e) {
            return new Object[]{Boolean.FALSE, "ERR jgears could not reach Redis: " + e.getMessage()};
        }
    }

    /** override_reply(value) in a KeysReader commands=[...] execution: the hooked command's client gets it. */
    @HostAccess.Export
    public Object[] overrideReply(Value value) {
        HookCall call = hook;
        if (call == null || !call.overridable) {
            return new Object[]{Boolean.FALSE, "Can not get command ctx"};
        }
        if (!call.setOverride(toJava(value))) {
            return new Object[]{Boolean.FALSE, "Can only override reply once"};
        }
        return new Object[]{Boolean.TRUE, null};
    }

    /** get_command(): [true, the hooked command's arguments] inside a KeysReader commands= hook, else [false, why]. */
    @HostAccess.Export
    public Object[] getCommand() {
        HookCall call = hook;
        if (call == null || call.fired == null) {
            return new Object[]{Boolean.FALSE, "Can not get command ctx"};
        }
        String[] args = new String[call.fired.size()];
        for (int i = 0; i < args.length; i++) {
            args[i] = new String(call.fired.get(i), java.nio.charset.StandardCharsets.UTF_8);
        }
        return new Object[]{Boolean.TRUE, args};
    }

    /** RedisGears' refusal of this register() (hooks on commands it may not hook), or null. */
    @HostAccess.Export
    public String registerRefusal(String reader, String mode, Value args) {
        return engine.registrations().refusal(session, reader, mode, argsOf(args));
    }

    /** register(): a registration of this session, active once the script has loaded; returns its id. */
    @HostAccess.Export
    public String register(String reader, String description, String mode, Value args, Value plan) {
        java.util.Map<String, Object> map = argsOf(args);
        Registration r = engine.registrations().create(session, reader, description, mode, map, planOf(plan),
                session.nextRegistrationIndex(), run == null ? null : run.nextClusterId());
        if (run == null) {
            // Registered outside a script load (from an execution or a time event): active at once.
            engine.registrations().activate(session, r);
            engine.persist(session);
        }
        return r.id();
    }

    /** register()'s reader arguments: [name, value, ...] to a map (lists of strings for list values). */
    private static java.util.Map<String, Object> argsOf(Value args) {
        java.util.Map<String, Object> map = new java.util.LinkedHashMap<>();
        for (int i = 0; i + 1 < args.getArraySize(); i += 2) {
            Value v = args.getArrayElement(i + 1);
            Object value;
            if (v.isNull()) {
                value = null;
            } else if (v.isBoolean()) {
                value = v.asBoolean();
            } else if (v.isNumber()) {
                value = v.asLong();
            } else if (v.hasArrayElements()) {
                List<String> list = new ArrayList<>();
                for (int j = 0; j < v.getArraySize(); j++) {
                    list.add(v.getArrayElement(j).asString());
                }
                value = List.copyOf(list);
            } else {
                value = v.asString();
            }
            map.put(args.getArrayElement(i).asString(), value);
        }
        return map;
    }

    /** Checked before each event's execution: none starts once RG.UNREGISTER has returned. */
    @HostAccess.Export
    public boolean registrationActive(String id) {
        Registration r = engine.registrations().find(id);
        if (r == null || r.isUnregistered()) {
            return false;
        }
        engine.executionStarts(session);  // asked before each event's execution: its time limit starts
        return true;
    }

    private static List<List<String>> planOf(Value plan) {
        int n = (int) plan.getArraySize();
        List<List<String>> steps = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            Value step = plan.getArrayElement(i);
            steps.add(List.of(step.getArrayElement(0).asString(), step.getArrayElement(1).asString(),
                    step.getArrayElement(2).asString()));
        }
        return steps;
    }

    /** The batches of a KeysReader run, read one ahead of Python (see {@link KeyBatches}). */
    @HostAccess.Export
    public KeyBatches keyBatches(String pattern, int count, boolean readValue, boolean noScan) {
        return new KeyBatches(engine.redis(), session.user(), pattern, count, readValue, noScan,
                batch -> readable(batch, readValue ? 3 : 2));
    }

    @HostAccess.Export
    public void atomicBegin() {
        AtomicBlock open = atomics.get(Thread.currentThread());
        if (open != null) {
            open.depth++;
            return;
        }
        StatefulRedisConnection<byte[], byte[]> connection = null;
        try {
            connection = engine.redis().connectDedicated(session.user());
            RedisBackend.dispatch(connection, List.of("MULTI".getBytes()));
            atomics.put(Thread.currentThread(), new AtomicBlock(connection));
        } catch (RuntimeException e) {
            if (connection != null) {
                connection.closeAsync();
            }
            throw new IllegalStateException("atomic(): " + e.getMessage());
        }
    }

    @HostAccess.Export
    public Object[] atomicEnd(boolean commit) {
        AtomicBlock open = atomics.get(Thread.currentThread());
        if (open == null || --open.depth > 0) {
            return new Object[]{Boolean.TRUE, null};
        }
        try {
            Object reply = RedisBackend.dispatch(open.connection, List.of((commit ? "EXEC" : "DISCARD").getBytes()));
            return new Object[]{Boolean.TRUE, GenericOutput.toHost(reply)};
        } catch (RedisCommandException e) {
            return new Object[]{Boolean.FALSE, e.getMessage()};
        } finally {
            closeAtomic();
        }
    }

    /** Ends this thread's atomic() block, if any, without committing it. */
    public void closeAtomic() {
        AtomicBlock open = atomics.isEmpty() ? null : atomics.remove(Thread.currentThread());
        if (open != null) {
            open.connection.closeAsync();
        }
    }

    // ------------------------------------------------------------------ executions

    /**
     * run(): a new execution of this session with its plan ([type, name, arg] per step); returns
     * [id, runNow, profile]. UNBLOCKING scripts run it after they load.
     */
    @HostAccess.Export
    public Object[] newExecution(String reader, Value desc, Value plan, boolean nested) {
        if (run != null && run.restoring()) {
            return new Object[]{null, false, false};
        }
        boolean profile = engine.config().getLong(GearsConfig.PROFILE_EXECUTIONS) != 0;
        if (nested) {
            // run() from inside an execution: a new execution of its own, started once this call returns.
            Execution execution = engine.executions().create(session, reader, false, planOf(plan));
            engine.submit(() -> engine.runQueued(execution));
            return new Object[]{execution.id(), false, profile};
        }
        if (run != null && !run.started().isEmpty()) {
            // Python raises this as a gears.error (the runtime turns host exceptions into Python ones).
            throw new IllegalStateException("Can not run more then 1 executions in a single script");
        }
        boolean unblocking = run != null && run.unblocking();
        Execution execution = engine.executions().create(session, reader, unblocking || run != null && run.keepsExecution(),
                planOf(plan), run == null ? null : run.nextClusterId());
        if (run != null) {
            run.started(execution);
            if (run.clusterRole().equals("coordinator")) {
                execution.shardReplies(run.shardReplies());
            }
            ShardFanOut fanOut = engine.fanOut();
            if (!run.clusterRole().equals("none") && run.clusterRunId() != null && fanOut != null) {
                String runId = run.clusterRunId();
                execution.clusterRun(runId);
                // However it ends, the other shards do not wait for repartitions this one did not reach.
                execution.done().whenComplete((r, e) -> fanOut.runEnded(runId, execution.exchangePhases(),
                        "its execution ended (" + execution.status().label() + ") before the repartition"));
            }
        }
        if (!unblocking) {
            execution.running();
            // It runs inside this script load: RG.ABORTEXECUTION interrupts the load (a cluster shard keeps
            // its part of an UNBLOCKING run stored, so another shard's abort can name it).
            execution.inPython(true);
        }
        return new Object[]{execution.id(), !unblocking, engine.config().getLong(GearsConfig.PROFILE_EXECUTIONS) != 0};
    }

    /** A run()'s progress so far (every 1024 records read, and when its reader ends), for RG.GETEXECUTION and the log. */
    @HostAccess.Export
    public void progress(String executionId, long read, long done) {
        Execution execution = engine.executions().find(executionId);
        if (execution != null && execution.session() == session) {
            execution.progress(read, done);
        }
    }

    @HostAccess.Export
    public void finish(String executionId, Value results, Value errors, Value profile) {
        Execution execution = engine.executions().find(executionId);
        if (execution == null || execution.session() != session) {
            return;
        }
        int n = (int) results.getArraySize();
        List<Object> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(toJava(results.getArrayElement(i)));
        }
        int m = (int) errors.getArraySize();
        List<String> errs = new ArrayList<>(m);
        for (int i = 0; i < m; i++) {
            errs.add(errors.getArrayElement(i).asString());
        }
        if (!profile.isNull()) {
            long[] nanos = new long[(int) profile.getArraySize()];
            for (int i = 0; i < nanos.length; i++) {
                nanos[i] = profile.getArrayElement(i).asLong();
            }
            execution.profile(nanos);
        }
        execution.complete(out, errs);
        if (!execution.isStored()) {
            ScriptRun loading = run;
            if (loading != null && loading.started().contains(execution)) {
                loading.holdFinished(execution);  // the script decides once it has loaded (see ScriptRun)
            } else {
                // A blocking run() leaves nothing behind: its reference goes as soon as it is done.
                engine.executions().release(execution);
            }
        }
    }

    /**
     * Finished triggered executions in one call, as plain strings: their ids and result counts
     * (comma-separated), and their results concatenated with their lengths (in code points).
     */
    @HostAccess.Export
    public void finishBatch(String ids, String counts, String results, String lengths) {
        String[] idList = ids.split(",");
        String[] countList = counts.split(",");
        String[] lengthList = lengths.isEmpty() ? new String[0] : lengths.split(",");
        int part = 0;
        int offset = 0;
        for (int i = 0; i < idList.length; i++) {
            int n = Integer.parseInt(countList[i]);
            List<Object> out = new ArrayList<>(n);
            for (int j = 0; j < n; j++) {
                int end = results.offsetByCodePoints(offset, Integer.parseInt(lengthList[part++]));
                out.add(results.substring(offset, end));
                offset = end;
            }
            Execution execution = engine.executions().find(idList[i]);
            if (execution == null || execution.session() != session) {
                continue;
            }
            execution.complete(out, List.of());
            if (!execution.isStored()) {
                engine.executions().release(execution);
            }
        }
    }

    /** A gearsFuture or asyncio future an execution waits on is done: continue it after this call. */
    @HostAccess.Export
    public void resume(String executionId) {
        engine.resume(session, executionId);
    }

    /**
     * A garbage collection, for the runtime to see whether anything still references a gearsFuture an
     * execution waits on. At most one a second: each is a full collection of the whole heap.
     */
    @HostAccess.Export
    public void collectGarbage() {
        long now = System.nanoTime();
        long last = lastCollection.get();
        if (now - last >= 1_000_000_000L && lastCollection.compareAndSet(last, now)) {
            System.gc();
        }
    }

    private static final java.util.concurrent.atomic.AtomicLong lastCollection =
            new java.util.concurrent.atomic.AtomicLong(System.nanoTime() - 2_000_000_000L);

    /** asyncio call_later() of an async step: call {@code _fire_timer(tid)} in this context after ms. */
    @HostAccess.Export
    public void timer(long millis, long timerId) {
        engine.timer(session, millis, timerId);
    }

    // ------------------------------------------------------------------ time events

    @HostAccess.Export
    public String registerTimeEvent(long intervalMillis, String description, boolean oneshot) {
        return engine.registerTimeEvent(session, intervalMillis, description, oneshot).id();
    }

    /**
     * RedisGears' registerTE: null when {@code key} (if any) already exists in Redis; "" when the event
     * lives on another shard of a cluster (see {@link #timeEventLivesHere}).
     */
    @HostAccess.Export
    public String registerKeyedTimeEvent(long periodMillis, String key) {
        if (!timeEventLivesHere(key)) {
            return "";
        }
        TimeEvent te = engine.registerKeyedTimeEvent(session, periodMillis, key);
        return te == null ? null : te.id();
    }

    /**
     * On a cluster every shard runs the script, where RedisGears runs it on the shard it was sent to only:
     * a registerTE of the script itself lives on one shard, the one serving its key name, else the one the
     * script was sent to (and their replicas, which keep it dormant). Called from an execution or a time
     * event (not while the script loads), it lives where it is called.
     */
    private boolean timeEventLivesHere(String key) {
        ShardFanOut fanOut = engine.fanOut();
        if (fanOut == null || run == null) {
            return true;
        }
        if (key != null) {
            return fanOut.servesKey(key);
        }
        ClusterRunIds ids = session.clusterIds();
        return ids == null || fanOut.inShardOf(ids.prefix());
    }

    @HostAccess.Export
    public boolean unregisterTimeEvent(String id) {
        TimeEvent te = engine.timeEvents().find(id);
        if (te == null || te.session() != session) {
            return false;
        }
        return engine.unregisterTimeEvent(te, false);
    }

    // ------------------------------------------------------------------ misc

    @HostAccess.Export
    public void log(String message, String level) {
        String sid = session == null ? "-" : session.id();
        switch (level.toLowerCase(java.util.Locale.ROOT)) {
            // Redis' levels, below notice (its default) hidden by default as in Redis: debug < verbose < notice < warning.
            case "debug" -> pythonLog.trace("[{}] {}", sid, message);
            case "verbose" -> pythonLog.debug("[{}] {}", sid, message);
            case "warning" -> pythonLog.warn("[{}] {}", sid, message);
            default -> pythonLog.info("[{}] {}", sid, message);
        }
    }

    /**
     * A module of the session's requirements, read for its import hook: [kind, origin, source], or null.
     * Only the directories of the requirements the session asked for are looked at.
     */
    @HostAccess.Export
    public String[] requirementModule(String fullname) {
        Session s = session;
        return s == null ? null : io.jgears.requirements.Requirements.findModule(s.requirementRoots(), fullname);
    }

    /** The cluster role of the RG.PYEXECUTE whose script is loading: "none", "coordinator" or "shard". */
    @HostAccess.Export
    public String clusterRole() {
        return run == null ? "none" : run.clusterRole();
    }

    /**
     * A coordinator's run waits here for the other shards' parts: per shard {"ok", [records], [errors]}
     * or {"error", message}. Bounded: a shard that does not answer within {@link #SHARD_WAIT_SECONDS} (or
     * whose jgears goes away mid-run) is an error of the run, naming it.
     */
    @HostAccess.Export
    public Object[] shardReplies(String executionId) {
        Execution execution = engine.executions().find(executionId);
        if (execution == null || execution.session() != session) {
            return new Object[0];
        }
        List<java.util.concurrent.CompletableFuture<Object>> replies = execution.shardReplies();
        Object[] out = new Object[replies.size()];
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(SHARD_WAIT_SECONDS);
        for (int i = 0; i < out.length; i++) {
            Object reply;
            try {
                reply = replies.get(i).get(Math.max(1, deadline - System.nanoTime()), java.util.concurrent.TimeUnit.NANOSECONDS);
            } catch (java.util.concurrent.TimeoutException e) {
                out[i] = new Object[]{"error", "a shard did not send its part of the run within " + SHARD_WAIT_SECONDS + " s"};
                continue;
            } catch (java.util.concurrent.ExecutionException e) {
                out[i] = new Object[]{"error", String.valueOf(e.getCause() == null ? e.getMessage() : e.getCause().getMessage())};
                continue;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for the other shards");
            }
            out[i] = shardReply(reply);
        }
        return out;
    }

    /** run() on a cluster: the plan has {@code phases} repartitions (each shard moves its records at each). */
    @HostAccess.Export
    public void exchangePhases(String executionId, int phases) {
        Execution execution = engine.executions().find(executionId);
        if (execution != null && execution.session() == session) {
            execution.exchangePhases(phases);
        }
    }

    /** The Redis node id of the master owning each key's hash slot ("" where no shard serves it). */
    @HostAccess.Export
    public String[] keyOwners(Value keys) {
        ShardFanOut fanOut = engine.fanOut();
        int n = (int) keys.getArraySize();
        List<String> list = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            list.add(keys.getArrayElement(i).asString());
        }
        if (fanOut == null) {
            String[] mine = new String[n];
            java.util.Arrays.fill(mine, engine.shardId());
            return mine;
        }
        return fanOut.owners(list);
    }

    /**
     * A repartition of a cluster run: sends each record (pickled, {@code payloads}) to its shard
     * ({@code dests}) and waits (bounded) for the records the other shards send here. Returns
     * [records, errors].
     */
    @HostAccess.Export
    public Object[] exchange(String executionId, int phase, Value dests, Value payloads) {
        Execution execution = engine.executions().find(executionId);
        ShardFanOut fanOut = engine.fanOut();
        if (execution == null || execution.session() != session || fanOut == null || execution.clusterRunId() == null) {
            return new Object[]{new Object[0], new Object[]{"the repartition could not reach the other shards (not a cluster run)"}};
        }
        int n = (int) payloads.getArraySize();
        List<String> d = new ArrayList<>(n);
        List<String> p = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            d.add(dests.getArrayElement(i).asString());
            p.add(payloads.getArrayElement(i).asString());
        }
        ShardFanOut.Exchanged got = fanOut.exchange(execution.clusterRunId(), phase, d, p);
        return new Object[]{got.records().toArray(), got.errors().toArray()};
    }

    /**
     * A repartition in an execution of a registration in mode 'async' on a cluster: sends each record
     * (pickled, {@code payloads}) to its key's shard ({@code dests}), where the steps after {@code step}
     * run on it. Returns the errors (records that could not be handed over).
     */
    @HostAccess.Export
    public Object[] forwardRecords(String registrationId, int step, Value dests, Value payloads) {
        ShardFanOut fanOut = engine.fanOut();
        if (fanOut == null) {
            return new Object[]{"the repartition could not reach the other shards (not a cluster)"};
        }
        java.util.Map<String, List<String>> byShard = new java.util.LinkedHashMap<>();
        int n = (int) payloads.getArraySize();
        for (int i = 0; i < n; i++) {
            byShard.computeIfAbsent(dests.getArrayElement(i).asString(), k -> new ArrayList<>()).add(payloads.getArrayElement(i).asString());
        }
        return fanOut.forward(registrationId, step, byShard).toArray();
    }

    /** How long a coordinator waits for the other shards' parts of a run. */
    static final long SHARD_WAIT_SECONDS = 120;

    private static Object[] shardReply(Object reply) {
        if (reply instanceof List<?> l && l.size() == 2 && l.get(0) instanceof List<?> records && l.get(1) instanceof List<?> errors) {
            return new Object[]{"ok", records.stream().map(String::valueOf).toArray(), errors.stream().map(String::valueOf).toArray()};
        }
        if (reply instanceof io.jgears.redis.RedisError e) {
            return new Object[]{"error", "a shard could not run the script: " + e.message()};
        }
        // "OK": the script ran no execution there (a nested or restored run); nothing to gather.
        return new Object[]{"ok", new Object[0], new Object[0]};
    }

    /** This shard's id: ShardsIDReader's record (the Redis node id on a cluster). */
    @HostAccess.Export
    public String shardId() {
        return engine.shardId();
    }

    @HostAccess.Export
    public String configGet(String key) {
        return engine.config().getForScript(key);
    }

    /** A hash tag that maps to this shard; with one shard any tag does, RedisGears gives this one. */
    @HostAccess.Export
    public String hashtag() {
        return "06S";
    }

    // ------------------------------------------------------------------ conversions

    private static byte[] bytesOf(Value v) {
        if (v.isString()) {
            return v.asString().getBytes(StandardCharsets.UTF_8);
        }
        if (v.hasBufferElements()) {
            byte[] bytes = new byte[(int) v.getBufferSize()];
            v.readBuffer(0, bytes, 0, bytes.length);
            return bytes;
        }
        return v.toString().getBytes(StandardCharsets.UTF_8);
    }

    static Object toJava(Value v) {
        if (v.isNull()) {
            return null;
        }
        if (v.isString()) {
            return v.asString();
        }
        if (v.isBoolean()) {
            return v.asBoolean() ? 1L : 0L;
        }
        if (v.isNumber()) {
            return v.fitsInLong() ? (Object) v.asLong() : v.toString();
        }
        if (v.hasBufferElements()) {
            // Python bytes (convertToStr=False, override_reply): sent as they are.
            byte[] raw = new byte[(int) v.getBufferSize()];
            v.readBuffer(0, raw, 0, raw.length);
            return raw;
        }
        if (v.hasArrayElements()) {
            int n = (int) v.getArraySize();
            List<Object> out = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                out.add(toJava(v.getArrayElement(i)));
            }
            return out;
        }
        return v.toString();
    }
}
