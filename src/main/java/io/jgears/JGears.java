package io.jgears;

import io.jgears.cluster.ClusterCommands;
import io.jgears.cluster.ClusterNodes;
import io.jgears.cluster.ReplicaSessions;
import io.jgears.cluster.ShardLinks;
import io.jgears.commands.GearsCommands;
import io.jgears.gears.GearsConfig;
import io.jgears.gears.GearsEngine;
import io.jgears.python.PythonRuntime;
import io.jgears.redis.EmbeddedRedis;
import io.jgears.redis.RedisBackend;
import io.jgears.server.RespServer;
import io.jgears.server.ServerOptions;
import io.lettuce.core.RedisURI;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** One running jgears: Redis (embedded or given), the Python engine, and the RESP server in front. */
public final class JGears implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(JGears.class);
    /** How to start: {@code redisUri} null means start an embedded redis-server with data in {@code dataDir}. */
    /**
     * @param announce on a cluster, "HOST" or "HOST:PORT" other jgears nodes and cluster clients reach this one
     *                 at (behind NAT or in a container); null: the bind address and the RESP port
     */
    public record Options(String bind, int port, String redisUri, Path dataDir, boolean appendOnly,
                          Map<String, String> config, int maxBulkLength, int maxArrayLength, boolean cluster,
                          String announce) {
        public Options(String bind, int port, String redisUri, Path dataDir, boolean appendOnly,
                       Map<String, String> config, int maxBulkLength, int maxArrayLength) {
            this(bind, port, redisUri, dataDir, appendOnly, config, maxBulkLength, maxArrayLength, false, null);
        }

        /** The same options as one node of a Redis Cluster (needs {@code redisUri}: a cluster node). */
        public Options asClusterNode() {
            return new Options(bind, port, redisUri, dataDir, appendOnly, config, maxBulkLength, maxArrayLength, true, announce);
        }

        /** The same options, announced at {@code hostAndPort} ("HOST" or "HOST:PORT") on a cluster. */
        public Options announcedAs(String hostAndPort) {
            return new Options(bind, port, redisUri, dataDir, appendOnly, config, maxBulkLength, maxArrayLength, cluster, hostAndPort);
        }

        /**
         * Where other jgears nodes and cluster clients reach this one: {@link #announce()} when given (its port
         * defaulting to the RESP port), else the bind address (the Redis host when binding 0.0.0.0) and the RESP port.
         */
        public java.net.InetSocketAddress announced(String redisHost) {
            if (announce == null) {
                return java.net.InetSocketAddress.createUnresolved(bind.equals("0.0.0.0") ? redisHost : bind, port);
            }
            return parseAnnounce(announce, port);
        }

        public static Options defaults() {
            return new Options("127.0.0.1", 6380, null, Path.of("data"), true, Map.of(),
                    ServerOptions.DEFAULT_MAX_BULK, ServerOptions.DEFAULT_MAX_ARRAY);
        }
    }

    /**
     * "HOST" or "HOST:PORT" ("[v6]:PORT" for an IPv6 address with a port); the port defaults to {@code port}.
     * @throws IllegalArgumentException with the reason, for a start-up error
     */
    public static java.net.InetSocketAddress parseAnnounce(String value, int port) {
        String host = value.strip();
        String portText = null;
        if (host.startsWith("[")) {
            int close = host.indexOf(']');
            if (close < 0 || (close + 1 < host.length() && host.charAt(close + 1) != ':')) {
                throw new IllegalArgumentException("--announce: '" + value + "' is not HOST, HOST:PORT or [IPv6]:PORT");
            }
            portText = close + 1 < host.length() ? host.substring(close + 2) : null;
            host = host.substring(1, close);
        } else if (host.indexOf(':') >= 0 && host.indexOf(':') == host.lastIndexOf(':')) {
            portText = host.substring(host.indexOf(':') + 1);
            host = host.substring(0, host.indexOf(':'));
        }
        if (host.isEmpty() || host.chars().anyMatch(Character::isWhitespace)) {
            throw new IllegalArgumentException("--announce: '" + value + "' has no host");
        }
        int announcedPort = port;
        if (portText != null) {
            try {
                announcedPort = Integer.parseInt(portText);
            } catch (NumberFormatException e) {
                announcedPort = -1;
            }
            if (announcedPort < 1 || announcedPort > 65535) {
                throw new IllegalArgumentException("--announce: '" + portText + "' is not a port (1 to 65535)");
            }
        }
        return java.net.InetSocketAddress.createUnresolved(host, announcedPort);
    }

    /** The copy of the stored sessions, in the data directory. */
    public static final String SESSIONS_FILE = "jgears-sessions.dat";

    private volatile EmbeddedRedis embedded;
    private volatile RedisBackend redis;
    private volatile PythonRuntime python;
    private volatile GearsEngine engine;
    private volatile RespServer server;
    private volatile ClusterNodes cluster;
    private volatile ShardLinks shardLinks;
    private volatile ReplicaSessions replicaSessions;
    private volatile boolean closed;
    /** Completes once jgears has stopped: closed by its owner, by SHUTDOWN, or because its Redis is gone. */
    private final java.util.concurrent.CompletableFuture<Integer> stopped = new java.util.concurrent.CompletableFuture<>();

    /** Something to start once jgears listens, before it waits for the warm pool (the metrics endpoint). */
    @FunctionalInterface
    public interface ListeningHook {
        void started(GearsEngine engine) throws IOException;
    }

    private volatile ListeningHook onListening;

    /** Runs {@code hook} as soon as jgears listens; its IOException fails the start-up. Call before starting. */
    public void onListening(ListeningHook hook) {
        this.onListening = hook;
    }

    public static JGears start(Options options) throws IOException, InterruptedException {
        JGears j = new JGears();
        j.startParts(options);
        return j;
    }

    /**
     * Starts the parts in order; on failure closes what was started. {@link #close()} may run at any time
     * (a shutdown hook during start-up) and stops whatever is running, the embedded Redis included.
     */
    public void startParts(Options options) throws IOException, InterruptedException {
        try {
            doStart(options);
        } catch (IOException | InterruptedException | RuntimeException e) {
            close();
            throw e;
        }
    }

    /** The PreImports list (comma separated module names). */
    static java.util.List<String> preImports(String modules) {
        java.util.List<String> names = new java.util.ArrayList<>();
        for (String m : modules.split(",")) {
            String name = m.trim();
            if (name.isEmpty()) {
                continue;
            }
            if (!name.matches("[A-Za-z_][A-Za-z0-9_.]*")) {
                throw new IllegalArgumentException("PreImports: '" + name + "' is not a module name");
            }
            names.add(name);
        }
        return names;
    }

    private void doStart(Options options) throws IOException, InterruptedException {
        GearsConfig config = new GearsConfig();
        // Requirements live with the data unless told otherwise (--set RequirementsDir=...).
        config.setInitial(GearsConfig.REQUIREMENTS_DIR, options.dataDir().resolve("requirements").toString());
        options.config().forEach(config::setInitial);
        RedisURI uri;
        if (options.redisUri() == null) {
            embedded = EmbeddedRedis.start(options.dataDir(), options.appendOnly());
            embedded.onGiveUp(() -> stop(1));
            uri = RedisURI.create("127.0.0.1", embedded.port());
        } else {
            uri = RedisURI.create(options.redisUri());
        }
        try {
            redis = new RedisBackend(uri, Duration.ofSeconds(60));
        } catch (io.lettuce.core.RedisConnectionException e) {
            Throwable root = e;
            while (root.getCause() != null) {
                root = root.getCause();
            }
            throw new IOException("Redis at " + uri.getHost() + ":" + uri.getPort() + " is unreachable ("
                    + root.getMessage() + ")", e);
        }
        boolean clusterEnabled = isClusterNode(redis);
        if (options.cluster() && !clusterEnabled) {
            throw new IOException("--cluster: the Redis at " + uri.getHost() + ":" + uri.getPort()
                    + " is not a cluster node (cluster-enabled no)");
        }
        if (!options.cluster() && clusterEnabled) {
            throw new IOException("the Redis at " + uri.getHost() + ":" + uri.getPort()
                    + " is a Redis Cluster node: start jgears with --cluster beside each node");
        }
        python = new PythonRuntime(preImports(config.get(GearsConfig.PRE_IMPORTS)));
        // Redis Cluster has database 0 only: there the stored sessions live in the file copy (see README).
        engine = new GearsEngine(config, redis, python, options.cluster());
        if (options.cluster()) {
            java.net.InetSocketAddress announced = options.announced(uri.getHost());
            cluster = new ClusterNodes(redis, announced.getHostString(), announced.getPort());
            engine.shardId(cluster.myId());
            shardLinks = new ShardLinks(cluster, uri);
            engine.fanOut(shardLinks);
            replicaSessions = new ReplicaSessions(cluster, engine, shardLinks);
        }
        // A copy of the stored sessions beside the data, for a state database found empty at start-up.
        engine.keepSessionsCopy(options.dataDir().resolve(SESSIONS_FILE), embedded != null
                ? "embedded redis-server in " + embedded.dataDir()
                : "redis://" + uri.getHost() + ":" + uri.getPort() + "/" + uri.getDatabase());
        int restored = engine.restoreSessions();
        if (restored > 0) {
            log.info("restored {} stored sessions with their registrations and time events", restored);
        }
        boolean authRequired = RedisBackend.requiresAuth(uri.getHost(), uri.getPort());
        if (authRequired) {
            log.info("Redis requires AUTH: so does jgears for its own commands; sessions run as their client's ACL user");
        }
        server = new RespServer(new ServerOptions(options.bind(), options.port(), uri.getHost(), uri.getPort(),
                options.maxBulkLength(), options.maxArrayLength(), ServerOptions.DEFAULT_MAX_INLINE, authRequired),
                clusterCommands(new io.jgears.server.ShutdownCommand(new io.jgears.views.RedisViews(new GearsCommands(engine), engine, redis),
                        redis, () -> stop(0), expected -> {
                            EmbeddedRedis e = embedded;
                            if (e != null) {
                                e.expectExit(expected);
                            }
                        }))).start();
        if (cluster != null) {
            cluster.start();
            replicaSessions.start();
        }
        ListeningHook hook = onListening;
        if (hook != null) {
            hook.started(engine);
        }
        // Waits for the warm pool, but not past a stop (SHUTDOWN, SIGTERM) that comes meanwhile.
        long poolDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (!engine.pool().awaitFull(200, TimeUnit.MILLISECONDS)) {
            if (stopped.isDone() || isClosed()) {
                return;
            }
            if (System.nanoTime() > poolDeadline) {
                log.warn("the context pool is not full yet; sessions will create contexts on demand");
                break;
            }
        }
        // The JVM sizes the heap for the machine (a quarter of its memory); the launcher's --heap overrides it.
        log.info("jgears ready on {}:{} (pool {} contexts, {} execution threads, heap up to {} MiB)", options.bind(),
                server.port(), engine.pool().size(), engine.executionThreads(), Runtime.getRuntime().maxMemory() >> 20);
    }

    /** On a cluster, the cluster's commands in front of the rest. */
    private io.jgears.server.LocalCommands clusterCommands(io.jgears.server.LocalCommands commands) {
        if (cluster == null) {
            return commands;
        }
        ClusterCommands front = new ClusterCommands(commands, cluster, redis, replicaSessions);
        engine.clusterCommands(front);
        return front;
    }

    /** Whether Redis runs with cluster-enabled yes (INFO cluster). */
    private static boolean isClusterNode(RedisBackend redis) {
        Object info = redis.execute(java.util.List.of("INFO".getBytes(), "cluster".getBytes()));
        return String.valueOf(info).contains("cluster_enabled:1");
    }

    /** On a cluster: how this node keeps its master's sessions while it is a replica (null outside cluster mode). */
    public ReplicaSessions replicaSessions() {
        return replicaSessions;
    }

    /** This node's view of the cluster, or null outside cluster mode. */
    public ClusterNodes cluster() {
        return cluster;
    }

    public int port() {
        return server.port();
    }

    /** The redis-server jgears started, or null with --redis. */
    public EmbeddedRedis embeddedRedis() {
        return embedded;
    }

    public GearsEngine engine() {
        return engine;
    }

    /** The Redis jgears uses (host, port). */
    public RedisURI redisUri() {
        return redis.uri();
    }

    /** The exit code jgears stopped with (0: closed or SHUTDOWN; 1: its Redis could not be kept running). */
    public java.util.concurrent.CompletableFuture<Integer> stopped() {
        return stopped;
    }

    private void stop(int exitCode) {
        closeParts();
        stopped.complete(exitCode);  // not close(): it would complete with 0 first
    }

    @Override
    public void close() {
        closeParts();
        stopped.complete(0);
    }

    private boolean isClosed() {
        return closed;
    }

    private synchronized void closeParts() {
        if (closed) {
            return;
        }
        closed = true;
        if (replicaSessions != null) {
            replicaSessions.close();
        }
        if (cluster != null) {
            cluster.close();
        }
        if (shardLinks != null) {
            shardLinks.close();
        }
        if (server != null) {
            server.close();
        }
        if (engine != null) {
            engine.close();
        }
        if (python != null) {
            python.close();
        }
        if (redis != null) {
            redis.close();
        }
        if (embedded != null) {
            embedded.close();
        }
    }
}
