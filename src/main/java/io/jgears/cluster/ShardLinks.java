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
        return toOtherShards(args, "its part of the run is missing", "");
    }

    @Override
    public List<CompletableFuture<Object>> commandOtherShards(List<byte[]> command) {
        List<byte[]> args = new ArrayList<>(command.size() + 1);
        args.add(SHARD_LOCAL.getBytes(StandardCharsets.UTF_8));
        args.addAll(command);
        List<CompletableFuture<Object>> out = toOtherShards(args, "the command did not reach it", " commands");
        // Replicas' jgears hold the same registrations (dormant): an RG.UNREGISTER or a pause reaches them too,
        // so a promoted replica does not bring back what was removed. One without a jgears is left out.
        for (ClusterTopology.Shard s : nodes.topology().servingShards()) {
            for (ClusterTopology.Node n : s.nodes()) {
                ClusterNodes.Peer peer = n.master() || n.id().equals(nodes.myId()) ? null : nodes.peer(n.id());
                if (peer != null) {
                    out.add(send(peer, args, "refused: ", " commands"));
                }
            }
        }
        return out;
    }

    @Override
    public List<String> forward(String registrationId, int step, Map<String, List<String>> byShard) {
        List<String> errors = new ArrayList<>();
        List<CompletableFuture<Object>> sent = new ArrayList<>();
        List<String> to = new ArrayList<>();
        for (Map.Entry<String, List<String>> e : byShard.entrySet()) {
            ClusterNodes.Peer peer = nodes.peer(e.getKey());
            if (peer == null) {
                errors.add("no live jgears beside Redis node " + e.getKey() + ": " + e.getValue().size()
                        + " record(s) of the repartition are dropped");
                continue;
            }
            List<byte[]> args = new ArrayList<>(e.getValue().size() + 4);
            for (String head : List.of(SHARD_FORWARD, registrationId, String.valueOf(step), nodes.myId())) {
                args.add(head.getBytes(StandardCharsets.UTF_8));
            }
            for (String record : e.getValue()) {
                args.add(record.getBytes(StandardCharsets.ISO_8859_1));  // base64 text
            }
            sent.add(send(peer, args, "did not take the records: ", " forward"));
            to.add(e.getKey());
        }
        for (int i = 0; i < sent.size(); i++) {
            try {
                sent.get(i).get(FORWARD_WAIT_SECONDS, java.util.concurrent.TimeUnit.SECONDS);
            } catch (java.util.concurrent.ExecutionException e) {
                errors.add(e.getCause() == null ? String.valueOf(e.getMessage()) : e.getCause().getMessage());
            } catch (java.util.concurrent.TimeoutException e) {
                errors.add("the jgears beside Redis node " + to.get(i) + " did not take the records of the repartition within "
                        + FORWARD_WAIT_SECONDS + " s");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                errors.add("interrupted while sending the records of the repartition");
                break;
            }
        }
        return errors;
    }

    /** How long a triggered execution waits for a shard to take the records it forwards (it only queues them). */
    private static final long FORWARD_WAIT_SECONDS = 30;

    private List<CompletableFuture<Object>> toOtherShards(List<byte[]> args, String missing, String lane) {
        List<CompletableFuture<Object>> out = new ArrayList<>();
        for (ClusterTopology.Shard s : nodes.topology().servingShards()) {
            ClusterTopology.Node master = s.master();
            String slots = s.minSlot() + "-" + s.maxSlot();
            if (master == null) {
                out.add(CompletableFuture.failedFuture(new IllegalStateException(
                        "the shard of slots " + slots + " has no master now (a failover?): " + missing)));
                continue;
            }
            if (master.id().equals(nodes.myId())) {
                continue;
            }
            ClusterNodes.Peer peer = nodes.peer(master.id());
            if (peer == null) {
                out.add(CompletableFuture.failedFuture(new IllegalStateException("no live jgears beside Redis node "
                        + master.id() + " (" + master.address() + ", slots " + slots + "): " + missing)));
                continue;
            }
            out.add(send(peer, args, lane.isEmpty() ? "could not run the script: " : "refused: ", lane));
        }
        return out;
    }

    @Override
    public boolean servesKey(String key) {
        ClusterTopology topology = nodes.topology();
        ClusterTopology.Shard owner = topology.shardOf(io.lettuce.core.cluster.SlotHash.getSlot(key.getBytes(StandardCharsets.UTF_8)));
        return owner != null && owner == topology.shardOfNode(nodes.myId());
    }

    @Override
    public boolean inShardOf(String nodeId) {
        ClusterTopology topology = nodes.topology();
        ClusterTopology.Shard mine = topology.shardOfNode(nodes.myId());
        return nodeId.equals(nodes.myId()) || mine != null && mine == topology.shardOfNode(nodeId);
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
