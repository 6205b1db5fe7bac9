package io.jgears.cluster;

import io.jgears.redis.RedisBackend;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.protocol.ProtocolVersion;
import io.lettuce.core.pubsub.RedisPubSubAdapter;
import io.lettuce.core.pubsub.StatefulRedisPubSubConnection;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * This jgears' view of the Redis Cluster it runs beside: the topology ({@code CLUSTER SHARDS} of the local
 * Redis, reloaded every few seconds, on RG.REFRESHCLUSTER and after a MOVED) and the jgears nodes of the
 * cluster. Every jgears announces itself (its Redis node id, its RESP address, a run id) once a second on a
 * pub/sub channel of its own Redis; Redis Cluster broadcasts PUBLISH to every node over the cluster bus, so
 * each jgears hears every other without any key in the clients' keyspace and without a scheme of its own.
 * An announcement not renewed for {@link #PEER_TTL_MS} drops the peer (its jgears stopped or is cut off).
 */
public final class ClusterNodes implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ClusterNodes.class);
    /** The channel jgears nodes announce themselves on. */
    public static final String CHANNEL = "__jgears__:nodes";
    static final long HEARTBEAT_MS = 1000;
    static final long PEER_TTL_MS = 5000;
    static final long TOPOLOGY_REFRESH_MS = 5000;

    /** A jgears node: where it serves RESP, beside which Redis node. */
    public record Peer(String redisNodeId, String host, int port, String runId, long seenMillis) {
        public String address() {
            return host + ":" + port;
        }
    }

    private final RedisBackend redis;
    private final RedisClient pubSubClient;
    private final String myId;
    private final String runId;
    private final String host;
    private final int port;
    private final Map<String, Peer> peers = new ConcurrentHashMap<>();
    private final ScheduledExecutorService timer;
    private final AtomicBoolean refreshQueued = new AtomicBoolean();
    private volatile ClusterTopology topology;
    private volatile StatefulRedisPubSubConnection<String, String> subscription;
    private volatile StatefulRedisPubSubConnection<String, String> publisher;
    /** Told of every topology read (start-up, refreshes): a failover shows there. */
    private final List<java.util.function.Consumer<ClusterTopology>> topologyListeners = new java.util.concurrent.CopyOnWriteArrayList<>();

    /**
     * @param redis the local Redis (must be a cluster node)
     * @param host  the address other jgears nodes and clients reach this jgears at
     * @param port  this jgears' RESP port
     */
    public ClusterNodes(RedisBackend redis, String host, int port) {
        this.redis = redis;
        this.host = host;
        this.port = port;
        this.myId = String.valueOf(redis.execute(args("CLUSTER", "MYID")));
        byte[] random = new byte[20];
        new SecureRandom().nextBytes(random);
        this.runId = HexFormat.of().formatHex(random);
        this.topology = ClusterTopology.parse(redis.execute(args("CLUSTER", "SHARDS")));
        RedisURI uri = redis.uri();
        this.pubSubClient = RedisClient.create(uri);
        pubSubClient.setOptions(ClientOptions.builder().protocolVersion(ProtocolVersion.RESP2).autoReconnect(true).build());
        peers.put(myId, new Peer(myId, host, port, runId, Long.MAX_VALUE));
        this.timer = Executors.newSingleThreadScheduledExecutor(r -> Thread.ofPlatform().daemon().name("jgears-cluster").unstarted(r));
    }

    /** Subscribes, announces this node, and starts the heartbeat and the periodic topology refresh. */
    public ClusterNodes start() {
        StatefulRedisPubSubConnection<String, String> sub = pubSubClient.connectPubSub();
        sub.addListener(new RedisPubSubAdapter<>() {
            @Override
            public void message(String channel, String message) {
                heard(message);
            }
        });
        sub.sync().subscribe(CHANNEL);
        subscription = sub;
        publisher = pubSubClient.connectPubSub();
        announce();
        timer.scheduleWithFixedDelay(this::announceQuietly, HEARTBEAT_MS, HEARTBEAT_MS, TimeUnit.MILLISECONDS);
        timer.scheduleWithFixedDelay(this::refreshQuietly, TOPOLOGY_REFRESH_MS, TOPOLOGY_REFRESH_MS, TimeUnit.MILLISECONDS);
        log.info("cluster mode: Redis node {}, run id {}, {} shards", myId, runId, topology.servingShards().size());
        return this;
    }

    private void announce() {
        publisher.sync().publish(CHANNEL, myId + " " + host + " " + port + " " + runId);
    }

    private void announceQuietly() {
        try {
            announce();
            long now = System.currentTimeMillis();
            peers.values().removeIf(p -> !p.redisNodeId().equals(myId) && now - p.seenMillis() > PEER_TTL_MS);
        } catch (RuntimeException e) {
            log.debug("cluster heartbeat: {}", e.getMessage());  // Redis unreachable: the next beat retries
        }
    }

    /** An announcement: "redisNodeId host port runId"; anything else on the channel is ignored. */
    void heard(String message) {
        String[] parts = message.split(" ");
        if (parts.length != 4 || parts[0].equals(myId)) {
            return;
        }
        try {
            Peer peer = new Peer(parts[0], parts[1], Integer.parseInt(parts[2]), parts[3], System.currentTimeMillis());
            Peer before = peers.put(peer.redisNodeId(), peer);
            if (before == null || !before.runId().equals(peer.runId())) {
                log.info("jgears node {} (Redis node {}) joined, run id {}", peer.address(), peer.redisNodeId(), peer.runId());
                // A new node may come with a new topology (a failover, a node added): look again soon.
                requestRefresh();
            }
        } catch (NumberFormatException e) {
            log.debug("ignored announcement '{}'", message);
        }
    }

    /** Reloads the topology from the local Redis now. */
    public ClusterTopology refresh() {
        ClusterTopology t = ClusterTopology.parse(redis.execute(args("CLUSTER", "SHARDS")));
        topology = t;
        for (var listener : topologyListeners) {
            try {
                listener.accept(t);
            } catch (RuntimeException e) {
                log.warn("cluster topology listener: {}", e.getMessage());
            }
        }
        return t;
    }

    /** {@code listener} gets every topology read from now on (on the refreshing thread: keep it short). */
    public void onTopology(java.util.function.Consumer<ClusterTopology> listener) {
        topologyListeners.add(listener);
    }

    /** This node as the topology names it (null while the topology does not list it). */
    public ClusterTopology.Node me() {
        ClusterTopology.Shard s = topology.shardOfNode(myId);
        return s == null ? null : s.nodes().stream().filter(n -> n.id().equals(myId)).findFirst().orElse(null);
    }

    /** The master of this node's shard when this node is a replica, else null. */
    public ClusterTopology.Node myMaster() {
        ClusterTopology.Node me = me();
        if (me == null || me.master()) {
            return null;
        }
        return topology.shardOfNode(myId).master();
    }

    private void refreshQuietly() {
        refreshQueued.set(false);
        try {
            refresh();
        } catch (RuntimeException e) {
            log.debug("cluster topology refresh: {}", e.getMessage());
        }
    }

    /** A refresh soon, at most one queued at a time (MOVED replies may come in bursts). */
    public void requestRefresh() {
        if (refreshQueued.compareAndSet(false, true)) {
            try {
                timer.schedule(this::refreshQuietly, 100, TimeUnit.MILLISECONDS);
            } catch (java.util.concurrent.RejectedExecutionException e) {
                refreshQueued.set(false);  // closing
            }
        }
    }

    public ClusterTopology topology() {
        return topology;
    }

    /** The local Redis' node id: this jgears' shard id, as RedisGears names a shard. */
    public String myId() {
        return myId;
    }

    public String runId() {
        return runId;
    }

    /** The live jgears beside Redis node {@code redisNodeId}, or null. */
    public Peer peer(String redisNodeId) {
        Peer p = peers.get(redisNodeId);
        if (p == null || (!p.redisNodeId().equals(myId) && System.currentTimeMillis() - p.seenMillis() > PEER_TTL_MS)) {
            return null;
        }
        return p;
    }

    /** The jgears beside the Redis node at {@code ip:port}, as "host:port", or null when none is known. */
    public String jgearsAddressOf(String redisAddress) {
        ClusterTopology.Node node = topology.nodeAt(redisAddress);
        Peer p = node == null ? null : peer(node.id());
        return p == null ? null : p.address();
    }

    /** The jgears nodes of the shards' masters, in shard order (null where a master has no live jgears). */
    public List<Peer> masterPeers() {
        return topology.servingShards().stream().map(s -> {
            ClusterTopology.Node m = s.master();
            return m == null ? null : peer(m.id());
        }).toList();
    }

    private static List<byte[]> args(String... a) {
        return java.util.Arrays.stream(a).map(s -> s.getBytes(StandardCharsets.UTF_8)).toList();
    }

    @Override
    public void close() {
        timer.shutdownNow();
        for (var c : new StatefulRedisPubSubConnection<?, ?>[]{subscription, publisher}) {
            if (c != null) {
                c.close();
            }
        }
        pubSubClient.shutdown(0, 2, TimeUnit.SECONDS);
    }
}
