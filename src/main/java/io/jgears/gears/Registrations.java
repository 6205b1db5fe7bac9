package io.jgears.gears;

import io.jgears.engine.HostApi;
import io.jgears.engine.Lanes;
import io.jgears.readers.KeyEvents;
import io.jgears.readers.StreamConsumer;
import io.jgears.redis.CommandSpecs;
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
    /**
     * The most key events of one registration taken at once: one MGET for their values, then each lane's
     * share in one crossing into Python. Large enough that KeyEventConcurrency lanes each get a run of
     * events (at 256 the lanes waited on Redis between short runs: 2048 measured 1.5x faster).
     */
    private static final int KEY_EVENT_BATCH = 2048;

    private final GearsEngine engine;
    private final LinkedHashMap<String, Registration> byId = new LinkedHashMap<>();
    private final Map<Registration, StreamConsumer> consumers = new ConcurrentHashMap<>();

    /** A stream registration's consumer group and the streams it reads (empty for other registrations). */
    public Map.Entry<String, List<String>> streamsOf(Registration r) {
        StreamConsumer c = consumers.get(r);
        return c == null ? Map.entry("", List.of()) : Map.entry(c.group(), c.streamNames());
    }
    /** Active registrations by reader, read on the notification thread without locking. */
    private volatile List<Registration> keyRegistrations = List.of();
    private volatile List<Registration> streamRegistrations = List.of();
    private volatile List<Registration> commandRegistrations = List.of();
    /** The same by prefix: Redis matches a key event to the prefixes it was subscribed for (see KeyEvents). */
    private volatile Map<String, List<Registration>> keyRegistrationsByPrefix = Map.of();
    private volatile Map<String, List<Registration>> streamRegistrationsByPrefix = Map.of();
    private volatile KeyEvents keyEvents;
    private final AtomicInteger syncCount = new AtomicInteger();
    /** CommandReader hooks by lower-case command, the one registered last first: it runs first, call_next goes on down. */
    private volatile Map<String, List<Registration>> hookChains = Map.of();
    /** KeysReader registrations with commands=[...], by lower-case command. */
    private volatile Map<String, List<Registration>> keyCommandHooks = Map.of();
    /** Hooked commands (KeysReader commands=) whose key events are being gathered (see {@link #watchKeys}). */
    private final java.util.concurrent.CopyOnWriteArrayList<KeyCapture> captures = new java.util.concurrent.CopyOnWriteArrayList<>();
    private volatile CommandSpecs specs;

    Registrations(GearsEngine engine) {
        this.engine = engine;
    }

    // ------------------------------------------------------------------ lifecycle

    /**
     * A register() while its script loads: inactive until the script has loaded (see {@link #activate}).
     * {@code id}: its id on every shard of a cluster (see ClusterRunIds), or null for the next one here.
     */
    // Public: io.jgears.engine.HostApi creates a register() call's registration.
    public Registration create(Session session, String reader, String description, String mode, Map<String, Object> args,
                        List<List<String>> plan, int index, String id) {
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
        Registration r = new Registration(id != null ? id : engine.executions().nextId(), session, kind, reader, description, mode, args, plan, index);
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

    // Public: io.jgears.engine.HostApi activates a register() made outside a script load.
    public void activate(Session session, Registration r) {
        synchronized (r) {
            if (r.isActive() || r.isUnregistered()) {
                return;
            }
            r.activate();
        }
        if (r.kind() == Registration.Kind.STREAM) {
            startConsumer(r);
        }
        knowHookedCommands(r);
        if (needsBarrier(r)) {
            syncCount.incrementAndGet();
        }
        if (r.kind() != Registration.Kind.COMMAND) {
            ensureKeyEvents();
        }
        ensureRoleWatch();
        refreshIndexes();
    }

    /** Asks Redis about the commands a registration hooks now, not on a client's event loop later. */
    private void knowHookedCommands(Registration r) {
        try {
            if (r.stringArg("hook") != null) {
                specs().get(r.stringArg("hook"));
            }
            if (r.listArg("commands") != null) {
                r.listArg("commands").forEach(c -> specs().get(c));
            }
        } catch (RuntimeException e) {
            log.warn("registration {}: could not read COMMAND INFO of its hooked commands: {}", r.id(), e.getMessage());
        }
    }

    private static boolean isSyncKeys(Registration r) {
        return "sync".equals(r.mode()) && (r.kind() == Registration.Kind.KEYS || r.kind() == Registration.Kind.KEYS_ONLY);
    }

    /**
     * Whether a command through jgears waits for this registration to handle its notifications: sync key
     * registrations run them first, and stream registrations count their triggers before the XADD's
     * reply, as RedisGears does inside the XADD (sync ones also run the executions).
     */
    private static boolean needsBarrier(Registration r) {
        return isSyncKeys(r) || r.kind() == Registration.Kind.STREAM;
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
        hookChains = hookChains(commands);
        keyCommandHooks = keyCommandHooks(keys);
        engine.redis().avoidKeyMisses(keys.stream().anyMatch(Registrations::mayFireOnKeymiss));
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

    private static Map<String, List<Registration>> hookChains(List<Registration> commands) {
        Map<String, List<Registration>> out = new java.util.HashMap<>();
        for (Registration r : commands) {
            String hook = r.stringArg("hook");
            if (hook != null) {
                out.computeIfAbsent(hook.toLowerCase(Locale.ROOT), h -> new ArrayList<>()).addFirst(r);
            }
        }
        out.replaceAll((h, list) -> List.copyOf(list));
        return Map.copyOf(out);
    }

    private static Map<String, List<Registration>> keyCommandHooks(List<Registration> keys) {
        Map<String, List<Registration>> out = new java.util.HashMap<>();
        for (Registration r : keys) {
            List<String> commands = r.listArg("commands");
            if (commands != null) {
                for (String c : commands) {
                    List<Registration> list = out.computeIfAbsent(c.toLowerCase(Locale.ROOT), h -> new ArrayList<>());
                    if (!list.contains(r)) {
                        list.add(r);
                    }
                }
            }
        }
        out.replaceAll((h, list) -> List.copyOf(list));
        return Map.copyOf(out);
    }

    /** Whether a key registration takes keymiss events (no eventTypes, or keymiss among them). */
    private static boolean mayFireOnKeymiss(Registration r) {
        List<String> types = r.listArg("eventTypes");
        return types == null || types.stream().anyMatch("keymiss"::equalsIgnoreCase);
    }

    /** Event types match case-insensitively, as in RedisGears. */
    private static boolean wantsEvent(Registration r, String event) {
        List<String> types = r.listArg("eventTypes");
        if (types == null) {
            return true;
        }
        for (String t : types) {
            if (t.equalsIgnoreCase(event)) {
                return true;
            }
        }
        return false;
    }

    private CommandSpecs specs() {
        CommandSpecs s = specs;
        if (s == null) {
            s = specs = new CommandSpecs(engine.redis());
        }
        return s;
    }

    /**
     * RedisGears' refusals of a register() that hooks commands, checked before it is created: a
     * CommandReader hook= on a command Redis does not have, one not allowed in scripts (MULTI, EXEC,
     * EVAL...), one with movable keys by keyprefix, or over a non-sync hook; a KeysReader commands=[...]
     * entry likewise. Null when the registration may go ahead.
     */
    public String refusal(Session session, String reader, String mode, Map<String, Object> args) {
        if (reader.equals("CommandReader") && args.get("hook") != null) {
            String hook = (String) args.get("hook");
            String refused = specs().hookRefusal(hook, (String) args.get("keyprefix"));
            if (refused != null) {
                return refused;
            }
            Registration head = null;
            for (Registration r : all()) {
                if (r.isActive() && !r.isUnregistered() && r.session() != session.replacing()
                        && r.kind() == Registration.Kind.COMMAND && hook.equalsIgnoreCase(r.stringArg("hook"))) {
                    head = r;  // the last one registered: the one a new hook would run before
                }
            }
            if (head != null && !"sync".equals(head.mode())) {
                return "Can not override a none sync registration";
            }
            for (Registration r : of(session)) {
                if (!r.isActive() && r.kind() == Registration.Kind.COMMAND && hook.equalsIgnoreCase(r.stringArg("hook"))
                        && !"sync".equals(r.mode())) {
                    return "Can not override a none sync registration which already created on this session";
                }
            }
        } else if ((reader.equals("KeysReader") || reader.equals("KeysOnlyReader")) && args.get("commands") instanceof List<?> commands) {
            for (Object c : commands) {
                String refused = specs().keysHookRefusal(String.valueOf(c), String.valueOf(args.get("prefix")));
                if (refused != null) {
                    return refused;
                }
            }
        }
        return null;
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
        StreamConsumer consumer = new StreamConsumer(engine.redis(), r.session().user(), settings, new StreamConsumer.Host() {
            @Override
            public Object trigger() {
                return triggerStreamExecution(r);
            }

            @Override
            public CompletableFuture<StreamConsumer.Outcome> run(Object execution, String stream, List<Object[]> entries) {
                return runStreamBatch(r, (Execution) execution, stream, entries);
            }

            @Override
            public void abortNotStarted(Object execution) {
                ((Execution) execution).abort("Execution was aborted");
            }

            @Override
            public boolean master() {
                return master;
            }

            @Override
            public void lag(long nanos) {
                r.lag(nanos);
            }
        }, engine.scheduler(), r.id());
        consumers.put(r, consumer);
        r.streamStatus(consumer::status);
        ensureRoleWatch();
        consumer.start();
    }

    /** Whether Redis is a master, checked every second once a registration exists (and told by a cluster's topology). */
    private volatile boolean master = true;
    private volatile java.util.concurrent.ScheduledFuture<?> roleWatch;

    /** Whether the local Redis is a master: a replica's jgears runs no registration or time event. */
    public boolean redisIsMaster() {
        if (roleWatch == null) {
            ensureRoleWatch();
        }
        return master;
    }

    /** The local Redis' role as a cluster topology refresh saw it (the role watch sees it within a second too). */
    public void redisRole(boolean isMaster) {
        roleChanged(isMaster);
    }

    private synchronized void ensureRoleWatch() {
        if (roleWatch == null) {
            master = isMaster();
            roleWatch = engine.scheduler().scheduleWithFixedDelay(this::checkRole, 1, 1, java.util.concurrent.TimeUnit.SECONDS);
        }
    }

    private boolean isMaster() {
        try {
            List<?> role = (List<?>) engine.redis().execute(List.of("ROLE".getBytes()));
            Object first = role.getFirst();
            String kind = first instanceof byte[] b ? new String(b, StandardCharsets.UTF_8) : String.valueOf(first);
            return kind.equals("master");
        } catch (RuntimeException e) {
            return master;  // Redis unreachable: keep the last answer
        }
    }

    private void checkRole() {
        roleChanged(isMaster());
    }

    private synchronized void roleChanged(boolean isMaster) {
        boolean was = master;
        master = isMaster;
        if (master && !was) {
            log.info("Redis became a master: registrations run again, stream registrations read their streams from their groups' pending entries");
            consumers.values().forEach(StreamConsumer::becameMaster);
        } else if (!master && was) {
            log.info("Redis is a replica: registrations stay dormant until it is a master");
        }
    }

    /** Stable across restarts and upgrades (same session id, same register() position): pending entries survive. */
    public static String groupName(Registration r) {
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
        if (needsBarrier(r) && r.isActive()) {
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
        if (!e.countOnce()) {
            return;
        }
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
                HostApi.HookCall outer = host.beginHook(hook);
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
                    host.endHook(outer);
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
        Lanes onCarrier = host.lanes();
        if (onCarrier != null) {
            runOnCarrier(r, onCarrier, lanes, payloads, trigger);
            return;
        }
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

    /**
     * Runs lanes of executions at once inside the session's context, each on a virtual thread of the
     * context's carrier (see {@link Lanes}): their execute() round trips go out pipelined, and switching
     * from one lane to the next costs no OS wake-up.
     */
    private void runOnCarrier(Registration r, Lanes carrier, List<List<Execution>> lanes, List<List<Object>> payloads, Trigger trigger) {
        Session session = r.session();
        HostApi host = (HostApi) session.interpreter().host();
        List<Integer> started = null;
        try {
            started = engine.callPython(session, GearsConfig.REGISTRATION_TIMEOUT, () -> session.enter(si -> {
                List<java.util.function.Supplier<Integer>> actions = new ArrayList<>(lanes.size());
                for (int i = 0; i < lanes.size(); i++) {
                    List<Execution> lane = lanes.get(i);
                    List<Object> payload = payloads.get(i);
                    actions.add(() -> {
                        try {
                            return trigger.call(si, r, lane, payload);
                        } finally {
                            host.closeAtomic();  // an interrupted lane does not leave its thread inside a MULTI
                            si.releaseGilIfHeld();
                        }
                    });
                }
                // The lanes' allocations count to the carrier's thread, which the heap guard can read.
                return carrier.run(actions, thread -> engine.trackThread(session, thread));
            }));
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
        // Written by a sync key execution (see runSyncQuietly): hidden from key registrations only. A stream
        // registration still sees the XADD, as RedisGears' StreamReader sees a sync execution's XADD (the
        // write-behind pattern: a sync key registration feeds the stream a StreamReader drains).
        boolean quiet = !quietKeys.isEmpty() && quietKeys.containsKey(new String(key, StandardCharsets.UTF_8));
        // A replica sees the keyspace events of replicated writes: as in RedisGears, nothing runs there.
        for (Registration r : quiet || !master ? List.<Registration>of() : keyRegistrationsByPrefix.getOrDefault(prefix, List.<Registration>of())) {
            if (r.isPaused()) {
                continue;
            }
            if (r.listArg("commands") != null) {
                // Fires only for the events of the commands it hooks, while one runs (see watchKeys).
                if (!captures.isEmpty() && wantsEvent(r, event)) {
                    for (KeyCapture c : captures) {
                        c.offer(r, event, key);
                    }
                }
                continue;
            }
            if (wantsEvent(r, event)) {
                r.received.incrementAndGet();
                r.events.add(new Object[]{event, key, System.nanoTime()});
                if (r.draining.compareAndSet(false, true)) {
                    engine.submit(() -> drain(r));
                }
            }
        }
        if (event.equals("xadd")) {
            for (Registration r : streamRegistrationsByPrefix.getOrDefault(prefix, List.of())) {
                StreamConsumer c = consumers.get(r);
                if (c != null) {
                    r.received.incrementAndGet();
                    c.xadd(new String(key, StandardCharsets.UTF_8), "sync".equals(r.mode()), () -> r.processed(1));
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
            long now = System.nanoTime();
            long waited = 0;
            for (Object[] e : batch) {
                waited += e.length > 2 ? now - (long) e[2] : 0;
            }
            r.eventLag(waited, batch.size(), batch.getFirst().length > 2 ? now - (long) batch.getFirst()[2] : 0);
            List<Execution> created = new ArrayList<>(batch.size());
            try {
                runKeyBatch(r, batch, created);
            } catch (RuntimeException e) {
                log.warn("registration {}: a batch of {} key events failed: {}", r.id(), batch.size(), e.getMessage());
                // Executions already created count themselves when they end (end them now); the events that
                // never became one are counted here, once: the sync barrier must not run ahead of them.
                for (Execution x : created) {
                    engine.failed(x, e.getMessage());
                }
                if (created.size() < batch.size()) {
                    r.processed(batch.size() - created.size() - accountedSkips.get());
                }
            } finally {
                accountedSkips.remove();
            }
        }
    }

    /** Events of the running batch that runKeyBatch counted as processed itself (skipped ones). */
    private final ThreadLocal<Integer> accountedSkips = ThreadLocal.withInitial(() -> 0);

    private void runKeyBatch(Registration r, List<Object[]> batch, List<Execution> created) {
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
                accountedSkips.set(batch.size());
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
                created.add(e);
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
        accountedSkips.set(skipped);
        List<List<Execution>> used = new ArrayList<>(lanes.length);
        List<List<Object>> usedPayloads = new ArrayList<>(lanes.length);
        for (int i = 0; i < lanes.length; i++) {
            if (lanes[i] != null) {
                used.add(lanes[i]);
                usedPayloads.add(payloads[i]);
            }
        }
        if (used.size() == 1 && "sync".equals(r.mode())) {
            runSyncQuietly(() -> runInPython(r, used.getFirst(), usedPayloads.getFirst(), null, this::triggerKeys));
        } else if (used.size() == 1) {
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
            for (Registration r : streamRegistrations) {
                waits.add(r.processedUpTo(r.received.get()));
            }
            return CompletableFuture.allOf(waits.toArray(CompletableFuture[]::new));
        });
    }

    /**
     * Keys that sync key executions write, while their events may still arrive. On RedisGears a sync
     * execution runs inside Redis' notification, and notifications its own writes cause are not delivered
     * to any registration; jgears drops the events of those keys until Redis has sent them all.
     */
    private final ConcurrentHashMap<String, AtomicInteger> quietKeys = new ConcurrentHashMap<>();
    /** The keys execute() wrote on this thread during a sync key execution (null outside one). */
    private static final ThreadLocal<List<String>> SYNC_WRITES = new ThreadLocal<>();

    private void runSyncQuietly(Runnable run) {
        List<String> writes = new ArrayList<>();
        SYNC_WRITES.set(writes);
        try {
            run.run();
        } finally {
            SYNC_WRITES.remove();
            KeyEvents events = keyEvents;
            if (!writes.isEmpty()) {
                CompletableFuture<Void> sent = events == null ? CompletableFuture.completedFuture(null) : events.barrier();
                sent.whenComplete((x, error) -> writes.forEach(k ->
                        quietKeys.computeIfPresent(k, (key, n) -> n.decrementAndGet() <= 0 ? null : n)));
            }
        }
    }

    /** execute() is about to send this command: inside a sync key execution, its keys' events are dropped. */
    public void beforeExecute(List<byte[]> command) {
        List<String> writes = SYNC_WRITES.get();
        if (writes == null || command.size() < 2) {
            return;
        }
        CommandSpecs.Spec spec = specs().get(new String(command.getFirst(), StandardCharsets.UTF_8));
        List<String> keys = spec != null && !spec.movableKeys() ? spec.keys(command) : strings(command.subList(1, command.size()));
        for (String k : keys) {
            quietKeys.computeIfAbsent(k, key -> new AtomicInteger()).incrementAndGet();
            writes.add(k);
        }
    }

    // ------------------------------------------------------------------ streams

    /** A stream execution, counted as triggered; it starts when the consumer's earlier ones are done. */
    private Execution triggerStreamExecution(Registration r) {
        Execution e = engine.executions().createTriggered(r);
        e.done().whenComplete((x, error) -> finished(r, e));
        r.triggered(1);
        return e;
    }

    private CompletableFuture<StreamConsumer.Outcome> runStreamBatch(Registration r, Execution e, String stream, List<Object[]> entries) {
        if (e.isFinished()) {
            return CompletableFuture.completedFuture(new StreamConsumer.Outcome(true, null));
        }
        e.running();
        List<Object> payload = java.util.Collections.singletonList(new Object[]{stream, entries.toArray()});
        engine.submit(() -> runInPython(r, List.of(e), payload, null, this::trigger));
        return e.done().thenApply(x -> {
            // Counted before the consumer hears the outcome (which may release a sync XADD's reply): dependents
            // of one future run in no set order, and a client reading RegistrationData must see this batch.
            finished(r, x);
            return new StreamConsumer.Outcome(x.status() == Execution.Status.ABORTED,
                    x.errors().isEmpty() ? null : x.errors().getFirst());
        });
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
                    return CompletableFuture.completedFuture(Replies.error(NON_SYNC_BLOCKED));
                }
                if (r.isPaused()) {
                    return CompletableFuture.completedFuture(Replies.error("ERR registration " + r.id() + " is paused"));
                }
                return runCommand(r, args, null, true);
            }
        }
        return CompletableFuture.completedFuture(Replies.error("ERR subcommand not found"));
    }

    /** RedisGears' answer to a hook whose execution gave no result or several. */
    static final String EXACTLY_ONE = "Command hook must return exactly one result";
    /** RedisGears' answer to a non-sync hook of a command that may not block (execute(), MULTI). */
    public static final String NON_SYNC_BLOCKED =
            "ERR can not run a non-sync execution inside a MULTI/LUA (blocking is not allowed) or on loading.";

    /** Whether a registration hooks this command (upper-case name): a CommandReader hook or KeysReader commands=. */
    public boolean hooks(String upperName) {
        String name = upperName.toLowerCase(Locale.ROOT);
        // Not while Redis is a replica: the command goes to Redis as it is (which redirects a write).
        return master && (hookChains.containsKey(name) || keyCommandHooks.containsKey(name));
    }

    /** Runs the CommandReader hook chain for this command, or null when no hook matches it (its keyprefix). */
    public CompletableFuture<RedisMessage> hook(List<byte[]> command) {
        Registration r = nextHook(command, null);
        return r == null ? null : runCommand(r, strings(command), hookCall(r), false);
    }

    /**
     * execute() of a command a CommandReader hook matches: the hook runs here, inside the calling execution,
     * as RedisGears' hooks see the commands scripts run; a non-sync hook may not (it would block). Null
     * when no hook matches: Redis runs the command.
     */
    public Object[] hookExecute(List<byte[]> command) {
        if (hookChains.isEmpty()) {
            return null;
        }
        Registration r = nextHook(command, null);
        if (r == null) {
            return null;
        }
        if (!"sync".equals(r.mode())) {
            return new Object[]{Boolean.FALSE, NON_SYNC_BLOCKED};
        }
        return runNested(r, command);
    }

    /**
     * The first hook of the command's chain after {@code after} (from the top when null) whose keyprefix one
     * of the command's keys starts with; null when none does (or {@code after} is gone): Redis runs it.
     */
    private Registration nextHook(List<byte[]> command, Registration after) {
        String name = new String(command.getFirst(), StandardCharsets.UTF_8).toLowerCase(Locale.ROOT);
        List<Registration> chain = hookChains.get(name);
        if (chain == null) {
            return null;
        }
        int from = 0;
        if (after != null) {
            from = chain.indexOf(after) + 1;
            if (from == 0) {
                return null;
            }
        }
        List<String> keys = null;
        for (int i = from; i < chain.size(); i++) {
            Registration r = chain.get(i);
            if (r.isPaused() || r.isUnregistered()) {
                continue;
            }
            String prefix = r.stringArg("keyprefix");
            if (prefix == null) {
                return r;
            }
            if (keys == null) {
                CommandSpecs.Spec spec = specs().get(name);
                keys = spec == null ? List.of() : spec.keys(command);
            }
            for (String k : keys) {
                if (k.startsWith(prefix)) {
                    return r;
                }
            }
        }
        return null;
    }

    /** What call_next() in hook {@code r} runs: the next matching hook of the chain, else (null) the command. */
    private HostApi.HookCall hookCall(Registration r) {
        return HostApi.HookCall.chained(r.stringArg("hook"), command -> {
            Registration next = nextHook(command, r);
            return next == null ? null : runNested(next, command);
        });
    }

    /**
     * Runs hook {@code r} on this thread, inside the execution that called for it (call_next, execute()):
     * [true, its single result] or [false, the error]; null when it was unregistered meanwhile.
     */
    private Object[] runNested(Registration r, List<byte[]> command) {
        Execution e;
        synchronized (r) {
            if (r.isUnregistered()) {
                return null;
            }
            e = newExecution(r);
            r.triggered(1);
        }
        runInPython(r, List.of(e), java.util.Collections.singletonList(strings(command).toArray()), hookCall(r), this::trigger);
        if (!e.isFinished()) {
            return new Object[]{Boolean.FALSE, "ERR a hook run from another execution must finish without waiting"};
        }
        if (!e.errors().isEmpty()) {
            return new Object[]{Boolean.FALSE, e.errors().getFirst()};
        }
        if (e.results().size() != 1) {
            return new Object[]{Boolean.FALSE, EXACTLY_ONE};
        }
        Object v = e.results().getFirst();
        if (v instanceof String s && (s.startsWith("-") || s.startsWith("+"))) {
            return new Object[]{s.startsWith("+"), s.substring(1)};
        }
        return new Object[]{Boolean.TRUE, toHost(v)};
    }

    /** Lists as arrays, as Python reads host values. */
    private static Object toHost(Object v) {
        if (v instanceof List<?> list) {
            Object[] out = new Object[list.size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = toHost(list.get(i));
            }
            return out;
        }
        return v;
    }

    private static List<String> strings(List<byte[]> command) {
        List<String> args = new ArrayList<>(command.size());
        command.forEach(a -> args.add(new String(a, StandardCharsets.UTF_8)));
        return args;
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
        return e.done().thenApply(x -> commandReply(x, hook != null));
    }

    /** Runs a command trigger and records its time on the registration's InlineGate; returns true. */
    private boolean timedCommand(Registration r, Execution e, List<Object> payload, HostApi.HookCall hook,
                                 boolean noAsync, long inlineLimitNanos, boolean inline) {
        long start = System.nanoTime();
        runInPython(r, List.of(e), payload, hook, noAsync, this::trigger);
        engine.inlineRan(r.inline, System.nanoTime() - start, inlineLimitNanos, inline);
        return true;
    }

    /**
     * On a cluster, mode 'async': records another shard's execution of registration {@code id} forwarded
     * here at a repartition (its step {@code step}), the shard owning their keys. The steps after it run on
     * them in an execution of this shard's copy of the registration. False when it is not registered here.
     */
    public boolean forwarded(String id, int step, List<String> records) {
        Registration r = find(id);
        if (r == null) {
            return false;
        }
        Execution e;
        synchronized (r) {
            if (r.isUnregistered()) {
                return false;
            }
            e = newExecution(r);
            r.triggered(1);
        }
        List<Object> payload = java.util.Collections.singletonList(new Object[]{step, records.toArray(new String[0])});
        engine.submit(() -> runInPython(r, List.of(e), payload, null, this::triggerForwarded));
        return true;
    }

    /** Calls the runtime's _trigger_forwarded for one execution ([step, records]). Call inside the context. */
    private int triggerForwarded(io.jgears.python.SubInterpreter si, Registration r, List<Execution> executions, List<Object> payload) {
        Object[] data = (Object[]) payload.getFirst();
        boolean profile = engine.config().getLong(GearsConfig.PROFILE_EXECUTIONS) != 0;
        org.graalvm.polyglot.Value n = si.call("_trigger_forwarded", r.id(), executions.getFirst().id(), data[0], data[1], profile);
        return n.fitsInInt() ? n.asInt() : 0;
    }

    /** RG.TRIGGER answers the results as an array; a hook answers its one result (else an error). */
    private static RedisMessage commandReply(Execution e, boolean hook) {
        if (!e.errors().isEmpty()) {
            return Replies.error(e.errors().getFirst());
        }
        if (hook) {
            return e.results().size() == 1 ? Replies.record(e.results().getFirst()) : Replies.error(EXACTLY_ONE);
        }
        List<RedisMessage> out = new ArrayList<>(e.results().size());
        e.results().forEach(x -> out.add(Replies.record(x)));
        return Replies.array(out);
    }

    // ------------------------------------------------------------------ KeysReader commands=[...]

    /**
     * For a forwarded command that a KeysReader registration hooks (register(commands=[...]), a key of it
     * matching the registration's prefix): starts gathering the key events it causes, and returns what to
     * call once Redis has answered it. That runs the hooking registrations' executions for those events
     * (whatever their mode, the client waits for them, as on RedisGears) and completes with the reply one
     * of them set with override_reply(), or null to keep Redis' reply. Null when no registration hooks it.
     */
    public java.util.function.Supplier<CompletableFuture<RedisMessage>> watchKeys(List<byte[]> command) {
        return watchKeys(command, false);
    }

    /**
     * A hooked command that was queued in a MULTI, run once its EXEC has: a CommandReader hook only if it
     * is sync (it may not block there); else the command itself, whose KeysReader commands= executions run
     * and only a sync one's override_reply() counts, as on RedisGears.
     */
    public CompletableFuture<RedisMessage> hookQueued(List<byte[]> command) {
        Registration r = nextHook(command, null);
        if (r != null) {
            return "sync".equals(r.mode()) ? runCommand(r, strings(command), hookCall(r), true)
                    : CompletableFuture.completedFuture(Replies.error(NON_SYNC_BLOCKED));
        }
        var watch = watchKeys(command, true);
        CompletableFuture<RedisMessage> real = new CompletableFuture<>();
        engine.submit(() -> {
            try {
                real.complete(Replies.of(engine.redis().execute(command)));
            } catch (io.jgears.redis.RedisCommandException e) {
                real.complete(Replies.error(e.getMessage()));
            } catch (RuntimeException e) {
                real.completeExceptionally(e);
            }
        });
        if (watch == null) {
            return real;
        }
        return real.thenCompose(reply -> watch.get().thenApply(override -> override != null ? override : reply));
    }

    private java.util.function.Supplier<CompletableFuture<RedisMessage>> watchKeys(List<byte[]> command, boolean inTransaction) {
        String name = new String(command.getFirst(), StandardCharsets.UTF_8).toLowerCase(Locale.ROOT);
        List<Registration> hooked = keyCommandHooks.get(name);
        KeyEvents events = keyEvents;
        if (hooked == null || events == null) {
            return null;
        }
        CommandSpecs.Spec spec = specs().get(name);
        List<String> keys = spec == null ? List.of() : spec.keys(command);
        boolean matches = false;
        for (Registration r : hooked) {
            String prefix = r.stringArg("prefix");
            matches |= !r.isPaused() && keys.stream().anyMatch(k -> io.jgears.readers.Glob.prefixMatches(prefix, k));
        }
        if (!matches) {
            return null;
        }
        KeyCapture capture = new KeyCapture(name, java.util.Set.copyOf(keys));
        captures.add(capture);
        HostApi.HookCall hook = HostApi.HookCall.overriding(command);
        // Redis has answered: a PING on the subscription is answered after every notification it caused.
        return () -> events.barrier().thenCompose(x -> {
            captures.remove(capture);
            return runCaptured(capture.taken(), hook, inTransaction);
        }).thenApply(x -> hook.overridden() ? Replies.record(hook.override()) : null);
    }

    /** The key events one hooked command caused, for the KeysReader registrations that hook it. */
    private static final class KeyCapture {
        private final String command;
        private final java.util.Set<String> keys;
        private final List<Object[]> events = new ArrayList<>();

        KeyCapture(String command, java.util.Set<String> keys) {
            this.command = command;
            this.keys = keys;
        }

        synchronized void offer(Registration r, String event, byte[] key) {
            String k = new String(key, StandardCharsets.UTF_8);
            if (keys.contains(k) && r.listArg("commands").stream().anyMatch(command::equalsIgnoreCase)) {
                events.add(new Object[]{r, event, k});
            }
        }

        synchronized List<Object[]> taken() {
            return List.copyOf(events);
        }
    }

    /** Runs the captured events' executions, in order, on an execution thread; completes when all have ended. */
    private CompletableFuture<Void> runCaptured(List<Object[]> events, HostApi.HookCall hook, boolean inTransaction) {
        if (events.isEmpty()) {
            return CompletableFuture.completedFuture(null);
        }
        CompletableFuture<Void> all = new CompletableFuture<>();
        engine.submit(() -> {
            List<CompletableFuture<Execution>> done = new ArrayList<>();
            try {
                for (Object[] ev : events) {
                    Registration r = (Registration) ev[0];
                    // In a transaction only a sync execution may answer for the command (RedisGears cannot wait there).
                    HostApi.HookCall call = inTransaction && !"sync".equals(r.mode()) ? HostApi.HookCall.overriding(hook.fired()) : hook;
                    Execution e = runHookedEvent(r, (String) ev[1], (String) ev[2], call);
                    if (e != null) {
                        done.add(e.done());
                    }
                }
            } catch (RuntimeException ex) {
                log.warn("a hooked command's key events failed: {}", ex.getMessage());
            }
            CompletableFuture.allOf(done.toArray(CompletableFuture[]::new)).whenComplete((x, error) -> all.complete(null));
        });
        return all;
    }

    private Execution runHookedEvent(Registration r, String event, String key, HostApi.HookCall hook) {
        boolean keysOnly = r.kind() == Registration.Kind.KEYS_ONLY;
        boolean readValue = !keysOnly && r.boolArg("readValue");
        List<byte[]> keyList = List.of(key.getBytes(StandardCharsets.UTF_8));
        List<?> read = readValue ? engine.redis().readValues(r.session().user(), "0", keyList, true)
                : engine.redis().readKeys(r.session().user(), keyList, false);
        String type = String.valueOf(read.get(2));
        List<String> keyTypes = r.listArg("keyTypes");
        if ((keyTypes != null && !keyTypes.contains(type)) || "denied".equals(type)) {
            return null;
        }
        Object value = readValue ? io.jgears.redis.GenericOutput.toHost(read.get(3)) : null;
        Execution e;
        synchronized (r) {
            if (r.isUnregistered()) {
                return null;
            }
            e = newExecution(r);
            e.hook(hook);
            r.triggered(1);
        }
        runInPython(r, List.of(e), java.util.Collections.singletonList(new Object[]{event, key, type, value, readValue}),
                hook, this::triggerKeys);
        return e;
    }

    // ------------------------------------------------------------------ management

    /**
     * RG.PAUSEREGISTRATIONS / RG.UNPAUSEREGISTRATIONS of one registration, as RedisGears: only StreamReader
     * registrations can pause. Returns null, or the error text.
     */
    public String pauseRegistration(String id, boolean pause) {
        Registration r = find(id);
        if (r == null || !r.isActive()) {
            return "Execution " + id + " does not exists on shard " + engine.shardId();
        }
        StreamConsumer c = consumers.get(r);
        if (c == null) {
            return "Reader " + r.reader() + " does not support " + (pause ? "pause" : "unpause");
        }
        r.paused(pause);
        if (pause) {
            c.pause();
        } else {
            c.unpause();
        }
        return null;
    }

    /** jgears' RG.PAUSEREGISTRATIONS SESSIONS form: every registration of these sessions; unknown ids are an error. */
    public String pause(List<String> sessionIds, boolean pause) {
        for (String id : sessionIds) {
            if (engine.sessions().get(id) == null) {
                return "ERR session " + id + " does not exist";
            }
        }
        for (String id : sessionIds) {
            for (Registration r : of(engine.sessions().get(id))) {
                r.paused(pause);
                StreamConsumer c = consumers.get(r);
                if (c != null && pause) {
                    c.pause();
                } else if (c != null) {
                    c.unpause();
                }
            }
        }
        return null;
    }

    public void clearStats() {
        all().forEach(Registration::clearStats);
    }

    public void close() {
        consumers.values().forEach(StreamConsumer::stop);
        if (roleWatch != null) {
            roleWatch.cancel(false);
        }
        KeyEvents events = keyEvents;
        if (events != null) {
            events.close();
        }
    }
}
