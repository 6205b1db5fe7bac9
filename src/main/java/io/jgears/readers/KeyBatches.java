package io.jgears.readers;

import io.jgears.redis.GenericOutput;
import io.jgears.redis.RedisBackend;
import io.jgears.redis.RedisCommandException;
import io.jgears.redis.RedisUser;
import org.graalvm.polyglot.HostAccess;

import java.util.ArrayDeque;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.UnaryOperator;

/**
 * The batches of one KeysReader run, read ahead of Python: while Python works through a batch, the next
 * ones are being read on virtual threads, and the SCAN for one batch runs while the values of the one
 * before are read, so Redis never waits for jgears and Python rarely waits for Redis. Each batch is handed
 * over packed as plain strings (see {@link #next()}), so Python reads it in a few accesses instead of
 * three per key. At most {@link #DEPTH} batches are read ahead; a run that stops early leaves them to the
 * garbage collector.
 */
public final class KeyBatches {
    private static final Executor readers = Executors.newThreadPerTaskExecutor(
            Thread.ofVirtual().name("jgears-keys-reader-", 0).factory());
    /** Batches read ahead of the one Python is working on. */
    static final int DEPTH = 2;

    /** One SCAN step: the cursor it returned and its keys, or (the scripted path) the whole raw batch. */
    private record Scan(String next, List<?> keys, List<?> batch) {
        static final Scan END = new Scan("0", List.of(), null);
    }

    private final RedisBackend redis;
    private final RedisUser user;
    private final String pattern;
    private final int count;
    private final boolean readValue;
    private final boolean noScan;
    /** Filters a raw batch down to the keys the session's user may read (restored sessions of other users). */
    private final UnaryOperator<List<?>> readable;
    private final long timeoutMillis;
    private final ArrayDeque<CompletableFuture<Object[]>> ahead = new ArrayDeque<>();
    /** The last SCAN step scheduled: the next one starts from its cursor. */
    private CompletableFuture<Scan> lastScan;

    public KeyBatches(RedisBackend redis, RedisUser user, String pattern, int count, boolean readValue, boolean noScan,
                      UnaryOperator<List<?>> readable) {
        this.redis = redis;
        this.user = user;
        this.pattern = pattern;
        this.count = count;
        this.readValue = readValue;
        this.noScan = noScan;
        this.readable = readable;
        // A batch is at most three commands, each bounded by the command timeout.
        this.timeoutMillis = 3 * redis.commandTimeout().toMillis() + 1000;
        for (int i = 0; i <= DEPTH; i++) {
            schedule();
        }
    }

    /**
     * The next batch, or null after the last: [keys concatenated, their lengths (comma-joined code-point
     * counts), types (comma-joined), values concatenated or a host array when some are not strings, their
     * lengths (-1: none) or null].
     */
    @HostAccess.Export
    public Object[] next() {
        CompletableFuture<Object[]> first = ahead.poll();
        if (first == null) {
            return null;
        }
        Object[] batch;
        try {
            batch = first.get(timeoutMillis, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            ahead.clear();
            throw e.getCause() instanceof RuntimeException r ? r : new RedisCommandException("ERR " + e.getCause());
        } catch (TimeoutException e) {
            ahead.clear();
            throw new RedisCommandException("ERR jgears could not read the keys from Redis: timed out");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RedisCommandException("ERR interrupted while reading keys");
        }
        if (batch == null) {
            ahead.clear();
            return null;
        }
        schedule();
        return batch;
    }

    /** Adds one batch to the read-ahead: its SCAN after the previous one's, then its values. */
    private void schedule() {
        CompletableFuture<Scan> previous = lastScan;
        CompletableFuture<Scan> scan = previous == null
                ? CompletableFuture.supplyAsync(() -> scan("0"), readers)
                : previous.thenApplyAsync(p -> p == Scan.END || p.next.equals("0") ? Scan.END : scan(p.next), readers);
        lastScan = scan;
        ahead.add(scan.thenApplyAsync(s -> s == Scan.END ? null : pack(readable.apply(values(s))), readers));
    }

    private Scan scan(String cursor) {
        if (noScan || !readValue) {
            // One key, or types only: the script reads the batch in one go.
            List<?> batch = redis.readBatch(user, cursor, pattern, count, readValue, noScan);
            return new Scan(noScan ? "0" : String.valueOf(batch.getFirst()), null, batch);
        }
        List<?> reply = redis.scan(user, cursor, pattern, count);
        return new Scan(String.valueOf(reply.getFirst()), (List<?>) reply.get(1), null);
    }

    /** [key, type, (value), ...] of a scanned batch, without missing or unreadable keys (first item: the cursor). */
    private List<?> values(Scan scan) {
        if (scan.batch != null) {
            return scan.batch;
        }
        List<byte[]> keys = new java.util.ArrayList<>(scan.keys.size());
        for (Object k : scan.keys) {
            keys.add(String.valueOf(k).getBytes(java.nio.charset.StandardCharsets.UTF_8));
        }
        return redis.readValues(user, scan.next, keys, false);
    }

    /** The packed parts of a raw batch, as {@link #next()} gives them. */
    private Object[] pack(List<?> batch) {
        int step = readValue ? 3 : 2;
        int n = (batch.size() - 1) / step;
        StringBuilder keys = new StringBuilder();
        StringBuilder keyLengths = new StringBuilder();
        StringBuilder types = new StringBuilder();
        StringBuilder values = new StringBuilder();
        StringBuilder valueLengths = new StringBuilder();
        boolean plain = true;
        for (int i = 1; i + step - 1 < batch.size(); i += step) {
            String sep = i == 1 ? "" : ",";
            String key = String.valueOf(batch.get(i));
            keys.append(key);
            keyLengths.append(sep).append(key.codePointCount(0, key.length()));
            types.append(sep).append(batch.get(i + 1));
            if (readValue && plain) {
                Object v = batch.get(i + 2);
                if (v instanceof String str) {
                    values.append(str);
                    valueLengths.append(sep).append(str.codePointCount(0, str.length()));
                } else if (v == null || Boolean.FALSE.equals(v)) {
                    valueLengths.append(sep).append(-1);
                } else {
                    plain = false;
                }
            }
        }
        Object packedValues = values.toString();
        if (!plain) {
            // Hashes, lists and the like: Python reads these element by element from a host array.
            Object[] raw = new Object[n];
            for (int k = 0; k < n; k++) {
                raw[k] = GenericOutput.toHost(batch.get(1 + k * step + 2));
            }
            packedValues = raw;
        }
        return new Object[]{keys.toString(), keyLengths.toString(), types.toString(),
                packedValues, plain ? valueLengths.toString() : null};
    }
}
