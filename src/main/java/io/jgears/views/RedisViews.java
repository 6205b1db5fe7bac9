package io.jgears.views;

import io.jgears.gears.GearsEngine;
import io.jgears.gears.Registration;
import io.jgears.gears.Session;
import io.jgears.redis.RedisBackend;
import io.jgears.redis.RedisCommandException;
import io.jgears.redis.RedisUser;
import io.jgears.server.ClientInfo;
import io.jgears.server.DelegatingLocalCommands;
import io.jgears.server.LocalCommands;
import io.jgears.server.Replies;
import io.netty.handler.codec.redis.RedisMessage;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryType;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/**
 * Redis' own views of what it runs show jgears as they show the RedisGears module: {@code INFO} has
 * RedisGears' sections ({@code rg}, {@code rg_regisrations} [sic], {@code rg_plugins},
 * {@code rg_python_stats}, {@code rg_python_requirements}, {@code rg_python_sessions}) where RedisGears has them
 * ({@code INFO rg}, {@code INFO modules}, {@code INFO everything}, or one section by name) and {@code RG.*}
 * calls in {@code commandstats}; {@code MODULE LIST} has an {@code rg} entry; {@code COMMAND} (and its
 * {@code COUNT}, {@code INFO}, {@code DOCS}, {@code LIST}, {@code GETKEYS}) knows the {@code RG.*} commands.
 * Redis' part of each reply comes from Redis, run as the client's ACL user; jgears' part is merged in.
 * Every other command goes to the wrapped {@link LocalCommands}, timed for commandstats when it is an RG.* one.
 */
public final class RedisViews extends DelegatingLocalCommands {
    /** RedisGears' version as its module reports it (1.2.13). */
    public static final long MODULE_VERSION = 10213;

    private final GearsEngine engine;
    private final RedisBackend redis;
    private final Map<String, CallStats> stats = new ConcurrentHashMap<>();

    /** calls, microseconds and failures of one RG.* command, for INFO commandstats. */
    static final class CallStats {
        final LongAdder calls = new LongAdder();
        final LongAdder micros = new LongAdder();
        final LongAdder failed = new LongAdder();
    }

    public RedisViews(LocalCommands next, GearsEngine engine, RedisBackend redis) {
        super(next);
        this.engine = engine;
        this.redis = redis;
    }

    @Override
    public boolean handles(String upperName) {
        return upperName.equals("INFO") || upperName.equals("MODULE") || upperName.equals("COMMAND") || next.handles(upperName);
    }

    @Override
    public CompletableFuture<RedisMessage> execute(ClientInfo client, List<byte[]> args) {
        String name = str(args.getFirst()).toUpperCase(Locale.ROOT);
        return switch (name) {
            case "INFO", "MODULE", "COMMAND" -> CompletableFuture.supplyAsync(() -> {
                try {
                    return switch (name) {
                        case "INFO" -> info(client, args);
                        case "MODULE" -> module(client, args);
                        default -> command(client, args);
                    };
                } catch (RedisCommandException e) {
                    return Replies.error(e.getMessage());
                }
            }, Thread::startVirtualThread);
            default -> timed(name, next.execute(client, args));
        };
    }

    private CompletableFuture<RedisMessage> timed(String name, CompletableFuture<RedisMessage> reply) {
        if (!name.startsWith("RG.")) {
            return reply;
        }
        long start = System.nanoTime();
        return reply.whenComplete((m, error) -> {
            CallStats s = stats.computeIfAbsent(name.toLowerCase(Locale.ROOT), k -> new CallStats());
            s.calls.increment();
            s.micros.add((System.nanoTime() - start) / 1000);
            if (error != null || m instanceof io.netty.handler.codec.redis.ErrorRedisMessage) {
                s.failed.increment();
            }
        });
    }




    // ------------------------------------------------------------------ INFO

    private RedisMessage info(ClientInfo client, List<byte[]> args) {
        String redisInfo = String.valueOf(onRedis(client, args));
        Set<String> asked = new java.util.HashSet<>();
        for (int i = 1; i < args.size(); i++) {
            asked.add(str(args.get(i)).toLowerCase(Locale.ROOT));
        }
        StringBuilder out = new StringBuilder();
        boolean everything = asked.contains("everything");
        boolean commandstats = everything || asked.contains("all") || asked.contains("commandstats");
        for (String section : redisInfo.split("\r\n\r\n")) {
            if (section.isBlank()) {
                continue;
            }
            StringBuilder s = new StringBuilder(section.strip());
            if (commandstats && section.startsWith("# Commandstats")) {
                stats.forEach((cmd, st) -> s.append("\r\n").append(commandStatsLine(cmd, st)));
            }
            if (section.startsWith("# Modules")) {
                s.append("\r\nmodule:name=rg,ver=").append(MODULE_VERSION)
                        .append(",api=1,filters=1,usedby=[],using=[],options=[]");
            }
            out.append(s).append("\r\n\r\n");
        }
        if (commandstats && !redisInfo.contains("# Commandstats") && !stats.isEmpty()) {
            out.append("# Commandstats");
            stats.forEach((cmd, st) -> out.append("\r\n").append(commandStatsLine(cmd, st)));
            out.append("\r\n\r\n");
        }
        boolean all = everything || asked.contains("modules") || asked.contains("rg");
        if (asked.contains("modules") && !redisInfo.contains("# Modules")) {
            out.append("# Modules\r\nmodule:name=rg,ver=").append(MODULE_VERSION)
                    .append(",api=1,filters=1,usedby=[],using=[],options=[]\r\n\r\n");
        }
        for (Map.Entry<String, String> section : rgSections().entrySet()) {
            if (all || asked.contains(section.getKey())) {
                out.append("# ").append(section.getKey()).append("\r\n").append(section.getValue()).append("\r\n");
            }
        }
        String text = out.toString().strip();
        return Replies.bulk(text.isEmpty() ? "" : text + "\r\n");
    }

    private static String commandStatsLine(String cmd, CallStats st) {
        long calls = st.calls.sum();
        long micros = st.micros.sum();
        return String.format(Locale.ROOT, "cmdstat_%s:calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=0,failed_calls=%d",
                cmd, calls, micros, calls == 0 ? 0.0 : (double) micros / calls, st.failed.sum());
    }

    /** RedisGears' INFO sections, by name, each as its lines. */
    private Map<String, String> rgSections() {
        Map<String, String> sections = new LinkedHashMap<>();
        List<Registration> registrations = engine.registrations().all();
        sections.put("rg", "rg_nexecutions:" + engine.executions().stored().size() + "\r\n"
                + "rg_nregistrations:" + registrations.size() + "\r\n");
        StringBuilder regs = new StringBuilder();
        for (Registration r : registrations) {
            regs.append("rg_").append(r.id()).append(":desc=").append(orNone(r.description()))
                    .append(",reader=").append(r.reader()).append(",mode=").append(r.mode());
            List<Object> st = r.stats();
            for (int i = 0; i + 1 < st.size(); i += 2) {
                regs.append(',').append(st.get(i)).append('=').append(orNone(st.get(i + 1)));
            }
            List<Object> args = r.redisGearsArgs();
            for (int i = 0; i + 1 < args.size(); i += 2) {
                Object v = args.get(i + 1);
                regs.append(',').append(args.get(i)).append('=')
                        .append(orNone(v instanceof List<?> l && l.isEmpty() ? null : v));  // RedisGears: eventTypes=None
            }
            regs.append(",PD=").append(sessionDescription(r.session()).replace(", ", "| ")).append("\r\n");
        }
        sections.put("rg_regisrations", regs.toString());  // sic: RedisGears' spelling, which tools match
        sections.put("rg_plugins", "rg_GearsPythonPlugin:version=10000\r\n");
        long committed = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getCommitted();
        long used = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
        long peak = ManagementFactory.getMemoryPoolMXBeans().stream().filter(p -> p.getType() == MemoryType.HEAP)
                .mapToLong(p -> p.getPeakUsage().getUsed()).sum();
        sections.put("rg_python_stats", "rg_TotalAllocated:" + committed + "\r\nrg_PeakAllocated:" + peak
                + "\r\nrg_CurrAllocated:" + used + "\r\n");
        sections.put("rg_python_requirements", "");
        StringBuilder sessions = new StringBuilder();
        for (Session s : engine.sessions().all()) {
            sessions.append("rg_").append(s.id()).append(':').append(sessionDescription(s)).append("\r\n");
        }
        sections.put("rg_python_sessions", sessions.toString());
        return sections;
    }

    private String sessionDescription(Session s) {
        List<String> ids = new ArrayList<>();
        engine.registrations().of(s).forEach(r -> ids.add("'" + r.id() + "'"));
        return "{'sessionName':'" + s.id() + "', 'sessionDescription':'" + orNone(s.description())
                + "', 'refCount': " + s.refCount() + ", 'linkedTo': primary, 'dead': " + s.isDead()
                + ", 'isInstallationNeeded':0, 'registrationsList':[" + String.join(", ", ids) + "], 'depsList':[]}";
    }

    private static String orNone(Object v) {
        return v == null || "".equals(v) ? "None" : String.valueOf(v);
    }

    // ------------------------------------------------------------------ MODULE

    private RedisMessage module(ClientInfo client, List<byte[]> args) {
        Object reply = onRedis(client, args);
        if (args.size() == 2 && str(args.get(1)).equalsIgnoreCase("LIST")) {
            List<Object> modules = new ArrayList<>((List<?>) reply);
            modules.add(List.of("name", "rg", "ver", MODULE_VERSION, "path", "jgears", "args", List.of()));
            return Replies.of(modules);
        }
        return Replies.of(reply);
    }

    // ------------------------------------------------------------------ COMMAND

    private RedisMessage command(ClientInfo client, List<byte[]> args) {
        String sub = args.size() < 2 ? "" : str(args.get(1)).toUpperCase(Locale.ROOT);
        switch (sub) {
            case "" -> {
                List<Object> all = new ArrayList<>(commandInfoStatuses((List<?>) onRedis(client, args)));
                RgCommands.ALL.forEach(c -> all.add(c.info()));
                return Replies.of(all);
            }
            case "COUNT" -> {
                return Replies.integer(((Number) onRedis(client, args)).longValue() + RgCommands.ALL.size());
            }
            case "INFO", "DOCS" -> {
                return perName(client, args, sub.equals("INFO"));
            }
            case "LIST" -> {
                List<Object> names = new ArrayList<>((List<?>) onRedis(client, args));
                RgCommands.ALL.stream().filter(c -> c.matchesListFilter(args.subList(2, args.size())))
                        .forEach(c -> names.add(c.name()));
                return Replies.of(names);
            }
            case "GETKEYS", "GETKEYSANDFLAGS" -> {
                RgCommands.Spec rg = args.size() > 2 ? RgCommands.find(str(args.get(2))) : null;
                if (rg == null) {
                    return Replies.of(onRedis(client, args));
                }
                List<String> keys = rg.keys(args.subList(2, args.size()).stream().map(RedisViews::str).toList());
                if (keys.isEmpty()) {
                    return Replies.error("ERR The command has no key arguments");
                }
                return Replies.of(sub.equals("GETKEYS") ? keys
                        : keys.stream().map(k -> (Object) List.of(k, List.of("RW", "UPDATE"))).toList());
            }
            default -> {
                return Replies.of(onRedis(client, args));
            }
        }
    }

    /** COMMAND INFO / DOCS name...: Redis answers for its commands, jgears for RG.*, in the order asked. */
    private RedisMessage perName(ClientInfo client, List<byte[]> args, boolean info) {
        if (args.size() == 2) {
            List<?> redisAll = (List<?>) onRedis(client, args);
            List<Object> all = new ArrayList<>(info ? commandInfoStatuses(redisAll) : docsStatuses(redisAll));
            for (RgCommands.Spec c : RgCommands.ALL) {
                if (info) {
                    all.add(c.info());
                } else {
                    all.add(c.name());
                    all.add(c.docs());
                }
            }
            return Replies.of(all);
        }
        List<byte[]> redisArgs = new ArrayList<>(args.subList(0, 2));
        for (byte[] a : args.subList(2, args.size())) {
            if (RgCommands.find(str(a)) == null) {
                redisArgs.add(a);
            }
        }
        List<?> fromRedis = redisArgs.size() > 2 ? (List<?>) onRedis(client, redisArgs) : List.of();
        fromRedis = info ? commandInfoStatuses(fromRedis) : docsStatuses(fromRedis);
        List<Object> out = new ArrayList<>();
        if (info) {
            int j = 0;
            for (byte[] a : args.subList(2, args.size())) {
                RgCommands.Spec c = RgCommands.find(str(a));
                out.add(c != null ? c.info() : fromRedis.get(j++));
            }
        } else {
            out.addAll(fromRedis);  // a map: name, docs ... (unknown names are left out, as Redis does)
            for (byte[] a : args.subList(2, args.size())) {
                RgCommands.Spec c = RgCommands.find(str(a));
                if (c != null) {
                    out.add(c.name());
                    out.add(c.docs());
                }
            }
        }
        return Replies.of(out);
    }

    /** COMMAND (INFO) entries with the fields Redis sends as statuses marked so: flags, ACL categories, key spec flags. */
    private static List<?> commandInfoStatuses(List<?> entries) {
        List<Object> out = new ArrayList<>(entries.size());
        for (Object e : entries) {
            if (e instanceof List<?> entry && entry.size() >= 10) {
                List<Object> copy = new ArrayList<>(entry);
                copy.set(2, statuses(entry.get(2)));
                copy.set(6, statuses(entry.get(6)));
                copy.set(8, docsStatuses((List<?>) entry.get(8)));
                copy.set(9, commandInfoStatuses((List<?>) entry.get(9)));
                out.add(copy);
            } else {
                out.add(e);
            }
        }
        return out;
    }

    /** Flat maps nested anywhere: the values of "flags" and "doc_flags" are lists of statuses. */
    private static List<?> docsStatuses(List<?> list) {
        List<Object> out = new ArrayList<>(list.size());
        for (int i = 0; i < list.size(); i++) {
            Object v = list.get(i);
            Object key = i % 2 == 1 ? list.get(i - 1) : null;
            if (("flags".equals(key) || "doc_flags".equals(key)) && v instanceof List<?>) {
                out.add(statuses(v));
            } else if (v instanceof List<?> nested) {
                out.add(docsStatuses(nested));
            } else {
                out.add(v);
            }
        }
        return out;
    }

    private static Object statuses(Object list) {
        if (!(list instanceof List<?> l)) {
            return list;
        }
        return l.stream().map(x -> x instanceof String s ? (Object) new io.jgears.redis.GenericOutput.Status(s) : x).toList();
    }

    // ------------------------------------------------------------------ Redis

    private Object onRedis(ClientInfo client, List<byte[]> args) {
        RedisUser user = client.user() == null ? null : new RedisUser(client.user(), client.password());
        return RedisBackend.dispatch(redis.connectionFor(user), args);
    }

    private static String str(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }
}
