package io.jgears.cluster;

import io.jgears.gears.ShardFanOut;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.protocol.ProtocolVersion;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * jgears-to-jgears traffic: RESP over each peer's ordinary client port, authenticated as this jgears
 * authenticates to its own Redis (the same user and password, which a cluster's nodes share). A link is
 * never reconnected behind a command's back: a peer that goes away mid-run fails that run's part with an
 * error naming it (no command is silently sent twice), and the next run opens a new link.
 */
public final class ShardLinks implements ShardFanOut, AutoCloseable {
    private final ClusterNodes nodes;
    private final RedisURI ownRedis;
    private final RedisClient client;
    /** By peer "host:port runId": a restarted peer (new run id) gets a new link. */
    private final Map<String, CompletableFuture<StatefulRedisConnection<byte[], byte[]>>> links = new ConcurrentHashMap<>();
    private final RecordExchange exchange;
    /** By hash slot: the Redis node id of its master, for the topology it was worked out from. */
    private volatile SlotOwners slotOwners;

    private record SlotOwners(ClusterTopology topology, String[] owners) {
    }

    public ShardLinks(ClusterNodes nodes, RedisURI ownRedis) {
        this.nodes = nodes;
        this.ownRedis = ownRedis;
        this.exchange = new RecordExchange(nodes, (peer, args) -> send(peer, args, "could not take the records: ", " records"));
        this.client = RedisClient.create();
        client.setOptions(ClientOptions.builder().protocolVersion(ProtocolVersion.RESP2).autoReconnect(false)
                .timeoutOptions(TimeoutOptions.enabled(Duration.ofSeconds(150))).build());
    }

    @Override
    public List<CompletableFuture<Object>> sendToOtherShards(List<byte[]> args) {
        List<CompletableFuture<Object>> out = new ArrayList<>();
        for (ClusterTopology.Shard s : nodes.topology().servingShards()) {
            ClusterTopology.Node master = s.master();
            String slots = s.minSlot() + "-" + s.maxSlot();
            if (master == null) {
                out.add(CompletableFuture.failedFuture(new IllegalStateException(
                        "the shard of slots " + slots + " has no master now (a failover?): its part of the run is missing")));
                continue;
            }
            if (master.id().equals(nodes.myId())) {
                continue;
            }
            ClusterNodes.Peer peer = nodes.peer(master.id());
            if (peer == null) {
                out.add(CompletableFuture.failedFuture(new IllegalStateException("no live jgears beside Redis node "
                        + master.id() + " (" + master.address() + ", slots " + slots + "): its part of the run is missing")));
                continue;
            }
            out.add(send(peer, args, "could not run the script: ", ""));
        }
        return out;
    }

    @Override
    public String[] owners(List<String> keys) {
        ClusterTopology topology = nodes.topology();
        SlotOwners cache = slotOwners;
        if (cache == null || cache.topology() != topology) {
            String[] bySlot = new String[ClusterTopology.SLOTS];
            for (ClusterTopology.Shard s : topology.servingShards()) {
                ClusterTopology.Node m = s.master();
                for (int i = 0; i + 1 < s.slots().size(); i += 2) {
                    for (int slot = s.slots().get(i); slot <= s.slots().get(i + 1) && slot < bySlot.length; slot++) {
                        bySlot[slot] = m == null ? "" : m.id();
                    }
                }
            }
            cache = new SlotOwners(topology, bySlot);
            slotOwners = cache;
        }
        String[] out = new String[keys.size()];
        for (int i = 0; i < out.length; i++) {
            String owner = cache.owners()[io.lettuce.core.cluster.SlotHash.getSlot(keys.get(i).getBytes(StandardCharsets.UTF_8))];
            out[i] = owner == null ? "" : owner;
        }
        return out;
    }

    @Override
    public Exchanged exchange(String runId, int phase, List<String> dests, List<String> payloads) {
        return exchange.exchange(runId, phase, dests, payloads);
    }

    @Override
    public void received(String runId, int phase, String from, List<String> payloads, boolean last) {
        exchange.received(runId, phase, from, payloads, last);
    }

    @Override
    public void abandoned(String runId, int fromPhase, String from, String message) {
        exchange.abandoned(runId, fromPhase, from, message);
    }

    @Override
    public void abandon(String runId, String message) {
        exchange.abandon(runId, message);
    }

    @Override
    public void runEnded(String runId, int phases, String message) {
        exchange.end(runId, phases, message);
    }

    /** One command to a peer on a link of its own (not behind a run's parts), e.g. a replica asking its master's sessions. */
    public CompletableFuture<Object> call(ClusterNodes.Peer peer, List<byte[]> args) {
        return send(peer, args, "refused: ", " control");
    }

    /**
     * {@code lane}: repartition records go on links of their own ("" and " records"): a peer answers a
     * link's commands in order, and the records a shard's part of a run waits for must not queue behind
     * that part's own RG.JGEARSSHARDEXECUTE.
     */
    private CompletableFuture<Object> send(ClusterNodes.Peer peer, List<byte[]> args, String refused, String lane) {
        String key = peer.address() + " " + peer.runId() + lane;
        CompletableFuture<StatefulRedisConnection<byte[], byte[]>> link = links.computeIfAbsent(key, k -> connect(peer));
        CompletableFuture<Object> reply = link.thenCompose(c -> io.jgears.redis.RedisBackend.dispatchAsync(c, args));
        return reply.handle((r, error) -> {
            if (error == null) {
                return CompletableFuture.completedFuture(r);
            }
            Throwable cause = error instanceof java.util.concurrent.CompletionException && error.getCause() != null ? error.getCause() : error;
            if (!(cause instanceof io.lettuce.core.RedisCommandExecutionException)) {
                links.remove(key);  // the link is broken: the next run connects again
            }
            return CompletableFuture.<Object>failedFuture(new IllegalStateException("the jgears of shard " + peer.redisNodeId()
                    + " (" + peer.address() + ") " + (cause instanceof io.lettuce.core.RedisCommandExecutionException
                    ? refused : "was cut off mid-run: ") + cause.getMessage()));
        }).thenCompose(f -> f);
    }

    private CompletableFuture<StatefulRedisConnection<byte[], byte[]>> connect(ClusterNodes.Peer peer) {
        RedisURI.Builder uri = RedisURI.builder().withHost(peer.host()).withPort(peer.port()).withTimeout(Duration.ofSeconds(150));
        if (ownRedis.getCredentialsProvider() != null) {
            uri.withAuthentication(ownRedis.getCredentialsProvider());
        }
        return client.connectAsync(ByteArrayCodec.INSTANCE, uri.build()).toCompletableFuture();
    }

    @Override
    public void close() {
        links.values().forEach(f -> f.thenAccept(StatefulRedisConnection::closeAsync));
        client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
    }
}
