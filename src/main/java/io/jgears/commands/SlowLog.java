package io.jgears.commands;

import io.jgears.redis.RedisBackend;
import io.jgears.server.Replies;
import io.netty.handler.codec.redis.RedisMessage;

import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * RedisGears' commands are Redis commands, so a slow RG.PYEXECUTE or RG.TRIGGER shows in Redis' SLOWLOG.
 * jgears answers RG.* itself, so it times them with Redis' own rule (slower than
 * {@code slowlog-log-slower-than} µs, read with CONFIG GET and cached for a second) and merges its entries
 * into Redis' SLOWLOG GET / LEN / RESET replies, newest first. Its entries have ids of their own sequence.
 */
final class SlowLog {
    /** As Redis: at most 32 arguments are kept, each at most 128 bytes. */
    private static final int MAX_ARGS = 32;
    private static final int MAX_ARG_BYTES = 128;
    private static final long REFRESH_NANOS = 1_000_000_000L;

    private record Entry(long id, long unixSeconds, long micros, List<String> args, String client) {
        RedisMessage reply() {
            return Replies.of(List.of(id, unixSeconds, micros, args, client, ""));
        }
    }

    private final RedisBackend redis;
    private final ArrayDeque<Entry> entries = new ArrayDeque<>();
    private long nextId;
    private volatile long slowerThanMicros = 10_000;
    private volatile long maxLen = 128;
    private final java.util.concurrent.atomic.AtomicLong readAt = new java.util.concurrent.atomic.AtomicLong(System.nanoTime() - 2 * REFRESH_NANOS);

    SlowLog(RedisBackend redis) {
        this.redis = redis;
    }

    /** Records a command that took {@code micros} if Redis would have logged it. */
    void record(List<byte[]> args, long micros, String client) {
        long threshold = slowerThanMicros;
        if (threshold < 0 || micros < threshold) {
            return;
        }
        int n = Math.min(args.size(), MAX_ARGS);
        List<String> kept = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            if (i == MAX_ARGS - 1 && args.size() > MAX_ARGS) {
                kept.add("... (" + (args.size() - MAX_ARGS + 1) + " more arguments)");
                break;
            }
            byte[] a = args.get(i);
            kept.add(a.length > MAX_ARG_BYTES
                    ? new String(a, 0, MAX_ARG_BYTES, StandardCharsets.UTF_8) + "... (" + (a.length - MAX_ARG_BYTES) + " more bytes)"
                    : new String(a, StandardCharsets.UTF_8));
        }
        synchronized (this) {
            entries.addFirst(new Entry(nextId++, System.currentTimeMillis() / 1000, micros, kept, client));
            while (entries.size() > Math.max(0, maxLen)) {
                entries.removeLast();
            }
        }
    }

    /** True (once) when Redis' threshold and length were read more than a second ago: the caller refreshes. */
    boolean claimRefresh() {
        long last = readAt.get();
        long now = System.nanoTime();
        return now - last > REFRESH_NANOS && readAt.compareAndSet(last, now);
    }

    /** Re-reads Redis' threshold and length (off the event loop: it is a round trip). */
    void refresh() {
        try {
            slowerThanMicros = Long.parseLong(configGet(redis, "slowlog-log-slower-than"));
            maxLen = Long.parseLong(configGet(redis, "slowlog-max-len"));
        } catch (RuntimeException e) {
            // Redis away or CONFIG refused (ACL): keep the last values.
        }
    }

    /** One Redis setting's value (CONFIG GET); the latency monitor reads its threshold with it too. */
    static String configGet(RedisBackend redis, String name) {
        List<?> reply = (List<?>) redis.execute(List.of("CONFIG".getBytes(), "GET".getBytes(), name.getBytes()));
        return String.valueOf(reply.get(1));
    }

    /** SLOWLOG GET/LEN/RESET with jgears' entries merged in; any other subcommand is Redis' alone. */
    RedisMessage command(List<byte[]> args) {
        String sub = args.size() > 1 ? new String(args.get(1), StandardCharsets.UTF_8).toUpperCase(Locale.ROOT) : "";
        Object reply;
        try {
            reply = redis.execute(args);
        } catch (RuntimeException e) {
            return Replies.error(e.getMessage());
        }
        switch (sub) {
            case "LEN" -> {
                if (reply instanceof Long n) {
                    synchronized (this) {
                        return Replies.integer(n + entries.size());
                    }
                }
            }
            case "RESET" -> {
                synchronized (this) {
                    entries.clear();
                }
                return Replies.OK;
            }
            case "GET" -> {
                if (reply instanceof List<?> theirs) {
                    return merged(theirs, args.size() > 2 ? new String(args.get(2), StandardCharsets.UTF_8) : "10");
                }
            }
            default -> { }
        }
        return Replies.of(reply);
    }

    /** Redis' entries and jgears', newest first (by timestamp; jgears' first within a second), up to count. */
    private RedisMessage merged(List<?> theirs, String countArg) {
        long count;
        try {
            count = Long.parseLong(countArg);
        } catch (NumberFormatException e) {
            count = 10;
        }
        List<Entry> ours;
        synchronized (this) {
            ours = new ArrayList<>(entries);
        }
        List<RedisMessage> out = new ArrayList<>();
        int i = 0;
        int j = 0;
        while ((i < ours.size() || j < theirs.size()) && (count < 0 || out.size() < count)) {
            long theirTime = j < theirs.size() ? (Long) ((List<?>) theirs.get(j)).get(1) : Long.MIN_VALUE;
            if (i < ours.size() && ours.get(i).unixSeconds >= theirTime) {
                out.add(ours.get(i++).reply());
            } else {
                out.add(Replies.of(theirs.get(j++)));
            }
        }
        return Replies.array(out);
    }
}
