package io.jgears.redis;

import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisCommandExecutionException;
import io.lettuce.core.RedisURI;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.TransactionResult;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.ProtocolKeyword;
import io.lettuce.core.protocol.ProtocolVersion;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;

/**
 * jgears' own access to Redis (Lettuce): the commands Python runs with {@code execute()} and the
 * batched key reads of KeysReader. Client connections are not served from here; they are forwarded.
 */
public final class RedisBackend implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(RedisBackend.class);

    private final RedisURI uri;
    private final RedisClient client;
    private final StatefulRedisConnection<byte[], byte[]> shared;
    private final byte[] readBatchScript;
    private volatile String readBatchSha;

    public RedisBackend(RedisURI uri, Duration commandTimeout) {
        this.uri = uri;
        this.client = RedisClient.create(uri);
        client.setOptions(ClientOptions.builder()
                .protocolVersion(ProtocolVersion.RESP2)
                .autoReconnect(true)
                // A script calling execute() while Redis is down gets an error, not an unbounded wait.
                .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
                .timeoutOptions(TimeoutOptions.enabled(commandTimeout))
                .build());
        this.shared = client.connect(ByteArrayCodec.INSTANCE);
        this.readBatchScript = loadResource("read_batch.lua");
        this.readBatchSha = String.valueOf(dispatch(shared, List.of("SCRIPT".getBytes(), "LOAD".getBytes(), readBatchScript)));
        log.info("connected to Redis at {}:{} ({})", uri.getHost(), uri.getPort(), serverVersion());
    }

    private String serverVersion() {
        Object info = execute(List.of("INFO".getBytes(), "server".getBytes()));
        for (String line : String.valueOf(info).split("\r?\n")) {
            if (line.startsWith("redis_version:")) {
                return "redis " + line.substring("redis_version:".length());
            }
        }
        return "unknown version";
    }

    public RedisURI uri() {
        return uri;
    }

    /** Runs one command on the shared (pipelining, thread-safe) connection; throws {@link RedisCommandException}. */
    public Object execute(List<byte[]> args) {
        return dispatch(shared, args);
    }

    /** A connection of its own, for MULTI/EXEC blocks that must not share a connection's state. */
    public StatefulRedisConnection<byte[], byte[]> connectDedicated() {
        return client.connect(ByteArrayCodec.INSTANCE);
    }

    public static Object dispatch(StatefulRedisConnection<byte[], byte[]> connection, List<byte[]> args) {
        if (args.isEmpty()) {
            throw new RedisCommandException("ERR wrong number of arguments: no command given");
        }
        CommandArgs<byte[], byte[]> commandArgs = new CommandArgs<>(ByteArrayCodec.INSTANCE);
        for (int i = 1; i < args.size(); i++) {
            commandArgs.add(args.get(i));
        }
        try {
            Object reply = connection.sync().dispatch(new RawKeyword(args.getFirst()), new GenericOutput(), commandArgs);
            // Lettuce handles MULTI/EXEC itself: EXEC answers a TransactionResult of the queued replies.
            if (reply instanceof TransactionResult tx) {
                return tx.wasDiscarded() ? null : tx.stream()
                        .map(r -> r instanceof Throwable t ? new RedisError(t.getMessage()) : r).toList();
            }
            return reply;
        } catch (RedisCommandExecutionException e) {
            throw new RedisCommandException(e.getMessage());
        } catch (RuntimeException e) {
            throw new RedisCommandException("ERR jgears could not run the command on Redis: " + rootMessage(e));
        }
    }

    /**
     * One KeysReader batch in one round trip: SCAN (or the single key with noScan), then each key's type
     * and value, read inside Redis by a Lua script. Returns [cursor, key, type, value, key, type, value...].
     */
    public List<?> readBatch(String cursor, String pattern, int count, boolean readValue, boolean noScan) {
        List<byte[]> args = List.of("EVALSHA".getBytes(), readBatchSha.getBytes(), "0".getBytes(),
                (noScan ? "key" : "scan").getBytes(), cursor.getBytes(), pattern.getBytes(StandardCharsets.UTF_8),
                (readValue ? "1" : "0").getBytes(), String.valueOf(count).getBytes());
        try {
            return (List<?>) dispatch(shared, args);
        } catch (RedisCommandException e) {
            if (!e.getMessage().startsWith("NOSCRIPT")) {
                throw e;
            }
            // Redis was restarted or flushed its script cache: load the script again.
            readBatchSha = String.valueOf(dispatch(shared, List.of("SCRIPT".getBytes(), "LOAD".getBytes(), readBatchScript)));
            return readBatch(cursor, pattern, count, readValue, noScan);
        }
    }

    /**
     * The type and value of each key, in one round trip (key events): [cursor, key, type, value, ...] with
     * every key present, type 'none' for a missing one.
     */
    public List<?> readKeys(List<byte[]> keys, boolean readValue) {
        List<byte[]> args = new java.util.ArrayList<>(keys.size() + 8);
        args.addAll(List.of("EVALSHA".getBytes(), readBatchSha.getBytes(), "0".getBytes(), "keys".getBytes(),
                "0".getBytes(), "".getBytes(), (readValue ? "1" : "0").getBytes(), "0".getBytes()));
        args.addAll(keys);
        try {
            return (List<?>) dispatch(shared, args);
        } catch (RedisCommandException e) {
            if (!e.getMessage().startsWith("NOSCRIPT")) {
                throw e;
            }
            readBatchSha = String.valueOf(dispatch(shared, List.of("SCRIPT".getBytes(), "LOAD".getBytes(), readBatchScript)));
            return readKeys(keys, readValue);
        }
    }

    /** A pub/sub connection (key event notifications). */
    public io.lettuce.core.pubsub.StatefulRedisPubSubConnection<byte[], byte[]> connectPubSub() {
        return client.connectPubSub(ByteArrayCodec.INSTANCE);
    }

    public RedisClient client() {
        return client;
    }

    private static byte[] loadResource(String name) {
        try (InputStream in = RedisBackend.class.getResourceAsStream(name)) {
            if (in == null) {
                throw new IllegalStateException("missing resource " + name);
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    static String rootMessage(Throwable t) {
        Throwable c = t;
        while (c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
        }
        return c.getMessage() == null ? c.getClass().getSimpleName() : c.getMessage();
    }

    @Override
    public void close() {
        shared.close();
        client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
    }

    private record RawKeyword(byte[] bytes) implements ProtocolKeyword {
        @Override
        public byte[] getBytes() {
            return bytes;
        }

        @Override
        public String toString() {
            return new String(bytes, StandardCharsets.UTF_8);
        }
    }
}
