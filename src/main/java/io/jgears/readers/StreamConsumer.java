package io.jgears.readers;

import io.jgears.redis.RedisBackend;
import io.jgears.redis.RedisCommandException;
import io.lettuce.core.api.StatefulRedisConnection;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * Reads the streams of one StreamReader registration through a consumer group, so every entry is
 * processed at least once: entries are acknowledged (and with trimStream deleted) only after their
 * execution succeeded; entries delivered before a crash are read again from the group's pending list
 * when jgears starts, and entries idle in other consumers' pending lists are claimed (XAUTOCLAIM).
 * One virtual thread per registration; batches of a stream run one after another, in stream order.
 */
public final class StreamConsumer implements Runnable {
    private static final Logger log = LoggerFactory.getLogger(StreamConsumer.class);
    static final String CONSUMER = "jgears";
    /** How long an entry must sit in another consumer's pending list before it is claimed. */
    private static final long CLAIM_IDLE_MS = 60_000;
    /** The longest XREADGROUP block, so new streams and stop requests are noticed. */
    private static final long MAX_BLOCK_MS = 500;

    public enum Policy { CONTINUE, ABORT, RETRY }

    public record Settings(String prefix, String group, int batch, long durationMillis, Policy onFailed,
                           long retryIntervalMillis, boolean trim) {
    }

    /** Runs one batch of entries of a stream: [id, [field, value, ...]] each; completes with success. */
    public interface BatchRunner {
        CompletableFuture<Boolean> run(String stream, List<Object[]> entries);

        /** The registration stopped itself (onFailedPolicy abort). */
        void aborted(String why);

        boolean paused();
    }

    private final RedisBackend redis;
    /** The session's ACL user: the group is read (and entries acknowledged) as that user. */
    private final io.jgears.redis.RedisUser user;
    private final Settings settings;
    private final BatchRunner runner;
    private final Set<String> streams = ConcurrentHashMap.newKeySet();
    /** Streams whose group is set up and whose pending entries were read again. */
    private final Set<String> ready = ConcurrentHashMap.newKeySet();
    private final Map<String, List<Object[]>> buffered = new LinkedHashMap<>();
    private volatile boolean stopped;
    private Thread thread;

    public StreamConsumer(RedisBackend redis, io.jgears.redis.RedisUser user, Settings settings, BatchRunner runner) {
        this.redis = redis;
        this.user = user;
        this.settings = settings;
        this.runner = runner;
    }

    public void start(String name) {
        thread = Thread.ofVirtual().name("jgears-stream-" + name).start(this);
    }

    /** A stream matching the prefix appeared (an xadd event): read it from now on. */
    public void discovered(String stream) {
        streams.add(stream);
    }

    /** No batch starts after this returns; one already running completes. */
    public void stop() {
        stopped = true;
        if (thread != null) {
            thread.interrupt();
        }
    }

    @Override
    public void run() {
        try (StatefulRedisConnection<byte[], byte[]> conn = redis.connectDedicated(user)) {
            scanExisting(conn);
            long firstBuffered = 0;
            while (!stopped) {
                try {
                    if (runner.paused()) {
                        Thread.sleep(100);
                        continue;
                    }
                    for (String s : streams) {
                        if (!ready.contains(s)) {
                            prepare(conn, s);
                        }
                    }
                    if (ready.isEmpty()) {
                        Thread.sleep(100);
                        continue;
                    }
                    long block = MAX_BLOCK_MS;
                    if (!buffered.isEmpty() && settings.durationMillis() > 0) {
                        block = Math.max(1, Math.min(block, firstBuffered + settings.durationMillis() - System.currentTimeMillis()));
                    }
                    int read = readNew(conn, block);
                    if (read > 0 && firstBuffered == 0) {
                        firstBuffered = System.currentTimeMillis();
                    }
                    boolean timeUp = settings.durationMillis() > 0 && firstBuffered > 0
                            && System.currentTimeMillis() - firstBuffered >= settings.durationMillis();
                    for (String s : new ArrayList<>(buffered.keySet())) {
                        List<Object[]> entries = buffered.get(s);
                        if (entries.size() >= settings.batch() || timeUp) {
                            buffered.remove(s);
                            if (!process(conn, s, entries)) {
                                return;
                            }
                        }
                    }
                    if (buffered.isEmpty()) {
                        firstBuffered = 0;
                    }
                } catch (InterruptedException e) {
                    if (stopped) {
                        return;
                    }
                } catch (RedisCommandException e) {
                    if (stopped) {
                        return;
                    }
                    if (e.getMessage().startsWith("NOGROUP")) {
                        // The stream was deleted (and maybe created again): set its group up again.
                        ready.clear();
                        continue;
                    }
                    log.warn("stream reader {}: {}", settings.group(), e.getMessage());
                    sleepQuietly(1000);
                }
            }
        } catch (RuntimeException e) {
            if (!stopped) {
                log.error("stream reader {} stopped", settings.group(), e);
                runner.aborted("stream reader failed: " + e.getMessage());
            }
        }
    }

    private void scanExisting(StatefulRedisConnection<byte[], byte[]> conn) {
        String cursor = "0";
        do {
            List<?> r = (List<?>) RedisBackend.dispatch(conn, List.of("SCAN".getBytes(), cursor.getBytes(), "MATCH".getBytes(),
                    settings.prefix().getBytes(StandardCharsets.UTF_8), "COUNT".getBytes(), "1000".getBytes(),
                    "TYPE".getBytes(), "stream".getBytes()));
            cursor = String.valueOf(r.get(0));
            for (Object k : (List<?>) r.get(1)) {
                streams.add(String.valueOf(k));
            }
        } while (!cursor.equals("0"));
    }

    /** Creates the group (from the stream's start) if missing, claims stale entries, re-runs our pending ones. */
    private void prepare(StatefulRedisConnection<byte[], byte[]> conn, String stream) throws InterruptedException {
        byte[] s = stream.getBytes(StandardCharsets.UTF_8);
        byte[] g = settings.group().getBytes(StandardCharsets.UTF_8);
        try {
            RedisBackend.dispatch(conn, List.of("XGROUP".getBytes(), "CREATE".getBytes(), s, g, "0".getBytes()));
        } catch (RedisCommandException e) {
            if (!e.getMessage().startsWith("BUSYGROUP")) {
                if (e.getMessage().contains("requires the key to exist")) {
                    streams.remove(stream);
                    return;
                }
                throw e;
            }
        }
        String start = "0-0";
        do {
            List<?> r = (List<?>) RedisBackend.dispatch(conn, List.of("XAUTOCLAIM".getBytes(), s, g, CONSUMER.getBytes(),
                    String.valueOf(CLAIM_IDLE_MS).getBytes(), start.getBytes(), "COUNT".getBytes(), "1000".getBytes(), "JUSTID".getBytes()));
            start = String.valueOf(r.get(0));
        } while (!start.equals("0-0") && !stopped);
        // Entries delivered to us before a crash or restart: processed again (at least once).
        while (!stopped) {
            List<Object[]> pending = read(conn, List.of(stream), "0", 0);
            if (pending.isEmpty()) {
                break;
            }
            if (!process(conn, stream, pending)) {
                return;
            }
        }
        ready.add(stream);
    }

    private int readNew(StatefulRedisConnection<byte[], byte[]> conn, long blockMillis) {
        List<String> names = new ArrayList<>(ready);
        List<byte[]> args = new ArrayList<>();
        args.addAll(List.of("XREADGROUP".getBytes(), "GROUP".getBytes(), settings.group().getBytes(StandardCharsets.UTF_8),
                CONSUMER.getBytes(), "COUNT".getBytes(), String.valueOf(settings.batch()).getBytes(),
                "BLOCK".getBytes(), String.valueOf(blockMillis).getBytes(), "STREAMS".getBytes()));
        names.forEach(n -> args.add(n.getBytes(StandardCharsets.UTF_8)));
        names.forEach(n -> args.add(">".getBytes()));
        Object reply = RedisBackend.dispatch(conn, args);
        int n = 0;
        if (reply instanceof List<?> perStream) {
            for (Object o : perStream) {
                List<?> sr = (List<?>) o;
                String stream = String.valueOf(sr.get(0));
                List<Object[]> entries = entries((List<?>) sr.get(1));
                buffered.computeIfAbsent(stream, k -> new ArrayList<>()).addAll(entries);
                n += entries.size();
            }
        }
        return n;
    }

    private List<Object[]> read(StatefulRedisConnection<byte[], byte[]> conn, List<String> names, String id, long block) {
        List<byte[]> args = new ArrayList<>(List.of("XREADGROUP".getBytes(), "GROUP".getBytes(),
                settings.group().getBytes(StandardCharsets.UTF_8), CONSUMER.getBytes(), "COUNT".getBytes(),
                String.valueOf(Math.max(settings.batch(), 100)).getBytes(), "STREAMS".getBytes()));
        names.forEach(n -> args.add(n.getBytes(StandardCharsets.UTF_8)));
        names.forEach(n -> args.add(id.getBytes()));
        Object reply = RedisBackend.dispatch(conn, args);
        List<Object[]> out = new ArrayList<>();
        if (reply instanceof List<?> perStream) {
            for (Object o : perStream) {
                out.addAll(entries((List<?>) ((List<?>) o).get(1)));
            }
        }
        return out;
    }

    private static List<Object[]> entries(List<?> raw) {
        List<Object[]> out = new ArrayList<>(raw.size());
        for (Object e : raw) {
            List<?> entry = (List<?>) e;
            List<?> fields = (List<?>) entry.get(1);
            // A pending entry deleted meanwhile comes back without fields: acknowledged, not run.
            out.add(new Object[]{String.valueOf(entry.get(0)), fields == null ? null : fields.stream().map(String::valueOf).toArray()});
        }
        return out;
    }

    /** Runs a batch under the failure policy; false when the registration aborted or stopped. */
    private boolean process(StatefulRedisConnection<byte[], byte[]> conn, String stream, List<Object[]> entries)
            throws InterruptedException {
        List<Object[]> live = entries.stream().filter(e -> e[1] != null).toList();
        while (!stopped) {
            boolean ok;
            if (live.isEmpty()) {
                ok = true;
            } else {
                try {
                    ok = runner.run(stream, live).get();
                } catch (java.util.concurrent.ExecutionException e) {
                    ok = false;
                }
            }
            if (ok || settings.onFailed() == Policy.CONTINUE) {
                acknowledge(conn, stream, entries);
                return true;
            }
            if (settings.onFailed() == Policy.ABORT) {
                runner.aborted("a batch of " + stream + " failed and onFailedPolicy is abort; its entries stay pending");
                stopped = true;
                return false;
            }
            TimeUnit.MILLISECONDS.sleep(Math.max(1, settings.retryIntervalMillis()));
        }
        return false;
    }

    private void acknowledge(StatefulRedisConnection<byte[], byte[]> conn, String stream, List<Object[]> entries) {
        byte[] s = stream.getBytes(StandardCharsets.UTF_8);
        List<byte[]> ack = new ArrayList<>(List.of("XACK".getBytes(), s, settings.group().getBytes(StandardCharsets.UTF_8)));
        List<byte[]> del = new ArrayList<>(List.of("XDEL".getBytes(), s));
        for (Object[] e : entries) {
            ack.add(((String) e[0]).getBytes());
            del.add(((String) e[0]).getBytes());
        }
        RedisBackend.dispatch(conn, ack);
        if (settings.trim()) {
            RedisBackend.dispatch(conn, del);
        }
    }

    private static void sleepQuietly(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
