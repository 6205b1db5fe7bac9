package io.jgears.gears;

import io.jgears.readers.KeyEvents;
import io.jgears.readers.StreamConsumer;
import io.jgears.server.Replies;
import io.netty.handler.codec.redis.RedisMessage;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Every registration, and the readers that feed them: key events (keyspace notifications), stream
 * consumer groups, RG.TRIGGER and command hooks. Each event becomes an execution of the registration's
 * pipeline in its session; events of one registration run in arrival order, one batch at a time.
 */
public final class Registrations implements KeyEvents.Listener {
    private static final Logger log = LoggerFactory.getLogger(Registrations.class);
    public static final String RESERVED_PREFIX = "{jgears}:";
    /** Events handed to Python in one crossing. */
    private static final int KEY_EVENT_BATCH = 256;

    private final GearsEngine engine;
    private final LinkedHashMap<String, Registration> byId = new LinkedHashMap<>();
    private final Map<Registration, StreamConsumer> consumers = new ConcurrentHashMap<>();
    /** Active registrations by reader, read on the notification thread without locking. */
    private volatile List<Registration> keyRegistrations = List.of();
    private volatile List<Registration> streamRegistrations = List.of();
    private volatile List<Registration> commandRegistrations = List.of();
    /** The same by prefix: Redis matches a key event to the prefixes it was subscribed for (see KeyEvents). */
    private volatile Map<String, List<Registration>> keyRegistrationsByPrefix = Map.of();
    private volatile Map<String, List<Registration>> streamRegistrationsByPrefix = Map.of();
    private volatile KeyEvents keyEvents;
    private final AtomicInteger syncCount = new AtomicInteger();

    Registrations(GearsEngine engine) {
        this.engine = engine;
    }

    // ------------------------------------------------------------------ lifecycle

    /** A register() while its script loads: inactive until the script has loaded (see {@link #activate}). */
    Registration create(Session session, String reader, String description, String mode, Map<String, Object> args,
                        List<List<String>> plan, int index) {
        Registration.Kind kind = switch (reader) {
            case "KeysReader" -> Registration.Kind.KEYS;
            case "KeysOnlyReader" -> Registration.Kind.KEYS_ONLY;
            case "StreamReader" -> Registration.Kind.STREAM;
            case "CommandReader" -> Registration.Kind.COMMAND;
            default -> throw new IllegalArgumentException(reader + " can not be used with register()");
        };
        if (kind == Registration.Kind.COMMAND && args.get("trigger") != null) {
            String trigger = (String) args.get("trigger");
            for (Registration r : all()) {
                if (r.session() != session.replacing() && r.kind() == Registration.Kind.COMMAND
                        && trigger.equals(r.stringArg("trigger"))) {
                    throw new IllegalArgumentException(r.session() == session
                            ? "trigger already registered in this session" : "trigger already registered");
                }
            }
        }
        Registration r = new Registration(engine.executions().nextId(), session, kind, reader, description, mode, args, plan, index);
        session.acquire(Session.Holder.REGISTRATION);
        synchronized (this) {
            byId.put(r.id(), r);
        }
        return r;
    }

    /** The script loaded: its registrations start receiving events. */
    void activate(Session session) {
        for (Registration r : of(session)) {
            activate(session, r);
        }
    }

    void activate(Session session, Registration r) {
        synchronized (r) {
            if (r.isActive() || r.isUnregistered()) {
                return;
            }
            r.activate();
        }
        if (r.kind() == Registration.Kind.STREAM) {
            startConsumer(r);
        }
        if (isSyncKeys(r)) {
            syncCount.incrementAndGet();
        }
        if (r.kind() != Registration.Kind.COMMAND) {
            ensureKeyEvents();
        }
        refreshIndexes();
    }

    private static boolean isSyncKeys(Registration r) {
        return "sync".equals(r.mode()) && (r.kind() == Registration.Kind.KEYS || r.kind() == Registration.Kind.KEYS_ONLY);
    }

    private synchronized void refreshIndexes() {
        List<Registration> keys = new ArrayList<>();
        List<Registration> streams = new ArrayList<>();
        List<Registration> commands = new ArrayList<>();
        for (Registration r : byId.values()) {
            if (r.isUnregistered() || !r.isActive()) {
                continue;
            }
            switch (r.kind()) {
                case KEYS, KEYS_ONLY -> keys.add(r);
                case STREAM -> streams.add(r);
                case COMMAND -> commands.add(r);
            }
        }
        keyRegistrations = List.copyOf(keys);
        streamRegistrations = List.copyOf(streams);
        commandRegistrations = List.copyOf(commands);
        keyRegistrationsByPrefix = byPrefix(keys);
        streamRegistrationsByPrefix = byPrefix(streams);
        KeyEvents events = keyEvents;
        if (events != null) {
            java.util.Set<String> prefixes = new java.util.HashSet<>(keyRegistrationsByPrefix.keySet());
            prefixes.addAll(streamRegistrationsByPrefix.keySet());
            events.subscribe(prefixes);
        }
    }

    private static Map<String, List<Registration>> byPrefix(List<Registration> registrations) {
        Map<String, List<Registration>> out = new java.util.HashMap<>();
        for (Registration r : registrations) {
            out.computeIfAbsent(r.stringArg("prefix"), p -> new ArrayList<>()).add(r);
        }
        out.replaceAll((p, list) -> List.copyOf(list));
        return Map.copyOf(out);
    }

    private synchronized void ensureKeyEvents() {
        if (keyEvents == null) {
            keyEvents = new KeyEvents(engine.redis(), this);
        }
    }

    private void startConsumer(Registration r) {
        StreamConsumer.Settings settings = new StreamConsumer.Settings(r.stringArg("prefix"), groupName(r),
                (int) r.longArg("batch"), r.longArg("duration"),
                StreamConsumer.Policy.valueOf(r.stringArg("onFailedPolicy").toUpperCase(Locale.ROOT)),
                r.longArg("onFailedRetryInterval"), r.boolArg("trimStream"));
        StreamConsumer consumer = new StreamConsumer(engine.redis(), r.session().user(), settings, new StreamConsumer.BatchRunner() {
            @Override
            public CompletableFuture<Boolean> run(String stream, List<Object[]> entries) {
                return runStreamBatch(r, stream, entries);
            }

            @Override
            public void aborted(String why) {
                r.status("aborted");
                log.warn("registration {} of session {} aborted: {}", r.id(), r.session().id(), why);
            }

            @Override
            public boolean paused() {
                return r.isPaused();
            }
        });
        consumers.put(r, consumer);
        consumer.start(r.id());
    }

    /** Stable across restarts and upgrades (same session id, same register() position): pending entries survive. */
    static String groupName(Registration r) {
        return "jgears." + r.session().id() + "." + r.index();
    }

    /**
     * Ends a registration: no execution starts after this returns (one in flight completes), its stored
     * executions go, and its session reference is released once Python has forgotten it.
     */
    public boolean unregister(Registration r) {
        synchronized (r) {
            if (r.isUnregistered()) {
                return false;
            }
            r.markUnregistered();
        }
        synchronized (this) {
            byId.remove(r.id());
        }
        refreshIndexes();
        r.events.clear();
        StreamConsumer consumer = consumers.remove(r);
        if (consumer != null) {
            consumer.stop();
        }
        if (isSyncKeys(r) && r.isActive()) {
            syncCount.decrementAndGet();
        }
        List<Execution> kept;
        synchronized (r.recent) {
            kept = new ArrayList<>(r.recent);
            r.recent.clear();
        }
        kept.forEach(e -> engine.executions().release(e));
        engine.forgetInSession(r.session(), "_forget_registration", r.id(), Session.Holder.REGISTRATION);
        return true;
    }

    public synchronized Registration find(String id) {
        return byId.get(id);
    }

    public synchronized List<Registration> all() {
        return List.copyOf(byId.values());
    }

    public synchronized List<Registration> of(Session session) {
        return byId.values().stream().filter(r -> r.session() == session).toList();
    }

    // ------------------------------------------------------------------ executions

    /** A triggered execution is kept (MaxExecutionsPerRegistration per registration) and counted when done. */
    private Execution newExecution(Registration r) {
        Execution e = engine.executions().createTriggered(r);
        e.running();
        e.done().whenComplete((x, error) -> finished(r, e));
        return e;
    }

    private void finished(Registration r, Execution e) {
        r.finished(e);
        if (!e.errors().isEmpty()) {
            engine.failureLog().warn("registration {} (session {}): execution {} failed: {}", r.id(), r.session().id(),
                    e.id(), FailureLog.summary(String.valueOf(e.errors().getFirst())));
        }
        List<Execution> evicted = new ArrayList<>();
        synchronized (r.recent) {
            if (r.isUnregistered()) {
                evicted.add(e);
            } else {
                r.recent.add(e);
                long max = engine.config().getLong(GearsConfig.MAX_EXECUTIONS_PER_REGISTRATION);
                while (r.recent.size() > max) {
                    evicted.add(r.recent.poll());
                }
            }
        }
        evicted.forEach(x -> engine.executions().release(x));
    }

    /** Runs the events' executions in one call into the session; executions it could not run end as failed. */
    /** One call into the runtime for a list of executions and their events; returns how many Python started. */
    private interface Trigger {
        int call(io.jgears.python.SubInterpreter si, Registration r, List<Execution> executions, List<Object> payload);
    }

    private void runInPython(Registration r, List<Execution> executions, List<Object> payload, HostApi.HookCall hook,
                             Trigger trigger) {
        runInPython(r, executions, payload, hook, false, trigger);
    }

    private void runInPython(Registration r, List<Execution> executions, List<Object> payload, HostApi.HookCall hook,
                             boolean noAsync, Trigger trigger) {
        Session session = r.session();
        HostApi host = (HostApi) session.interpreter().host();
        int started = 0;
        try {
            // A lone execution (a command trigger) is marked inside Python: RG.ABORTEXECUTION then interrupts
            // it. The executions of a batch are not: interrupting one would end the whole batch's call.
            Execution lone = executions.size() == 1 ? executions.getFirst() : null;
            started = engine.callPython(session, GearsConfig.REGISTRATION_TIMEOUT, () -> session.enter(si -> {
                host.beginHook(hook);
                host.noAsync(noAsync);
                if (lone != null) {
                    lone.inPython(true);
                }
                try {
                    return trigger.call(si, r, executions, payload);
                } finally {
                    if (lone != null) {
                        lone.inPython(false);
                    }
                    host.noAsync(false);
                    host.endHook();
                }
            }));
        } catch (GearsEngine.PythonCallFailed e) {
            for (Execution x : executions) {
                engine.failed(x, x.abortRequested() ? "Execution was aborted" : e.getMessage());
            }
        }
        notStarted(executions, started);
    }

    /**
     * Runs lanes of executions at once inside the session's context, one thread each: while one lane waits
     * on Redis in execute(), another runs Python, so their round trips overlap on the pipelined connection.
     */
    private void runInPythonLanes(Registration r, List<List<Execution>> lanes, List<List<Object>> payloads, Trigger trigger) {
        Session session = r.session();
        HostApi host = (HostApi) session.interpreter().host();
        List<java.util.function.Function<io.jgears.python.SubInterpreter, Integer>> actions = new ArrayList<>(lanes.size());
        for (int i = 0; i < lanes.size(); i++) {
            List<Execution> lane = lanes.get(i);
            List<Object> payload = payloads.get(i);
            actions.add(si -> engine.tracked(session, () -> {
                try {
                    return trigger.call(si, r, lane, payload);
                } finally {
                    host.closeAtomic();  // an interrupted lane does not leave its thread inside a MULTI
                }
            }));
        }
        List<Integer> started = null;
        try {
            started = engine.callPython(session, GearsConfig.REGISTRATION_TIMEOUT,
                    () -> session.enterParallel(actions, engine.laneThreads()));
        } catch (GearsEngine.PythonCallFailed e) {
            for (List<Execution> lane : lanes) {
                for (Execution x : lane) {
                    engine.failed(x, e.getMessage());
                }
            }
        }
        for (int i = 0; i < lanes.size(); i++) {
            notStarted(lanes.get(i), started == null ? 0 : started.get(i));
        }
    }

    /** Calls the runtime's _trigger (stream and command events). Call inside the context. */
    private int trigger(io.jgears.python.SubInterpreter si, Registration r, List<Execution> executions, List<Object> payload) {
        Object[] ids = executions.stream().map(Execution::id).toArray();
        boolean profile = engine.config().getLong(GearsConfig.PROFILE_EXECUTIONS) != 0;
        // Values are read inside the context: another thread may enter it right after.
        boolean noAsync = ((HostApi) si.host()).noAsync();
        org.graalvm.polyglot.Value n = noAsync
                ? si.call("_trigger", r.id(), ids, payload.toArray(), profile, true)
                : si.call("_trigger", r.id(), ids, payload.toArray(), profile);
        return n.fitsInInt() ? n.asInt() : 0;
    }

    /**
     * Calls the runtime's _trigger_keys for key events ([event, key, type, value, readValue] each). The
     * batch goes as plain strings (joined, or concatenated with their lengths): strings cross into Python
     * as Python strings, while each read of a host array would let the other lanes take the GIL.
     */
    private int triggerKeys(io.jgears.python.SubInterpreter si, Registration r, List<Execution> executions, List<Object> payload) {
        StringBuilder ids = new StringBuilder();
        StringBuilder events = new StringBuilder();
        StringBuilder keys = new StringBuilder();
        StringBuilder keyLengths = new StringBuilder();
        StringBuilder types = new StringBuilder();
        StringBuilder values = new StringBuilder();
        StringBuilder valueLengths = new StringBuilder();
        boolean readValue = false;
        boolean plainValues = true;
        Object[] rawValues = new Object[payload.size()];
        for (int i = 0; i < payload.size(); i++) {
            Object[] event = (Object[]) payload.get(i);
            String sep = i == 0 ? "" : ",";
            ids.append(sep).append(executions.get(i).id());
            events.append(sep).append(event[0]);
            String key = (String) event[1];
            keys.append(key);
            keyLengths.append(sep).append(key.codePointCount(0, key.length()));
            types.append(sep).append(event[2]);
            readValue = (Boolean) event[4];
            rawValues[i] = event[3];
            if (event[3] instanceof String v) {
                values.append(v);
                valueLengths.append(sep).append(v.codePointCount(0, v.length()));
            } else if (event[3] == null) {
                valueLengths.append(sep).append(-1);
            } else {
                plainValues = false;
            }
        }
        boolean profile = engine.config().getLong(GearsConfig.PROFILE_EXECUTIONS) != 0;
        org.graalvm.polyglot.Value n = si.call("_trigger_keys", r.id(), ids.toString(), events.toString(), keys.toString(),
                keyLengths.toString(), types.toString(), plainValues ? values.toString() : rawValues,
                plainValues ? valueLengths.toString() : null, readValue, profile);
        return n.fitsInInt() ? n.asInt() : 0;
    }

    /** Executions Python did not start (unregistered meanwhile, or the registration is gone there). */
    private void notStarted(List<Execution> executions, int started) {
        for (int i = started; i < executions.size(); i++) {
            engine.failed(executions.get(i), "not run: the registration was unregistered");
        }
    }

    // ------------------------------------------------------------------ key events

    @Override
    public void onKeyEvent(String prefix, String event, byte[] key) {
        if (startsWithReserved(key)) {
            return;
        }
        for (Registration r : keyRegistrationsByPrefix.getOrDefault(prefix, List.of())) {
            if (r.isPaused()) {
                continue;
            }
            List<String> types = r.listArg("eventTypes");
            if (types == null || types.contains(event)) {
                r.received.incrementAndGet();
                r.events.add(new Object[]{event, key});
                if (r.draining.compareAndSet(false, true)) {
                    engine.submit(() -> drain(r));
                }
            }
        }
        if (event.equals("xadd")) {
            for (Registration r : streamRegistrationsByPrefix.getOrDefault(prefix, List.of())) {
                StreamConsumer c = consumers.get(r);
                if (c != null) {
                    c.discovered(new String(key, StandardCharsets.UTF_8));
                }
            }
        }
    }

    @Override
    public void onGap(Instant from, Instant to) {
        for (Registration r : keyRegistrations) {
            r.gap(from + " .. " + to);
        }
    }

    private static boolean startsWithReserved(byte[] key) {
        byte[] p = RESERVED_PREFIX.getBytes(StandardCharsets.US_ASCII);
        if (key.length < p.length) {
            return false;
        }
        for (int i = 0; i < p.length; i++) {
            if (key[i] != p[i]) {
                return false;
            }
        }
        return true;
    }

    /** Runs a key registration's queued events, a batch per call into Python, until the queue is empty. */
    private void drain(Registration r) {
        while (true) {
            List<Object[]> batch = new ArrayList<>();
            Object[] ev;
            while (batch.size() < KEY_EVENT_BATCH && (ev = r.events.poll()) != null) {
                batch.add(ev);
            }
            if (batch.isEmpty()) {
                r.draining.set(false);
                if (r.events.isEmpty() || !r.draining.compareAndSet(false, true)) {
                    return;
                }
                continue;
            }
            try {
                runKeyBatch(r, batch);
            } catch (RuntimeException e) {
                log.warn("registration {}: a batch of {} key events failed: {}", r.id(), batch.size(), e.getMessage());
                r.processed(batch.size());
            }
        }
    }

    private void runKeyBatch(Registration r, List<Object[]> batch) {
        boolean keysOnly = r.kind() == Registration.Kind.KEYS_ONLY;
        List<String> keyTypes = r.listArg("keyTypes");
        boolean readValue = !keysOnly && r.boolArg("readValue");
        List<?> read = null;
        if (!keysOnly || keyTypes != null) {
            List<byte[]> keys = new ArrayList<>(batch.size());
            batch.forEach(e -> keys.add((byte[]) e[1]));
            // With values: one MGET, and the script only for keys that are not strings (see readValues).
            read = readValue ? engine.redis().readValues(r.session().user(), "0", keys, true)
                    : engine.redis().readKeys(r.session().user(), keys, false);
        }
        int step = readValue ? 3 : 2;
        // Async registrations run their events in lanes (KeyEventConcurrency); sync ones keep arrival order.
        // With async steps one thread keeps the whole batch in flight (execute_async): extra lanes would only
        // contend for the GIL, measured at a third of the single lane's rate.
        int concurrency = !"sync".equals(r.mode()) && !r.boolArg("asyncSteps")
                ? (int) Math.min(engine.config().getLong(GearsConfig.KEY_EVENT_CONCURRENCY), batch.size()) : 1;
        @SuppressWarnings("unchecked")
        List<Execution>[] lanes = new List[Math.max(1, concurrency)];
        @SuppressWarnings("unchecked")
        List<Object>[] payloads = new List[lanes.length];
        int skipped = 0;
        synchronized (r) {
            if (r.isUnregistered()) {
                r.processed(batch.size());
                return;
            }
            for (int i = 0; i < batch.size(); i++) {
                String event = (String) batch.get(i)[0];
                String key = new String((byte[]) batch.get(i)[1], StandardCharsets.UTF_8);
                String type = read == null ? null : String.valueOf(read.get(1 + i * step + 1));
                if ((keyTypes != null && !keyTypes.contains(type)) || "denied".equals(type)) {
                    skipped++;  // not a type it asked for, or a key its session's ACL user may not read
                    continue;
                }
                if (engine.redis().needsDryRun(r.session().user())
                        && engine.redis().dryRun(r.session().user(), List.of("GET".getBytes(), (byte[]) batch.get(i)[1])) != null) {
                    skipped++;  // a restored session's user may not read this key: no event for it
                    continue;
                }
                Object value = readValue ? io.jgears.redis.GenericOutput.toHost(read.get(1 + i * step + 2)) : null;
                Execution e = newExecution(r);
                e.done().whenComplete((x, error) -> r.processed(1));
                // Events of one key share a lane, so they run in arrival order.
                int lane = lanes.length == 1 ? 0 : Math.floorMod(key.hashCode(), lanes.length);
                if (lanes[lane] == null) {
                    lanes[lane] = new ArrayList<>();
                    payloads[lane] = new ArrayList<>();
                }
                lanes[lane].add(e);
                payloads[lane].add(new Object[]{event, key, type == null ? "none" : type, value, readValue});
            }
            r.triggered(executions(lanes));
        }
        r.processed(skipped);
        List<List<Execution>> used = new ArrayList<>(lanes.length);
        List<List<Object>> usedPayloads = new ArrayList<>(lanes.length);
        for (int i = 0; i < lanes.length; i++) {
            if (lanes[i] != null) {
                used.add(lanes[i]);
                usedPayloads.add(payloads[i]);
            }
        }
        if (used.size() == 1) {
            runInPython(r, used.getFirst(), usedPayloads.getFirst(), null, this::triggerKeys);
        } else if (used.size() > 1) {
            runInPythonLanes(r, used, usedPayloads, this::triggerKeys);
        }
    }

    private static int executions(List<Execution>[] lanes) {
        int n = 0;
        for (List<Execution> lane : lanes) {
            n += lane == null ? 0 : lane.size();
        }
        return n;
    }

    /**
     * For a command that came through jgears: completes when every sync key registration has run the
     * events that command caused (null when there is no sync registration).
     */
    public CompletableFuture<Void> syncBarrier() {
        KeyEvents events = keyEvents;
        if (syncCount.get() == 0 || events == null) {
            return null;
        }
        return events.barrier().thenCompose(x -> {
            List<CompletableFuture<Void>> waits = new ArrayList<>();
            for (Registration r : keyRegistrations) {
                if ("sync".equals(r.mode())) {
                    waits.add(r.processedUpTo(r.received.get()));
                }
            }
            return CompletableFuture.allOf(waits.toArray(CompletableFuture[]::new));
        });
    }

    // ------------------------------------------------------------------ streams

    private CompletableFuture<Boolean> runStreamBatch(Registration r, String stream, List<Object[]> entries) {
        Execution e;
        synchronized (r) {
            if (r.isUnregistered()) {
                return CompletableFuture.completedFuture(false);
            }
            e = newExecution(r);
            r.triggered(1);
        }
        List<Object> payload = java.util.Collections.singletonList(new Object[]{stream, entries.toArray()});
        engine.submit(() -> runInPython(r, List.of(e), payload, null, this::trigger));
        return e.done().thenApply(x -> x.status() == Execution.Status.DONE && x.errors().isEmpty());
    }

    // ------------------------------------------------------------------ commands

    /** RG.TRIGGER / RG.TRIGGERONKEY: the results of the registration named {@code args[0]}. */
    public CompletableFuture<RedisMessage> trigger(List<String> args) {
        String name = args.getFirst();
        for (Registration r : commandRegistrations) {
            if (name.equals(r.stringArg("trigger"))) {
                if (r.isPaused()) {
                    return CompletableFuture.completedFuture(Replies.error("ERR registration " + r.id() + " is paused"));
                }
                return runCommand(r, args, null, false);
            }
        }
        return CompletableFuture.completedFuture(Replies.error("ERR subcommand not found"));
    }

    /**
     * RG.TRIGGER where blocking is not allowed (MULTI, execute() from Python): only a sync registration
     * runs, and its steps may not wait (RedisGears' RFNoAsync).
     */
    public CompletableFuture<RedisMessage> triggerNoAsync(List<String> args) {
        String name = args.getFirst();
        for (Registration r : commandRegistrations) {
            if (name.equals(r.stringArg("trigger"))) {
                if (!"sync".equals(r.mode())) {
                    return CompletableFuture.completedFuture(Replies.error(GearsCommands.NO_NON_SYNC_HERE));
                }
                if (r.isPaused()) {
                    return CompletableFuture.completedFuture(Replies.error("ERR registration " + r.id() + " is paused"));
                }
                return runCommand(r, args, null, true);
            }
        }
        return CompletableFuture.completedFuture(Replies.error("ERR subcommand not found"));
    }

    /** Whether a command hook registration watches this command (upper-case name). */
    public boolean hooks(String upperName) {
        for (Registration r : commandRegistrations) {
            String hook = r.stringArg("hook");
            if (hook != null && hook.equalsIgnoreCase(upperName) && !r.isPaused()) {
                return true;
            }
        }
        return false;
    }

    /** Runs the hook registration for this command, or null when none matches (its key prefix). */
    public CompletableFuture<RedisMessage> hook(List<byte[]> command) {
        String name = new String(command.getFirst(), StandardCharsets.UTF_8);
        String key = command.size() > 1 ? new String(command.get(1), StandardCharsets.UTF_8) : null;
        for (Registration r : commandRegistrations) {
            String hook = r.stringArg("hook");
            String prefix = r.stringArg("keyprefix");
            if (hook != null && hook.equalsIgnoreCase(name) && !r.isPaused()
                    && (prefix == null || (key != null && key.startsWith(prefix)))) {
                List<String> args = new ArrayList<>(command.size());
                command.forEach(a -> args.add(new String(a, StandardCharsets.UTF_8)));
                return runCommand(r, args, new HostApi.HookCall(name), false);
            }
        }
        return null;
    }

    private CompletableFuture<RedisMessage> runCommand(Registration r, List<String> args, HostApi.HookCall hook,
                                                       boolean noAsync) {
        Execution e;
        synchronized (r) {
            if (r.isUnregistered()) {
                return CompletableFuture.completedFuture(Replies.error("ERR subcommand not found"));
            }
            e = newExecution(r);
            r.triggered(1);
        }
        List<Object> payload = java.util.Collections.singletonList(args.toArray());
        long limit = engine.config().getLong(GearsConfig.INLINE_EXECUTION_MICROS) * 1000;
        // RG.TRIGGER of a registration whose calls are short runs right here, on the client's event loop,
        // when no other thread is inside its context; hooks (which call on into Redis) always hand off.
        boolean ranInline = hook == null && limit > 0 && r.inline.open()
                && engine.inline(r.session().interpreter(), () -> timedCommand(r, e, payload, null, noAsync, limit, true)) != null;
        if (!ranInline) {
            engine.submit(() -> timedCommand(r, e, payload, hook, noAsync, limit, false));
        }
        return e.done().thenApply(x -> commandReply(x, hook));
    }

    /** Runs a command trigger and records its time on the registration's InlineGate; returns true. */
    private boolean timedCommand(Registration r, Execution e, List<Object> payload, HostApi.HookCall hook,
                                 boolean noAsync, long inlineLimitNanos, boolean inline) {
        long start = System.nanoTime();
        runInPython(r, List.of(e), payload, hook, noAsync, this::trigger);
        engine.inlineRan(r.inline, System.nanoTime() - start, inlineLimitNanos, inline);
        return true;
    }

    private static RedisMessage commandReply(Execution e, HostApi.HookCall hook) {
        if (hook != null && hook.overridden()) {
            return Replies.of(hook.override());
        }
        if (!e.errors().isEmpty()) {
            return Replies.error(e.errors().getFirst());
        }
        if (hook != null && e.results().size() == 1) {
            return Replies.of(e.results().getFirst());
        }
        List<RedisMessage> out = new ArrayList<>(e.results().size());
        e.results().forEach(x -> out.add(Replies.of(x)));
        return Replies.array(out);
    }

    // ------------------------------------------------------------------ management

    /** RG.PAUSEREGISTRATIONS / RG.UNPAUSEREGISTRATIONS of sessions; unknown session ids are an error. */
    public String pause(List<String> sessionIds, boolean pause) {
        for (String id : sessionIds) {
            if (engine.sessions().get(id) == null) {
                return "ERR session " + id + " does not exist";
            }
        }
        for (String id : sessionIds) {
            for (Registration r : of(engine.sessions().get(id))) {
                r.paused(pause);
            }
        }
        return null;
    }

    public void clearStats() {
        all().forEach(Registration::clearStats);
    }

    public void close() {
        consumers.values().forEach(StreamConsumer::stop);
        KeyEvents events = keyEvents;
        if (events != null) {
            events.close();
        }
    }
}
