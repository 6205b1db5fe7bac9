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
    /**
     * Set while a registration takes keymiss events: jgears' own reads must not cause them, so key values
     * are read by the script (which checks that a key exists before it reads it), not by MGET.
     */
    private volatile boolean avoidKeyMisses;
    /** One pipelined connection per ACL user whose sessions run commands (authenticated as that user). */
    private final java.util.concurrent.ConcurrentHashMap<RedisUser, StatefulRedisConnection<byte[], byte[]>> userConnections =
            new java.util.concurrent.ConcurrentHashMap<>();
    private final String ownUser;
    private final char[] ownPassword;
    private final Duration commandTimeout;
    /**
     * Blocking clients (Jedis) for execute(), jgears' own under the key "" and one per ACL user: the calling
     * thread writes the command and reads the reply on a pooled socket of its own, with no hand-off to an
     * event loop thread and back. On this machine a round trip costs about half of a Lettuce sync call
     * (one thread: ~17-25k vs ~11k INCR/s), and threads in one context overlap their round trips.
     */
    private final java.util.concurrent.ConcurrentHashMap<String, redis.clients.jedis.RedisClient> blockingClients =
            new java.util.concurrent.ConcurrentHashMap<>();

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
        this.commandTimeout = commandTimeout;
        this.shared = client.connect(ByteArrayCodec.INSTANCE);
        io.lettuce.core.RedisCredentials own = uri.getCredentialsProvider() == null ? null
                : uri.getCredentialsProvider().resolveCredentials().block();
        this.ownUser = own != null && own.getUsername() != null ? own.getUsername() : "default";
        this.ownPassword = own != null && own.hasPassword() ? own.getPassword() : null;
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

    public Duration commandTimeout() {
        return commandTimeout;
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

    /** A connection of its own to another database of the same Redis (jgears' own state, see SessionStore). */
    public StatefulRedisConnection<byte[], byte[]> connectDatabase(int database) {
        return client.connect(ByteArrayCodec.INSTANCE, RedisURI.builder(uri).withDatabase(database).build());
    }

    /** The database clients use (the one in jgears' Redis URL). */
    public int database() {
        return uri.getDatabase();
    }

    /** A connection of its own authenticated as {@code user} (jgears' own when null or without password). */
    public StatefulRedisConnection<byte[], byte[]> connectDedicated(RedisUser user) {
        if (!needsOwnConnection(user)) {
            return connectDedicated();
        }
        return client.connect(ByteArrayCodec.INSTANCE, uriFor(user));
    }

    /** The shared pipelined connection of {@code user}: jgears' own when null, restored or jgears' user. */
    public StatefulRedisConnection<byte[], byte[]> connectionFor(RedisUser user) {
        if (!needsOwnConnection(user)) {
            return shared;
        }
        return userConnections.computeIfAbsent(user, u -> client.connect(ByteArrayCodec.INSTANCE, uriFor(u)));
    }

    private boolean needsOwnConnection(RedisUser user) {
        return user != null && user.passwordKnown() && !isOwnUser(user);
    }

    /** A session restored for another ACL user: its commands must pass ACL DRYRUN as that user. */
    public boolean needsDryRun(RedisUser user) {
        return user != null && !user.passwordKnown() && !isOwnUser(user);
    }

    /** jgears' own ACL user and password (null password: Redis needs none). */
    public RedisUser ownUser() {
        return new RedisUser(ownUser, ownPassword == null ? null : new String(ownPassword));
    }

    private boolean isOwnUser(RedisUser user) {
        return user.name().equals(ownUser) && (ownPassword == null
                || (user.password() != null && java.util.Arrays.equals(ownPassword, user.password().toCharArray())));
    }

    private RedisURI uriFor(RedisUser user) {
        return RedisURI.builder(uri).withAuthentication(user.name(), user.password().toCharArray()).build();
    }

    /** Null when {@code user} may run this command, else Redis' reason (ACL DRYRUN). */
    public String dryRun(RedisUser user, List<byte[]> command) {
        List<byte[]> args = new java.util.ArrayList<>(command.size() + 3);
        args.add("ACL".getBytes());
        args.add("DRYRUN".getBytes());
        args.add(user.name().getBytes(StandardCharsets.UTF_8));
        args.addAll(command);
        Object reply = dispatch(shared, args);
        String text = String.valueOf(reply);
        return text.equals("OK") ? null : "NOPERM " + text;
    }

    /** Whether Redis at host:port refuses an unauthenticated client (so jgears must too). */
    public static boolean requiresAuth(String host, int port) {
        try (java.net.Socket s = new java.net.Socket()) {
            s.connect(new java.net.InetSocketAddress(host, port), 5000);
            s.setSoTimeout(5000);
            s.getOutputStream().write("PING\r\n".getBytes(StandardCharsets.US_ASCII));
            byte[] buf = new byte[64];
            int n = s.getInputStream().read(buf);
            return n > 0 && new String(buf, 0, n, StandardCharsets.US_ASCII).startsWith("-NOAUTH");
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * Runs a command as {@code user} on a blocking pooled connection (see {@link #blockingClients}); the
     * reply as {@link #dispatch} gives it. Not for commands that change a connection's state or block.
     */
    public Object executeBlocking(RedisUser user, List<byte[]> args) {
        return executeBlocking(user, args, false);
    }

    /** {@code keepBinary}: execute()'s replies, where a string that is not UTF-8 stays a {@link BinaryString}. */
    public Object executeBlocking(RedisUser user, List<byte[]> args, boolean keepBinary) {
        if (args.isEmpty()) {
            throw new RedisCommandException("ERR wrong number of arguments: no command given");
        }
        boolean own = !needsOwnConnection(user);
        String key = own ? "" : user.name() + "\0" + user.password();
        redis.clients.jedis.RedisClient jedis = blockingClients.computeIfAbsent(key, k -> blockingClient(own ? null : user));
        byte[][] rest = args.subList(1, args.size()).toArray(new byte[0][]);
        byte[] name = args.getFirst();
        try {
            return fromJedis(jedis.sendCommand(() -> name, rest), keepBinary ? StandardCharsets.UTF_8.newDecoder() : null);
        } catch (redis.clients.jedis.exceptions.JedisDataException e) {
            throw new RedisCommandException(e.getMessage());
        } catch (RuntimeException e) {
            // Redis went away or restarted: the idle pooled sockets are as dead as this one.
            jedis.getPool().clear();
            throw new RedisCommandException("ERR jgears could not run the command on Redis: " + rootMessage(e));
        }
    }

    private redis.clients.jedis.RedisClient blockingClient(RedisUser user) {
        redis.clients.jedis.DefaultJedisClientConfig.Builder config = redis.clients.jedis.DefaultJedisClientConfig.builder()
                .database(uri.getDatabase())
                .socketTimeoutMillis((int) commandTimeout.toMillis())
                // RESP2, as RedisGears' module calls and jgears' Lettuce connections see replies: Jedis 8's
                // client speaks RESP3 unless told, and its maps (HGETALL, CONFIG GET), doubles and pairs
                // (ZRANGE WITHSCORES) reached Python in shapes RedisGears never gives.
                .protocol(redis.clients.jedis.RedisProtocol.RESP2)
                .clientName("jgears");
        if (user != null) {
            config.user(user.name()).password(user.password());
        } else if (ownPassword != null) {
            config.user(ownUser).password(new String(ownPassword));
        }
        org.apache.commons.pool2.impl.GenericObjectPoolConfig<redis.clients.jedis.Connection> pool =
                new org.apache.commons.pool2.impl.GenericObjectPoolConfig<>();
        pool.setMaxTotal(256);
        pool.setMaxIdle(64);
        pool.setJmxEnabled(false);
        return redis.clients.jedis.RedisClient.builder().hostAndPort(uri.getHost(), uri.getPort())
                .clientConfig(config.build()).poolConfig(pool).build();
    }

    /** Jedis' reply values as {@link GenericOutput} gives them: strings, longs, lists, errors inside lists. */
    private static Object fromJedis(Object reply, java.nio.charset.CharsetDecoder strict) {
        if (reply instanceof byte[] bytes) {
            return strict == null ? new String(bytes, StandardCharsets.UTF_8)
                    : GenericOutput.decodeOrKeep(strict, java.nio.ByteBuffer.wrap(bytes));
        }
        if (reply instanceof List<?> list) {
            List<Object> out = new java.util.ArrayList<>(list.size());
            for (Object x : list) {
                out.add(fromJedis(x, strict));
            }
            return out;
        }
        if (reply instanceof redis.clients.jedis.exceptions.JedisDataException e) {
            return new RedisError(e.getMessage());
        }
        return reply;
    }

    /**
     * Sends commands as {@code user} on that user's shared pipelined connection in one write, without
     * waiting: each reply as {@link #dispatch} gives it for execute() (a string that is not UTF-8 stays a
     * {@link BinaryString}), or a {@link RedisCommandException}, completes its future (on Lettuce's I/O thread).
     */
    public List<java.util.concurrent.CompletableFuture<Object>> dispatchAll(RedisUser user, List<List<byte[]>> commands) {
        List<io.lettuce.core.protocol.AsyncCommand<byte[], byte[], Object>> batch = new java.util.ArrayList<>(commands.size());
        List<java.util.concurrent.CompletableFuture<Object>> out = new java.util.ArrayList<>(commands.size());
        for (List<byte[]> args : commands) {
            var command = new io.lettuce.core.protocol.AsyncCommand<>(
                    new io.lettuce.core.protocol.Command<>(new RawKeyword(args.getFirst()), new GenericOutput(true), argsAfterName(args)));
            batch.add(command);
            out.add(command.handle((reply, error) -> {
                if (error == null) {
                    return reply;
                }
                Throwable cause = error instanceof java.util.concurrent.CompletionException && error.getCause() != null ? error.getCause() : error;
                throw cause instanceof RedisCommandExecutionException
                        ? new RedisCommandException(cause.getMessage())
                        : new RedisCommandException("ERR jgears could not run the command on Redis: " + rootMessage(cause));
            }));
        }
        try {
            StatefulRedisConnection<byte[], byte[]> connection = connectionFor(user);
            if (!connection.isOpen()) {
                // Redis is away: fail now rather than when the command times out (a minute).
                throw new RedisCommandException("ERR jgears could not run the command on Redis: not connected");
            }
            connection.dispatch(batch);
        } catch (RuntimeException e) {
            batch.forEach(c -> c.completeExceptionally(e));
        }
        return out;
    }

    public static Object dispatch(StatefulRedisConnection<byte[], byte[]> connection, List<byte[]> args) {
        return dispatch(connection, args, false);
    }

    /** {@code keepBinary}: execute()'s replies, where a string that is not UTF-8 stays a {@link BinaryString}. */
    public static Object dispatch(StatefulRedisConnection<byte[], byte[]> connection, List<byte[]> args, boolean keepBinary) {
        if (args.isEmpty()) {
            throw new RedisCommandException("ERR wrong number of arguments: no command given");
        }
        try {
            Object reply = connection.sync().dispatch(new RawKeyword(args.getFirst()), new GenericOutput(keepBinary), argsAfterName(args));
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
        return readBatch(null, cursor, pattern, count, readValue, noScan);
    }

    /** {@link #readBatch(String, String, int, boolean, boolean)} as {@code user} (its ACL applies to the script's reads). */
    public List<?> readBatch(RedisUser user, String cursor, String pattern, int count, boolean readValue, boolean noScan) {
        return runReadScript(user, List.of((noScan ? "key" : "scan").getBytes(), cursor.getBytes(),
                pattern.getBytes(StandardCharsets.UTF_8), (readValue ? "1" : "0").getBytes(), String.valueOf(count).getBytes()));
    }

    /** SCAN cursor MATCH pattern COUNT count as {@code user}: [next cursor, [keys]]. */
    public List<?> scan(RedisUser user, String cursor, String pattern, int count) {
        return (List<?>) executeBlocking(user, List.of("SCAN".getBytes(), cursor.getBytes(StandardCharsets.UTF_8),
                "MATCH".getBytes(), pattern.getBytes(StandardCharsets.UTF_8), "COUNT".getBytes(), String.valueOf(count).getBytes()));
    }

    /**
     * The values of the keys one SCAN gave, as {@link #readBatch} gives a batch (cursor first) but without
     * Lua for the common case: one MGET for the whole batch. Inside the script every key costs an ACL check
     * and two redis.call()s: 2.8 ms of Redis' time per 1000 keys, against 1.2 ms for SCAN plus MGET
     * (measured with INFO commandstats). MGET answers nil
     * for keys that are not strings (or are gone): only those go through the script, which reads them by
     * type. A user that may not read some of the keys gets NOPERM for the MGET: then the script reads the
     * whole batch, leaving those keys out. On a Redis Cluster node one MGET may not span slots:
     * {@link #getEach} stands in for it. With {@code keepMissing} (key events) every key is in the
     * answer, a missing one as type 'none' and an unreadable one as 'denied'.
     */
    public List<?> readValues(RedisUser user, String next, List<byte[]> keys, boolean keepMissing) {
        List<Object> out = new java.util.ArrayList<>(1 + keys.size() * 3);
        out.add(next);
        if (keys.isEmpty()) {
            return out;
        }
        if (avoidKeyMisses) {
            List<?> read = readKeys(user, keys, true);
            return keepMissing ? read : present(read, next);
        }
        List<?> values;
        try {
            values = crossSlot && keys.size() > 1 ? getEach(user, keys) : mget(user, keys);
        } catch (RedisCommandException e) {
            if (e.getMessage().startsWith("CROSSSLOT")) {
                // A Redis Cluster node: one MGET may not span slots; from now on the script GETs each key.
                crossSlot = true;
                return readValues(user, next, keys, keepMissing);
            }
            if (e.getMessage().startsWith("MOVED") || e.getMessage().startsWith("ASK")) {
                // One key (MGET of one key is allowed on a cluster node) that a resharding moved away.
                throw new RedisCommandException("ERR KeysReader could not read key '" + new String(keys.getFirst(), StandardCharsets.UTF_8)
                        + "' on this shard (moved by a resharding): " + e.getMessage());
            }
            if (!e.getMessage().startsWith("NOPERM")) {
                throw e;
            }
            List<?> read = readKeys(user, keys, true);
            return keepMissing ? read : present(read, next);
        }
        List<byte[]> others = new java.util.ArrayList<>();
        for (int i = 0; i < keys.size(); i++) {
            if (values.get(i) == null) {
                others.add(keys.get(i));
            }
        }
        java.util.Map<Object, List<?>> typed = new java.util.HashMap<>();
        if (!others.isEmpty()) {
            List<?> read = readKeys(user, others, true);
            for (int i = 1; i + 2 < read.size(); i += 3) {
                typed.put(read.get(i), read.subList(i + 1, i + 3));
            }
        }
        for (int i = 0; i < keys.size(); i++) {
            String key = new String(keys.get(i), StandardCharsets.UTF_8);
            Object value = values.get(i);
            if (value != null) {
                out.add(key);
                out.add("string");
                out.add(value);
            } else {
                List<?> tv = typed.get(key);
                String type = tv == null ? "none" : String.valueOf(tv.get(0));
                if (keepMissing || (!type.equals("none") && !type.equals("denied"))) {
                    out.add(key);
                    out.add(type);
                    out.add(tv == null ? null : tv.get(1));
                }
            }
        }
        return out;
    }

    private List<?> mget(RedisUser user, List<byte[]> keys) {
        List<byte[]> mget = new java.util.ArrayList<>(keys.size() + 1);
        mget.add("MGET".getBytes());
        mget.addAll(keys);
        return (List<?>) executeBlocking(user, mget);
    }

    /**
     * MGET on a Redis Cluster node, where the keys of one SCAN batch are in many slots (all served by this
     * node): the script GETs each key in one round trip. As MGET, nil for a key that is missing or not a
     * string, and for one {@code user} may not read (unlike MGET, which refuses the whole batch); a key
     * this node no longer serves is an error (see read_batch.lua).
     */
    private List<?> getEach(RedisUser user, List<byte[]> keys) {
        List<byte[]> argv = new java.util.ArrayList<>(keys.size() + 5);
        argv.addAll(List.of("strings".getBytes(), "0".getBytes(), "".getBytes(), "1".getBytes(), "0".getBytes()));
        argv.addAll(keys);
        return runReadScript(user, argv);
    }

    /** Set at the first CROSSSLOT answer to a batch's MGET (a cluster node): batches are read by {@link #getEach}. */
    private volatile boolean crossSlot;

    /** See {@link #avoidKeyMisses}. */
    public void avoidKeyMisses(boolean avoid) {
        avoidKeyMisses = avoid;
    }

    /** A readKeys() answer as a scan batch at {@code cursor}: missing and unreadable keys left out. */
    private static List<?> present(List<?> read, String cursor) {
        List<Object> out = new java.util.ArrayList<>(read.size());
        out.add(cursor);
        for (int i = 1; i + 2 < read.size(); i += 3) {
            Object type = read.get(i + 1);
            if (!"none".equals(type) && !"denied".equals(type)) {
                out.addAll(read.subList(i, i + 3));
            }
        }
        return out;
    }

    /**
     * The type and value of each key, in one round trip (key events): [cursor, key, type, value, ...] with
     * every key present, type 'none' for a missing one.
     */
    public List<?> readKeys(RedisUser user, List<byte[]> keys, boolean readValue) {
        List<byte[]> argv = new java.util.ArrayList<>(keys.size() + 5);
        argv.addAll(List.of("keys".getBytes(), "0".getBytes(), "".getBytes(), (readValue ? "1" : "0").getBytes(), "0".getBytes()));
        argv.addAll(keys);
        return runReadScript(user, argv);
    }

    /** EVALSHA of read_batch.lua with these ARGV, as {@code user}; loads the script again after NOSCRIPT. */
    private List<?> runReadScript(RedisUser user, List<byte[]> argv) {
        List<byte[]> args = new java.util.ArrayList<>(argv.size() + 3);
        args.addAll(List.of("EVALSHA".getBytes(), readBatchSha.getBytes(), "0".getBytes()));
        args.addAll(argv);
        try {
            return (List<?>) dispatch(connectionFor(user), args);
        } catch (RedisCommandException e) {
            if (!e.getMessage().startsWith("NOSCRIPT")) {
                throw e;
            }
            // Redis was restarted or flushed its script cache: load the script again.
            readBatchSha = String.valueOf(dispatch(shared, List.of("SCRIPT".getBytes(), "LOAD".getBytes(), readBatchScript)));
            return runReadScript(user, argv);
        }
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

    public static String rootMessage(Throwable t) {
        Throwable c = t;
        while (c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
        }
        return c.getMessage() == null ? c.getClass().getSimpleName() : c.getMessage();
    }

    @Override
    public void close() {
        blockingClients.values().forEach(redis.clients.jedis.RedisClient::close);
        userConnections.values().forEach(StatefulRedisConnection::close);
        shared.close();
        client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
    }

    /** Sends {@code [command, args...]} on this connection without waiting; the reply as {@link #dispatch} gives it. */
    public static java.util.concurrent.CompletableFuture<Object> dispatchAsync(StatefulRedisConnection<byte[], byte[]> connection,
                                                                             List<byte[]> args) {
        return connection.async().dispatch(new RawKeyword(args.getFirst()), new GenericOutput(), argsAfterName(args))
                .toCompletableFuture();
    }

    private static CommandArgs<byte[], byte[]> argsAfterName(List<byte[]> args) {
        CommandArgs<byte[], byte[]> commandArgs = new CommandArgs<>(ByteArrayCodec.INSTANCE);
        for (int i = 1; i < args.size(); i++) {
            commandArgs.add(args.get(i));
        }
        return commandArgs;
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
