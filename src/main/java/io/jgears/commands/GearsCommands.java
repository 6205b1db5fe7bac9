package io.jgears.commands;

import io.jgears.gears.ClusterRunIds;
import io.jgears.gears.Execution;
import io.jgears.gears.GearsConfig;
import io.jgears.gears.GearsEngine;
import io.jgears.gears.Registration;
import io.jgears.gears.Registrations;
import io.jgears.gears.Session;
import io.jgears.gears.Sessions;
import io.jgears.gears.ShardFanOut;
import io.jgears.gears.TimeEvent;
import io.jgears.server.ClientInfo;
import io.jgears.server.LocalCommands;
import io.jgears.server.Replies;
import io.netty.handler.codec.redis.RedisMessage;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryUsage;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/** The RG.* commands. Quick ones are answered inline; anything that may wait runs off the event loop. */
public final class GearsCommands implements LocalCommands, GearsEngine.ModuleCalls {
    private final GearsEngine engine;
    /** For commands that may block briefly (abort waits for the interrupt to land). */
    private final ExecutorService control = Executors.newVirtualThreadPerTaskExecutor();

    private final SlowLog slowLog;
    private final LatencyMonitor latency;

    public GearsCommands(GearsEngine engine) {
        this.engine = engine;
        this.slowLog = new SlowLog(engine.redis());
        this.latency = new LatencyMonitor(engine.redis());
        engine.commands(this);
    }

    /** Messages of RedisGears for RG.* commands run where blocking is not allowed (MULTI, a module call). */
    static final String NO_GEARS_HERE = "Can not run gears inside a multi exec, lua, or when blocking is not allowed";
    static final String NO_NON_SYNC_HERE = Registrations.NON_SYNC_BLOCKED;

    /**
     * An RG.* command where blocking is not allowed: inside MULTI (run at EXEC) or from execute() in
     * Python. RG.PYEXECUTE is refused, a trigger runs only for a sync registration and its steps may not
     * wait; the rest is as usual.
     */
    public CompletableFuture<RedisMessage> executeNonBlocking(List<byte[]> args) {
        String name = str(args.getFirst()).toUpperCase(Locale.ROOT);
        return switch (name) {
            case "RG.PYEXECUTE" -> done(Replies.error(NO_GEARS_HERE));
            case "RG.GETRESULTSBLOCKING", "RG.CLEARREGISTRATIONSSTATS", "RG.PAUSEREGISTRATIONS", "RG.UNPAUSEREGISTRATIONS" ->
                    done(Replies.error("ERR Blocking module command called from transaction"));
            case "RG.TRIGGER", "RG.TRIGGERONKEY" -> {
                try {
                    arity(args, name.equals("RG.TRIGGER") ? 2 : 3, Integer.MAX_VALUE);
                } catch (ArityException e) {
                    yield done(Replies.error("ERR wrong number of arguments for '" + name.toLowerCase(Locale.ROOT) + "' command"));
                }
                List<String> targs = new ArrayList<>();
                for (int i = 1; i < args.size(); i++) {
                    targs.add(str(args.get(i)));
                }
                yield engine.registrations().triggerNoAsync(targs);
            }
            default -> execute(null, args);
        };
    }

    @Override
    public CompletableFuture<RedisMessage> executeInTransaction(ClientInfo client, List<byte[]> args) {
        return executeNonBlocking(args);
    }

    @Override
    public boolean handles(String upperName) {
        // SLOWLOG and LATENCY too: jgears' own slow RG.* commands are merged into Redis' entries.
        return upperName.startsWith("RG.") || upperName.equals("SLOWLOG") || upperName.equals("LATENCY");
    }

    @Override
    public CompletableFuture<RedisMessage> execute(ClientInfo client, List<byte[]> args) {
        String name = str(args.getFirst()).toUpperCase(Locale.ROOT);
        if (slowLog.claimRefresh()) {
            control.execute(() -> {
                slowLog.refresh();
                latency.refresh();
            });
        }
        if (name.equals("SLOWLOG")) {
            return CompletableFuture.supplyAsync(() -> slowLog.command(args), control);
        }
        if (name.equals("LATENCY")) {
            return CompletableFuture.supplyAsync(() -> latency.command(args), control);
        }
        long start = System.nanoTime();
        CompletableFuture<RedisMessage> reply = run(client, args, name);
        String address = clientAddress(client);
        reply.whenComplete((r, e) -> {
            long micros = (System.nanoTime() - start) / 1000;
            slowLog.record(args, micros, address);
            latency.record(micros);
        });
        return reply;
    }

    /** "ip:port" as Redis shows a client (Netty gives "/ip:port" or "host/ip:port"). */
    private static String clientAddress(ClientInfo client) {
        if (client == null) {
            return "?:0";  // execute('RG.…') from Python: Redis shows a module's own calls so
        }
        String a = client.remoteAddress();
        return a == null ? "" : a.substring(a.indexOf('/') + 1);
    }

    /**
     * {@code RG.JGEARSSHARDEXECUTE runId idPrefix idBase sessionId keep user code options...}: this shard's
     * part of a coordinator's run; what the script creates takes the ids the coordinator chose
     * (ClusterRunIds), and it runs as the ACL user the client authenticated as there ("" for jgears' own).
     */
    private CompletableFuture<RedisMessage> shardExecute(List<byte[]> args, ClientInfo client) {
        List<byte[]> rest = new ArrayList<>(args);
        String runId = str(rest.remove(1));
        ClusterRunIds ids;
        try {
            ids = new ClusterRunIds(str(rest.remove(1)), Long.parseLong(str(rest.remove(1))), str(rest.remove(1)),
                    str(rest.remove(1)).equals("1"));
        } catch (NumberFormatException e) {
            return done(Replies.error("ERR bad id block"));
        }
        String user = str(rest.remove(1));
        // The name only: the password stays with the coordinator; its commands are checked with ACL DRYRUN
        // here (a cluster's nodes have the same ACL users), as a restored session's are.
        return abandonOnError(pyExecute(rest, client, "shard", runId, ids,
                user.isEmpty() ? null : new io.jgears.redis.RedisUser(user, null)), runId);
    }

    private final java.util.concurrent.atomic.AtomicLong runSequence = new java.util.concurrent.atomic.AtomicLong();

    /**
     * RG.PYEXECUTE on a cluster: this shard coordinates the run. Its cluster-wide name addresses the
     * shards' repartition batches.
     */
    private CompletableFuture<RedisMessage> coordinatorExecute(List<byte[]> args, ClientInfo client) {
        String runId = engine.shardId() + "-r" + runSequence.incrementAndGet() + "-" + Long.toHexString(System.nanoTime());
        return abandonOnError(pyExecute(args, client, "coordinator", runId, null, null), runId);
    }

    /** A script that could not run here: the other shards do not wait for this shard's repartition records. */
    private CompletableFuture<RedisMessage> abandonOnError(CompletableFuture<RedisMessage> reply, String runId) {
        return reply.whenComplete((r, e) -> {
            if (e != null || r instanceof io.netty.handler.codec.redis.ErrorRedisMessage) {
                String why = e != null ? String.valueOf(e.getMessage())
                        : ((io.netty.handler.codec.redis.ErrorRedisMessage) r).content();
                engine.fanOut().abandon(runId, "its script did not run: " + why);
            }
        });
    }

    /** Another shard's records of an execution of a registration in mode 'async' (see ShardFanOut.SHARD_FORWARD). */
    private RedisMessage shardForward(List<byte[]> args) {
        String registration = str(args.get(1));
        int step;
        try {
            step = Integer.parseInt(str(args.get(2)));
        } catch (NumberFormatException e) {
            return Replies.error("ERR bad step");
        }
        List<String> records = new ArrayList<>(args.size() - 4);
        for (int i = 4; i < args.size(); i++) {
            records.add(new String(args.get(i), StandardCharsets.ISO_8859_1));  // base64 text
        }
        return engine.registrations().forwarded(registration, step, records) ? Replies.OK
                : Replies.error("registration " + registration + " is not registered on shard " + engine.shardId()
                + ": " + records.size() + " record(s) of the repartition are dropped");
    }

    /** Another shard's records of a repartition, or its word that it sends none (see ShardFanOut.SHARD_RECORDS). */
    private RedisMessage shardRecords(List<byte[]> args) {
        String runId = str(args.get(1));
        int phase;
        try {
            phase = Integer.parseInt(str(args.get(2)));
        } catch (NumberFormatException e) {
            return Replies.error("ERR bad phase");
        }
        String from = str(args.get(3));
        String kind = str(args.get(4));
        if (kind.equals("ABANDON")) {
            engine.fanOut().abandoned(runId, phase, from, args.size() > 5 ? str(args.get(5)) : "");
            return Replies.OK;
        }
        List<String> payloads = new ArrayList<>(args.size() - 5);
        for (int i = 5; i < args.size(); i++) {
            payloads.add(new String(args.get(i), StandardCharsets.ISO_8859_1));  // base64 text
        }
        engine.fanOut().received(runId, phase, from, payloads, !kind.equals("MORE"));
        return Replies.OK;
    }

    private CompletableFuture<RedisMessage> run(ClientInfo client, List<byte[]> args, String name) {
        try {
            return switch (name) {
                case "RG.PYEXECUTE" -> engine.fanOut() == null ? pyExecute(args, client, "none", null, null, null)
                        : coordinatorExecute(args, client);
                case ShardFanOut.SHARD_EXECUTE -> engine.fanOut() == null || args.size() < 8
                        ? done(Replies.error("ERR unknown command '" + str(args.getFirst()) + "'"))
                        : shardExecute(args, client);
                case ShardFanOut.SHARD_FORWARD -> engine.fanOut() == null || args.size() < 5
                        ? done(Replies.error("ERR unknown command '" + str(args.getFirst()) + "'"))
                        : done(shardForward(args));
                case ShardFanOut.SHARD_LOCAL -> engine.fanOut() == null || args.size() < 2
                        ? done(Replies.error("ERR unknown command '" + str(args.getFirst()) + "'"))
                        : run(null, args.subList(1, args.size()), str(args.get(1)).toUpperCase(Locale.ROOT));
                case ShardFanOut.SHARD_RECORDS -> engine.fanOut() == null || args.size() < 5
                        ? done(Replies.error("ERR unknown command '" + str(args.getFirst()) + "'"))
                        : done(shardRecords(args));
                case "RG.GETRESULTS" -> done(getResults(args));
                case "RG.GETRESULTSBLOCKING" -> getResultsBlocking(args);
                case "RG.DUMPEXECUTIONS" -> done(dumpExecutions(args));
                case "RG.DROPEXECUTION" -> onEveryShard(client, args, dropExecution(args));
                case "RG.GETEXECUTION" -> getExecution(client, args);
                case "RG.DUMPTIMEEVENTS" -> done(dumpTimeEvents(args));
                case "RG.UNREGISTERTE" -> done(unregisterTimeEvent(args));
                case "RG.ABORTEXECUTION" -> abortExecution(args).thenCompose(r -> onEveryShard(client, args, r));
                case "RG.PYDUMPSESSIONS" -> done(dumpSessions(args));
                case "RG.PYPROFILE" -> profile(args);
                case "RG.PYSTATS" -> done(pyStats(args));
                case "RG.PYDUMPREQS" -> done(noArgs(args, dumpRequirements()));
                case "RG.PYEXPORTREQ" -> exportRequirement(args);
                case "RG.PYIMPORTREQ" -> importRequirement(args);
                case "RG.CONFIGGET" -> done(configGet(args));
                case "RG.CONFIGSET" -> done(configSet(args));
                // On a cluster the client's path answers these in front of this class; execute() from Python gets here.
                // Outside a cluster, as RedisGears answers them: any arguments, a bulk string, a plain OK.
                case "RG.INFOCLUSTER", "RG.REFRESHCLUSTER" -> engine.clusterCommands() != null
                        ? engine.clusterCommands().execute(null, args)
                        : done(name.equals("RG.INFOCLUSTER") ? Replies.bulk("no cluster mode") : Replies.OK);
                case "RG.DUMPREGISTRATIONS" -> done(dumpRegistrations(args));
                case "RG.UNREGISTER" -> onEveryShard(client, args, unregister(args));
                case "RG.PAUSEREGISTRATIONS" -> onEveryShard(client, args, pause(args, true));
                case "RG.UNPAUSEREGISTRATIONS" -> onEveryShard(client, args, pause(args, false));
                case "RG.CLEARREGISTRATIONSSTATS" -> {
                    arity(args, 1, 1);
                    engine.registrations().clearStats();
                    yield done(Replies.OK);
                }
                case "RG.TRIGGER" -> trigger(args, 2);
                case "RG.TRIGGERONKEY" -> trigger(args, 3);
                default -> done(Replies.error("ERR unknown command '" + str(args.getFirst()) + "'"));
            };
        } catch (ArityException e) {
            return done(Replies.error("ERR wrong number of arguments for '" + name.toLowerCase(Locale.ROOT) + "' command"));
        }
    }

    /**
     * On a cluster, a client's command that acts on every shard (registration and execution ids are the
     * same on every shard): {@code here} is this shard's reply; the others run it too (RG.JGEARSSHARDLOCAL),
     * and the reply waits for them. It is this shard's reply unless only another shard found what it names.
     * From Python (execute()) or inside MULTI ({@code client} null) it acts on this shard only.
     */
    private CompletableFuture<RedisMessage> onEveryShard(ClientInfo client, List<byte[]> args, RedisMessage here) {
        ShardFanOut fanOut = engine.fanOut();
        if (fanOut == null || client == null) {
            return done(here);
        }
        return everyReply(fanOut.commandOtherShards(args)).thenApply(others -> {
            if (!(here instanceof io.netty.handler.codec.redis.ErrorRedisMessage)) {
                return here;
            }
            for (Object r : others) {
                if (!(r instanceof Throwable)) {
                    return Replies.of(r);
                }
            }
            return here;
        });
    }

    /**
     * The other shards' replies once all have come; a shard's error (it does not have what the id names, or
     * it is unreachable) is there as its exception.
     */
    private static CompletableFuture<List<Object>> everyReply(List<CompletableFuture<Object>> replies) {
        List<CompletableFuture<Object>> settled = replies.stream().map(f -> f.exceptionally(e -> e)).toList();
        return CompletableFuture.allOf(settled.toArray(CompletableFuture[]::new))
                .thenApply(v -> settled.stream().map(CompletableFuture::join).toList());
    }

    private static final class ArityException extends RuntimeException {
        ArityException() {
            super(null, null, false, false);
        }
    }

    private static void arity(List<byte[]> args, int min, int max) {
        if (args.size() < min || args.size() > max) {
            throw new ArityException();
        }
    }

    private static CompletableFuture<RedisMessage> done(RedisMessage m) {
        return CompletableFuture.completedFuture(m);
    }

    private static RedisMessage noArgs(List<byte[]> args, RedisMessage reply) {
        arity(args, 1, 1);
        return reply;
    }

    // ------------------------------------------------------------------ RG.PYEXECUTE

    /** The characters RedisGears allows in a session ID. */
    private static final java.util.regex.Pattern SESSION_ID = java.util.regex.Pattern.compile("[A-Za-z0-9_-]*");

    /**
     * {@code role}: "none" on a single Redis; on a cluster "coordinator" (a client's RG.PYEXECUTE: the script
     * is sent to every other shard too) or "shard" (another jgears' coordinator sent it).
     */
    private CompletableFuture<RedisMessage> pyExecute(List<byte[]> args, ClientInfo client, String role, String runId,
                                                      ClusterRunIds ids, io.jgears.redis.RedisUser coordinatorsUser) {
        arity(args, 2, Integer.MAX_VALUE);
        long max = engine.config().getLong(GearsConfig.MAX_SCRIPT_SIZE);
        byte[] raw = args.get(1);
        if (raw.length > max) {
            return done(Replies.error("ERR script too large: " + raw.length + " bytes, MaxScriptSize is " + max));
        }
        String code;
        try {
            code = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(raw)).toString();
        } catch (CharacterCodingException e) {
            return done(Replies.error("ERR the script is not valid UTF-8"));
        }
        boolean unblocking = false;
        boolean upgrade = false;
        boolean shared = "shared".equals(engine.config().get(GearsConfig.DEFAULT_ISOLATION));
        String id = null;
        String description = null;
        String replaceWith = null;
        List<String> requirements = new ArrayList<>();
        boolean forceReinstall = false;
        boolean allowThreads = false;
        io.jgears.requirements.SessionPolicy network = null;
        for (int i = 2; i < args.size(); i++) {
            String opt = str(args.get(i)).toUpperCase(Locale.ROOT);
            switch (opt) {
                case "UNBLOCKING" -> unblocking = true;
                case "UPGRADE" -> upgrade = true;
                case "ISOLATION" -> {
                    String mode = i + 1 < args.size() ? str(args.get(++i)).toLowerCase(Locale.ROOT) : "";
                    if (!mode.equals("shared") && !mode.equals("interpreter")) {
                        return done(Replies.error("ERR ISOLATION must be 'interpreter' or 'shared'"));
                    }
                    shared = mode.equals("shared");
                }
                case "ID", "DESCRIPTION", "REPLACE_WITH" -> {
                    if (i + 1 >= args.size()) {
                        return done(Replies.error(opt + " is missing"));
                    }
                    String value = str(args.get(++i));
                    switch (opt) {
                        case "ID" -> {
                            if (!SESSION_ID.matcher(value).matches()) {
                                return done(Replies.error("ID must be compose of: ['A'-'Z' | 'a'-'z' | '0' - '9' | '-' | '_']"));
                            }
                            id = value;
                        }
                        case "DESCRIPTION" -> description = value;
                        default -> replaceWith = value;
                    }
                }
                case "REQUIREMENTS" -> {
                    // The rest are pip requirement strings, as in RedisGears; none at all is no requirement.
                    for (int j = i + 1; j < args.size(); j++) {
                        String req = str(args.get(j)).trim();
                        if (!requirements.contains(req)) {
                            requirements.add(req);
                        }
                    }
                    i = args.size();
                }
                case "FORCE_REINSTALL_REQUIREMENTS" -> forceReinstall = true;
                case "ALLOW" -> {
                    // jgears: ALLOW network | network=host:port,... | threads (may repeat).
                    String what = i + 1 < args.size() ? str(args.get(++i)) : "";
                    String lower = what.toLowerCase(Locale.ROOT);
                    if (lower.equals("threads")) {
                        if (!"1".equals(engine.config().get(GearsConfig.PYTHON_ALLOW_THREADS))) {
                            return done(Replies.error("ERR ALLOW threads is off: start jgears with PythonAllowThreads 1 to let sessions ask for threads"));
                        }
                        allowThreads = true;
                    } else if (lower.equals("network") || lower.startsWith("network=")) {
                        try {
                            network = io.jgears.requirements.SessionPolicy.parseNetwork(
                                    lower.equals("network") ? "all" : what.substring("network=".length()), false);
                        } catch (IllegalArgumentException e) {
                            return done(Replies.error("ERR ALLOW " + e.getMessage()));
                        }
                    } else {
                        return done(Replies.error("ERR ALLOW takes network, network=host:port,... or threads, not '" + what + "'"));
                    }
                }
                default -> {
                    return done(Replies.error("Unknown arguments were given: " + str(args.get(i))));
                }
            }
        }
        if (upgrade && id == null) {
            return done(Replies.error("ERR UPGRADE needs an ID"));
        }
        // The session runs its Redis commands as the ACL user this client authenticated as.
        io.jgears.redis.RedisUser user = role.equals("shard") ? coordinatorsUser
                : client.user() == null ? null : new io.jgears.redis.RedisUser(client.user(), client.password());
        io.jgears.requirements.SessionPolicy allow = null;
        if (network != null || allowThreads) {
            allow = (network != null ? network : io.jgears.requirements.SessionPolicy.parseNetwork(
                    engine.config().get(GearsConfig.PYTHON_ALLOW_NETWORK), false)).withThreads(allowThreads);
        }
        GearsEngine.PyExecute request = new GearsEngine.PyExecute(code, unblocking, id, description, upgrade, replaceWith, user, shared,
                List.copyOf(requirements), forceReinstall, allow);
        if (role.equals("coordinator")) {
            // What the script creates gets the same ids on every shard: this shard's, from a block set aside.
            ids = new ClusterRunIds(engine.shardId(), engine.executions().reserve(ClusterRunIds.BLOCK),
                    id != null ? id : Sessions.newId(), unblocking);
            // The other shards run the same script as their part, blocking (their reply carries their records).
            List<byte[]> shardArgs = new ArrayList<>();
            for (String head : List.of(ShardFanOut.SHARD_EXECUTE, runId, ids.prefix(), String.valueOf(ids.base()),
                    ids.sessionId(), ids.keepExecution() ? "1" : "0", user == null ? "" : user.name())) {
                shardArgs.add(head.getBytes(StandardCharsets.UTF_8));
            }
            for (int i = 1; i < args.size(); i++) {
                if (i < 2 || !str(args.get(i)).equalsIgnoreCase("UNBLOCKING")) {
                    shardArgs.add(args.get(i));
                }
            }
            request = request.inCluster(role, engine.fanOut().sendToOtherShards(shardArgs), runId, ids);
        } else if (role.equals("shard")) {
            request = request.inCluster(role, List.of(), runId, ids);
        }
        return engine.pyExecute(request);
    }

    // ------------------------------------------------------------------ executions

    private Execution execution(byte[] id) {
        return engine.executions().find(str(id));
    }

    private RedisMessage getResults(List<byte[]> args) {
        arity(args, 2, 2);
        Execution e = execution(args.get(1));
        if (e == null || !e.isStored()) {
            return Replies.error("execution plan does not exist");
        }
        if (!e.isFinished()) {
            return Replies.error("execution is still running");
        }
        return GearsEngine.resultsReply(e);
    }

    private CompletableFuture<RedisMessage> getResultsBlocking(List<byte[]> args) {
        arity(args, 2, 2);
        Execution e = execution(args.get(1));
        if (e == null || !e.isStored()) {
            return done(Replies.error("execution plan does not exist"));
        }
        // Only this client waits: the reply slot fills when the execution completes.
        return e.done().thenApply(GearsEngine::resultsReply);
    }

    private RedisMessage dumpExecutions(List<byte[]> args) {
        arity(args, 1, 1);
        List<RedisMessage> out = new ArrayList<>();
        for (Execution e : engine.executions().stored()) {
            out.add(Replies.of(List.of("executionId", e.id(), "status", e.status().label(),
                    "registered", e.registration() != null ? 1L : 0L)));
        }
        return Replies.array(out);
    }

    private RedisMessage dropExecution(List<byte[]> args) {
        arity(args, 2, 2);
        Execution e = execution(args.get(1));
        if (e == null || !e.isStored()) {
            return Replies.error("execution does not exist");
        }
        if (!e.isFinished()) {
            return Replies.error("can not drop a running execution");
        }
        engine.drop(e);
        return Replies.OK;
    }

    /** The plan as RedisGears shows it, one entry per shard: steps last first, durations in ms (and µs when profiled). */
    private CompletableFuture<RedisMessage> getExecution(ClientInfo client, List<byte[]> args) {
        arity(args, 2, 3);
        ShardFanOut fanOut = engine.fanOut();
        // RedisGears' default: this shard's plan on a single Redis, every shard's on a cluster.
        String mode = args.size() == 3 ? str(args.get(2)).toUpperCase(Locale.ROOT)
                : fanOut != null && client != null ? "CLUSTER" : "SHARD";
        if (!mode.equals("SHARD") && !mode.equals("CLUSTER")) {
            return done(Replies.error("unknown subcommand"));
        }
        if (mode.equals("CLUSTER") && fanOut == null) {
            return done(Replies.error("no cluster detected - use `RG.GETEXECUTION <id> [SHARD]` instead"));
        }
        Execution e = execution(args.get(1));
        List<Object> here = e == null ? null : executionPlan(e);
        if (mode.equals("SHARD") || client == null) {
            return done(here == null ? Replies.error("execution plan does not exist") : Replies.of(List.of(here)));
        }
        // Each shard's part of the run, under the same id: this shard's first, then the others' that have it.
        return everyReply(fanOut.commandOtherShards(List.of(args.get(0), args.get(1), "SHARD".getBytes(StandardCharsets.UTF_8))))
                .thenApply(others -> {
                    List<Object> entries = new ArrayList<>();
                    if (here != null) {
                        entries.add(here);
                    }
                    for (Object r : others) {
                        if (r instanceof List<?> reply) {
                            entries.addAll(reply);
                        }
                    }
                    return entries.isEmpty() ? Replies.error("execution plan does not exist") : Replies.of(entries);
                });
    }

    /** One shard's entry of RG.GETEXECUTION: its id and its part of the run's plan. */
    private List<Object> executionPlan(Execution e) {
        long[] prof = e.profileNanos();
        List<Object> steps = new ArrayList<>();
        List<Object> stepMicros = new ArrayList<>();
        List<List<String>> plan = e.plan();
        for (int i = plan.size() - 1; i >= 0; i--) {
            List<String> step = plan.get(i);
            long nanos = prof != null && i + 1 < prof.length ? prof[i + 1] : 0;
            steps.add(List.of("type", step.get(0), "duration", nanos / 1_000_000, "name", step.get(1), "arg", step.get(2)));
            stepMicros.add(nanos / 1000);
        }
        // While it runs, RedisGears answers results -1 and no errors (they are known at the end).
        boolean finished = e.isFinished();
        List<Object> errors = finished ? new ArrayList<>(e.errors()) : new ArrayList<>();
        List<Object> details = new ArrayList<>(List.of(
                "status", e.status().label(),
                // On a cluster the coordinator's part counts the other shards that got the run and finished it.
                "shards_received", (long) e.shardReplies().size(),
                "shards_completed", e.shardReplies().stream().filter(f -> f.isDone()).count(),
                "results", finished ? (long) e.results().size() : -1L,
                "errors", errors,
                "total_duration", e.elapsedMillis(),
                "read_duration", prof != null && prof.length > 0 ? prof[0] / 1_000_000 : 0L,
                "steps", steps));
        if (prof != null) {
            // jgears: the same durations in µs (ms are too coarse for most steps), after RedisGears' fields.
            details.addAll(List.of("read_duration_us", prof.length > 0 ? prof[0] / 1000 : 0L, "steps_duration_us", stepMicros));
        }
        // jgears: a run()'s progress, so that a long one shows how far it is (records out of the reader,
        // and out of the last step; at the end, records_done is the number of results).
        details.addAll(List.of("records_read", e.recordsRead(), "records_done", e.recordsDone()));
        return List.of("shard_id", engine.shardId(), "execution_plan", details);
    }

    private RedisMessage dumpTimeEvents(List<byte[]> args) {
        arity(args, 1, 1);
        List<Object> out = new ArrayList<>();
        for (TimeEvent te : engine.timeEvents().all()) {
            out.add(List.of("id", te.id(),
                    "session", te.session().id(),
                    "desc", te.description() == null ? "" : te.description(),
                    "intervalMS", te.intervalMillis(),
                    "oneshot", te.oneshot() ? 1L : 0L,
                    "numTriggered", te.fired(),
                    "numFailures", te.failures(),
                    "lastRunDurationMS", te.lastRunMicros() / 1000,
                    "totalRunDurationMS", te.totalRunMicros() / 1000,
                    "lastError", te.lastError()));
        }
        return Replies.of(out);
    }

    private RedisMessage unregisterTimeEvent(List<byte[]> args) {
        arity(args, 2, 2);
        TimeEvent te = engine.timeEvents().find(str(args.get(1)));
        if (te == null || !engine.unregisterTimeEvent(te, true)) {
            return Replies.error("time event does not exist");
        }
        return Replies.OK;
    }

    private CompletableFuture<RedisMessage> abortExecution(List<byte[]> args) {
        arity(args, 2, 2);
        Execution e = execution(args.get(1));
        if (e == null) {
            return done(Replies.error("execution does not exist"));
        }
        return CompletableFuture.supplyAsync(() -> Replies.simple(engine.abort(e)), control);
    }

    // ------------------------------------------------------------------ sessions, stats, config

    /**
     * RedisGears' form: {@code [VERBOSE] [DEAD] [SESSIONS id ...]}, options first, SESSIONS last. Live
     * sessions by default, replaced ones still running with DEAD; a SESSIONS id that is not live is the
     * text "Session x does not exists". jgears' {@code HOLDERS} option adds, after RedisGears' fields, what
     * holds each session (isolation, holders, executions, timeEvents, created).
     */
    private RedisMessage dumpSessions(List<byte[]> args) {
        boolean verbose = false;
        boolean dead = false;
        boolean holders = false;
        int i = 1;
        for (; i < args.size(); i++) {
            String a = str(args.get(i)).toUpperCase(Locale.ROOT);
            if (a.equals("VERBOSE")) {
                verbose = true;
            } else if (a.equals("DEAD")) {
                dead = true;
            } else if (a.equals("HOLDERS")) {
                holders = true;
            } else {
                break;
            }
        }
        List<RedisMessage> out = new ArrayList<>();
        if (i < args.size()) {
            if (!str(args.get(i)).equalsIgnoreCase("SESSIONS")) {
                return Replies.error("Unknown option " + str(args.get(i)));
            }
            for (int j = i + 1; j < args.size(); j++) {
                String id = str(args.get(j));
                Session s = engine.sessions().get(id);
                out.add(s == null || s.isDead() ? Replies.bulk("Session " + id + " does not exists")
                        : sessionEntry(s, verbose, holders));
            }
            return Replies.array(out);
        }
        for (Session s : engine.sessions().all()) {
            if (s.isDead() == dead) {
                out.add(sessionEntry(s, verbose, holders));
            }
        }
        return Replies.array(out);
    }

    private RedisMessage sessionEntry(Session s, boolean verbose, boolean withHolders) {
        List<Object> entry = new ArrayList<>(List.of(
                "ID", s.id(),
                "sessionDescription", s.description() == null ? Replies.bulk(null) : s.description(),
                "refCount", (long) s.refCount(),
                "linked", s.isDead() ? "None" : "primary",
                "dead", s.isDead() ? "true" : "false",
                "requirementInstallationNeeded", s.requirements().stream().allMatch(r -> {
                    io.jgears.requirements.Requirements.Requirement req = engine.requirements().find(r);
                    return req != null && req.installed();
                }) ? 0L : 1L,
                "requirements", requirementsOf(s, verbose),
                "registrations", registrationsOf(s, verbose)));
        if (withHolders) {
            List<Object> holders = new ArrayList<>();
            for (Map.Entry<Session.Holder, Integer> h : s.holders().entrySet()) {
                holders.add(h.getKey().name().toLowerCase(Locale.ROOT));
                holders.add((long) h.getValue());
            }
            List<Object> tes = new ArrayList<>();
            engine.timeEvents().of(s).forEach(te -> tes.add(te.id()));
            List<Object> execs = new ArrayList<>();
            engine.executions().of(s).forEach(e -> execs.add(e.id()));
            entry.addAll(List.of("isolation", s.isShared() ? "shared" : "interpreter",
                    "holders", holders, "executions", execs, "timeEvents", tes,
                    "created", s.created().toString()));
        }
        return Replies.of(entry);
    }

    /** A session's requirements: names, or RedisGears' full entries with VERBOSE. */
    private List<Object> requirementsOf(Session s, boolean verbose) {
        List<Object> out = new ArrayList<>();
        for (String name : s.requirements()) {
            io.jgears.requirements.Requirements.Requirement r = engine.requirements().find(name);
            out.add(verbose && r != null ? requirementEntry(r) : name);
        }
        return out;
    }

    private List<Object> requirementEntry(io.jgears.requirements.Requirements.Requirement r) {
        return List.of("GearReqVersion", r.version(), "Name", r.name(),
                "IsDownloaded", r.downloaded() ? "yes" : "no", "IsInstalled", r.installed() ? "yes" : "no",
                "CompiledOs", engine.requirements().compiledOs(), "Wheels", new ArrayList<Object>(r.wheels()));
    }

    /** RG.PYDUMPREQS: every requirement in the store, as RedisGears lists them. */
    private RedisMessage dumpRequirements() {
        List<Object> out = new ArrayList<>();
        for (io.jgears.requirements.Requirements.Requirement r : engine.requirements().all()) {
            out.add(requirementEntry(r));
        }
        return Replies.of(out);
    }

    /** RG.PYEXPORTREQ name: the requirement's wheels as RESP data, for RG.PYIMPORTREQ on another server. */
    private CompletableFuture<RedisMessage> exportRequirement(List<byte[]> args) {
        arity(args, 2, 2);
        String name = str(args.get(1));
        return CompletableFuture.supplyAsync(() -> {
            try {
                List<byte[]> parts = engine.requirements().export(name);
                if (parts == null) {
                    return Replies.error("requirement does not exists");
                }
                List<RedisMessage> out = new ArrayList<>();
                for (byte[] p : parts) {
                    out.add(new io.netty.handler.codec.redis.FullBulkStringRedisMessage(io.netty.buffer.Unpooled.wrappedBuffer(p)));
                }
                return Replies.array(out);
            } catch (java.io.IOException e) {
                return Replies.error("could not read the wheels of requirement " + name + ": " + e.getMessage());
            }
        }, control);
    }

    /** RG.PYIMPORTREQ data ...: what RG.PYEXPORTREQ gave, installed here. */
    private CompletableFuture<RedisMessage> importRequirement(List<byte[]> args) {
        try {
            return engine.requirements().importData(args.subList(1, args.size()))
                    .handle((r, error) -> {
                        if (error == null) {
                            return Replies.OK;
                        }
                        Throwable cause = error.getCause() != null ? error.getCause() : error;
                        return Replies.error(cause instanceof io.jgears.requirements.Requirements.InstallException
                                ? cause.getMessage() : "could not import the requirement (see jgears' log)");
                    });
        } catch (io.jgears.requirements.Requirements.InstallException e) {
            return done(Replies.error(e.getMessage()));
        }
    }

    /**
     * RG.PYPROFILE STATS|RESET session: the pstats report of the session's profiled step calls
     * (ProfileExecutions), or a fresh profile. As in RedisGears, a sort order after the id is accepted
     * and ignored, and STATS with nothing profiled is pstats' error.
     */
    private CompletableFuture<RedisMessage> profile(List<byte[]> args) {
        arity(args, 2, Integer.MAX_VALUE);
        String sub = str(args.get(1)).toUpperCase(Locale.ROOT);
        boolean reset = sub.equals("RESET");
        if (!reset && !sub.equals("STATS")) {
            return done(Replies.error("Wrong subcommand given to RG.PYPROFILE"));
        }
        arity(args, 3, reset ? 3 : 4);
        Session s = engine.sessions().get(str(args.get(2)));
        if (s == null || s.isDead()) {
            return done(Replies.error("session does not exists"));
        }
        CompletableFuture<RedisMessage> reply = new CompletableFuture<>();
        engine.submit(() -> {
            try {
                reply.complete(s.enter(si -> {
                    if (reset) {
                        si.call("_profile_reset");
                        return Replies.OK;
                    }
                    org.graalvm.polyglot.Value r = si.call("_profile_stats");
                    String text = r.getArrayElement(1).asString();
                    return r.getArrayElement(0).asBoolean() ? Replies.bulk(text) : Replies.error(text);
                }));
            } catch (RuntimeException e) {
                reply.complete(Replies.error("session does not exists"));  // freed meanwhile
            }
        });
        return reply;
    }

    private List<Object> registrationsOf(Session s, boolean verbose) {
        List<Object> out = new ArrayList<>();
        for (Registration r : engine.registrations().of(s)) {
            out.add(verbose ? registrationEntry(r, false) : r.id());
        }
        return out;
    }

    /** RedisGears' RG.DUMPREGISTRATIONS entry, with jgears' additions at the end of RegistrationData. */
    private List<Object> registrationEntry(Registration r, boolean withSession) {
        List<Object> data = new ArrayList<>();
        data.addAll(List.of("mode", r.mode()));
        data.addAll(r.stats());
        List<Object> args = r.redisGearsArgs();
        data.addAll(List.of("args", args, "status", r.status()));
        if (r.kind() == Registration.Kind.KEYS || r.kind() == Registration.Kind.KEYS_ONLY) {
            data.addAll(List.of("notificationGaps", r.notificationGaps(), "lastNotificationGap", r.lastGap()));
        }
        List<Object> entry = new ArrayList<>(List.of("id", r.id(), "reader", r.reader(),
                "desc", r.description() == null ? Replies.bulk(null) : r.description(), "RegistrationData", data));
        if (withSession) {
            Session s = r.session();
            List<String> ids = engine.registrations().of(s).stream().map(x -> "'" + x.id() + "'").toList();
            entry.addAll(List.of("PD", "{'sessionName':'" + s.id() + "', 'sessionDescription':'"
                            + (s.description() == null ? "null" : s.description()) + "', 'refCount': " + s.refCount()
                            + ", 'linkedTo': primary, 'dead': " + s.isDead() + ", 'isInstallationNeeded':0, "
                            + "'registrationsList':[" + String.join(", ", ids) + "], 'depsList':[]}",
                    "ExecutionThreadPool", "DefaultPool"));
        }
        return entry;
    }

    private RedisMessage dumpRegistrations(List<byte[]> args) {
        arity(args, 1, 1);
        List<Object> out = new ArrayList<>();
        for (Registration r : engine.registrations().all()) {
            if (r.isActive()) {
                out.add(registrationEntry(r, true));
            }
        }
        return Replies.of(out);
    }

    private RedisMessage unregister(List<byte[]> args) {
        arity(args, 2, 3);  // RG.UNREGISTER id [ABORTPENDING]
        Registration r = engine.registrations().find(str(args.get(1)));
        if (r == null || !r.isActive() || !engine.registrations().unregister(r)) {
            return Replies.error("execution is not registered");
        }
        return Replies.OK;
    }

    /**
     * RedisGears' form: one registration id (ABORTPENDING alone is parsed, and finds nothing to pause).
     * jgears' own form, {@code SESSIONS <session id> ...}, pauses every registration of those sessions.
     */
    private RedisMessage pause(List<byte[]> args, boolean pause) {
        arity(args, 2, Integer.MAX_VALUE);
        String first = str(args.get(1));
        if (first.equalsIgnoreCase("SESSIONS")) {
            arity(args, 3, Integer.MAX_VALUE);
            List<String> ids = new ArrayList<>();
            for (int i = 2; i < args.size(); i++) {
                ids.add(str(args.get(i)));
            }
            String error = engine.registrations().pause(ids, pause);
            return error == null ? Replies.OK : Replies.error(error);
        }
        arity(args, 2, 2);
        if (first.equalsIgnoreCase("ABORTPENDING")) {
            return Replies.error("ERR no registration to " + (pause ? "pause" : "unpause"));
        }
        String error = engine.registrations().pauseRegistration(first, pause);
        return error == null ? Replies.OK : Replies.error(error);
    }

    private CompletableFuture<RedisMessage> trigger(List<byte[]> args, int min) {
        arity(args, min, Integer.MAX_VALUE);
        List<String> targs = new ArrayList<>();
        for (int i = 1; i < args.size(); i++) {
            targs.add(str(args.get(i)));
        }
        return engine.registrations().trigger(targs);
    }

    @Override
    public boolean hooks(String upperName) {
        return engine.registrations().hooks(upperName);
    }

    @Override
    public CompletableFuture<RedisMessage> hook(ClientInfo client, List<byte[]> args) {
        return engine.registrations().hook(args);
    }

    @Override
    public java.util.function.Supplier<CompletableFuture<RedisMessage>> watchKeys(ClientInfo client, List<byte[]> args) {
        return engine.registrations().watchKeys(args);
    }

    @Override
    public CompletableFuture<RedisMessage> hookQueued(ClientInfo client, List<byte[]> args) {
        return engine.registrations().hookQueued(args);
    }

    @Override
    public CompletableFuture<Void> afterForwardedReply() {
        return engine.registrations().syncBarrier();
    }

    @Override
    public void afterFlushAll() {
        control.execute(engine::storeSessionsAgain);
    }

    private RedisMessage pyStats(List<byte[]> args) {
        arity(args, 1, 1);
        MemoryUsage heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage();
        long peak = ManagementFactory.getMemoryPoolMXBeans().stream()
                .filter(p -> p.getType() == java.lang.management.MemoryType.HEAP)
                .mapToLong(p -> p.getPeakUsage().getUsed()).sum();
        return Replies.of(List.of(
                "TotalAllocated", heap.getCommitted(),
                "PeakAllocated", peak,
                "CurrAllocated", heap.getUsed(),
                "processRSS", residentSetBytes(),
                "sessions", (long) engine.sessions().count(),
                "liveContexts", (long) engine.python().liveContexts(),
                "pooledContexts", (long) engine.pool().ready(),
                "pooledWithPreImports", (long) engine.pool().readyWithPreImports(),
                "poolSize", (long) engine.pool().size(),
                "contextsCreated", engine.python().createdContexts(),
                "avgContextCreateMs", String.format(Locale.ROOT, "%.1f", engine.python().averageCreateMillis()),
                "avgContextCreateCpuMs", String.format(Locale.ROOT, "%.1f", engine.python().averageCreateCpuMillis()),
                "executionThreads", (long) engine.executionThreads(),
                "memoryInterruptions", engine.memoryInterruptions(),
                "gilReleases", io.jgears.python.SubInterpreter.gilReleases(),
                "inlineCalls", engine.inlineCalls(),
                "inlineGateClosings", engine.inlineGateClosings(),
                "runtime", engine.python().implementationName(),
                "jit", engine.python().jitEnabled() ? "on" : "off"));
    }

    /** The process' resident set in bytes (Linux /proc), or -1 where it cannot be read. */
    private static long residentSetBytes() {
        try {
            String[] statm = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/self/statm")).trim().split(" ");
            return Long.parseLong(statm[1]) * 4096;
        } catch (java.io.IOException | RuntimeException e) {
            return -1;
        }
    }

    /** RedisGears starts each RG.CONFIGGET / RG.CONFIGSET error element with this. */
    private static final String CONFIG_ERROR = "(error) ";

    private RedisMessage configGet(List<byte[]> args) {
        arity(args, 2, Integer.MAX_VALUE);
        List<RedisMessage> out = new ArrayList<>();
        for (int i = 1; i < args.size(); i++) {
            String key = str(args.get(i));
            String value = engine.config().get(key);
            out.add(value == null ? Replies.error(CONFIG_ERROR + "Unsupported config parameter: " + key) : Replies.of(asNumberIfInt(value)));
        }
        return Replies.array(out);
    }

    private static Object asNumberIfInt(String value) {
        try {
            return Long.parseLong(value);
        } catch (NumberFormatException e) {
            return value;
        }
    }

    private RedisMessage configSet(List<byte[]> args) {
        if (args.size() < 3 || args.size() % 2 == 0) {
            throw new ArityException();
        }
        List<RedisMessage> out = new ArrayList<>();
        for (int i = 1; i < args.size(); i += 2) {
            String key = str(args.get(i));
            String value = str(args.get(i + 1));
            try {
                out.add(Replies.simple(engine.config().set(key, value)));
                if (key.equalsIgnoreCase(GearsConfig.POOL_SIZE)) {
                    engine.pool().resize(Integer.parseInt(value));
                }
            } catch (IllegalArgumentException e) {
                out.add(Replies.error(e instanceof GearsConfig.PluginValueRefused ? e.getMessage() : CONFIG_ERROR + e.getMessage()));
            }
        }
        return Replies.array(out);
    }

    private static String str(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }
}
