package io.jgears.cluster;

import io.jgears.redis.RedisBackend;
import io.jgears.redis.RedisCommandException;
import io.jgears.redis.RedisUser;
import io.jgears.server.ClientInfo;
import io.jgears.server.DelegatingLocalCommands;
import io.jgears.server.LocalCommands;
import io.jgears.server.Replies;
import io.netty.handler.codec.redis.RedisMessage;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * The commands that show the cluster, in front of the rest: {@code RG.INFOCLUSTER} (RedisGears' shape, with
 * jgears' addresses), {@code RG.REFRESHCLUSTER}, and Redis' {@code CLUSTER SLOTS/SHARDS/NODES/REPLICAS}
 * with every Redis address that has a live jgears beside it replaced by that jgears' address, so that
 * cluster-aware clients connect to jgears nodes only (MOVED/ASK redirects are rewritten the same way, see
 * {@link #redirectTarget}). Other CLUSTER subcommands are Redis' own, run as the client's ACL user.
 */
public final class ClusterCommands extends DelegatingLocalCommands {
    private final ClusterNodes nodes;
    private final RedisBackend redis;
    private final ReplicaSessions replicaSessions;

    public ClusterCommands(LocalCommands next, ClusterNodes nodes, RedisBackend redis) {
        this(next, nodes, redis, null);
    }

    /** {@code replicaSessions}: answers a replica's jgears asking for this one's sessions (null: not served). */
    public ClusterCommands(LocalCommands next, ClusterNodes nodes, RedisBackend redis, ReplicaSessions replicaSessions) {
        super(next);
        this.nodes = nodes;
        this.redis = redis;
        this.replicaSessions = replicaSessions;
    }

    @Override
    public boolean handles(String upperName) {
        return upperName.equals("CLUSTER") || upperName.equals("RG.INFOCLUSTER") || upperName.equals("RG.REFRESHCLUSTER")
                || (replicaSessions != null && upperName.equals(ReplicaSessions.COMMAND))
                || next.handles(upperName);
    }

    /**
     * A replica's jgears runs nothing (its registrations are dormant copies of its master's): a script or a
     * trigger sent to it is refused, naming the jgears of its master, where it belongs. Null on a master.
     */
    private RedisMessage replicaRefusal(String command) {
        ClusterTopology.Node master = nodes.myMaster();
        if (master == null) {
            return null;
        }
        ClusterNodes.Peer peer = nodes.peer(master.id());
        return Replies.error("READONLY this jgears is beside a replica (Redis node " + nodes.myId() + "): send " + command
                + " to the jgears of its master " + (peer == null ? "(Redis node " + master.id() + " at " + master.address()
                + ", whose jgears is not heard now)" : "at " + peer.address()));
    }

    /**
     * RG.TRIGGERONKEY is a keyed command (its key is the third argument): on a shard that does not own the
     * key it answers MOVED to the owner's jgears, as Redis answers for its own keyed commands, so cluster
     * clients route it; null when the key is local (or the topology has no owner: the trigger runs here).
     */
    private RedisMessage movedTrigger(List<byte[]> args) {
        if (args.size() < 3) {
            return null;
        }
        int slot = io.lettuce.core.cluster.SlotHash.getSlot(args.get(2));
        ClusterTopology.Shard owner = nodes.topology().shardOf(slot);
        ClusterTopology.Node master = owner == null ? null : owner.master();
        if (master == null || master.id().equals(nodes.myId())) {
            return null;
        }
        ClusterNodes.Peer peer = nodes.peer(master.id());
        return Replies.error("MOVED " + slot + " " + (peer == null ? master.address() : peer.address()));
    }

    @Override
    public CompletableFuture<RedisMessage> execute(ClientInfo client, List<byte[]> args) {
        String name = str(args.getFirst()).toUpperCase(Locale.ROOT);
        return switch (name) {
            case "RG.INFOCLUSTER" -> CompletableFuture.completedFuture(infoCluster());
            case "RG.REFRESHCLUSTER", "CLUSTER" -> CompletableFuture.supplyAsync(() -> {
                try {
                    if (name.equals("RG.REFRESHCLUSTER")) {
                        nodes.refresh();
                        return Replies.OK;
                    }
                    return cluster(client, args);
                } catch (RedisCommandException e) {
                    return Replies.error(e.getMessage());
                }
            }, Thread::startVirtualThread);
            case "RG.PYEXECUTE", "RG.TRIGGER" -> {
                RedisMessage refused = replicaRefusal(name);
                yield refused != null ? CompletableFuture.completedFuture(refused) : next.execute(client, args);
            }
            case ReplicaSessions.COMMAND -> replicaSessions == null ? next.execute(client, args)
                    : CompletableFuture.supplyAsync(() -> replicaSessions.answer(args.size() > 1 ? str(args.get(1)) : ""),
                    Thread::startVirtualThread);
            case "RG.TRIGGERONKEY" -> {
                RedisMessage moved = movedTrigger(args);
                yield moved != null ? CompletableFuture.completedFuture(moved) : next.execute(client, args);
            }
            default -> next.execute(client, args);
        };
    }

    /** RG.INFOCLUSTER/RG.REFRESHCLUSTER in MULTI are answered here too, not by the single-Redis default behind. */
    @Override
    public CompletableFuture<RedisMessage> executeInTransaction(ClientInfo client, List<byte[]> args) {
        String name = str(args.getFirst()).toUpperCase(Locale.ROOT);
        return name.equals("RG.INFOCLUSTER") || name.equals("RG.REFRESHCLUSTER") || name.equals("CLUSTER")
                ? execute(client, args) : super.executeInTransaction(client, args);
    }

    @Override
    public String redirectTarget(String redisAddress) {
        nodes.requestRefresh();  // a MOVED means the slots moved: the next CLUSTER SLOTS should say so
        return nodes.jgearsAddressOf(redisAddress);
    }

    /** RedisGears' RG.INFOCLUSTER: MyId, MyRunId, then one entry per shard (its master's jgears). */
    RedisMessage infoCluster() {
        List<Object> shards = new ArrayList<>();
        for (ClusterTopology.Shard s : nodes.topology().servingShards()) {
            ClusterTopology.Node master = s.master();
            if (master == null) {
                continue;
            }
            ClusterNodes.Peer peer = nodes.peer(master.id());
            List<Object> entry = new ArrayList<>();
            entry.add("id");
            entry.add(master.id());
            entry.add("ip");
            entry.add(peer == null ? master.ip() : peer.host());
            entry.add("port");
            entry.add((long) (peer == null ? master.port() : peer.port()));
            entry.add("unixSocket");
            entry.add("None");
            entry.add("runid");
            entry.add(peer == null ? null : peer.runId());
            entry.add("minHslot");
            entry.add((long) s.minSlot());
            entry.add("maxHslot");
            entry.add((long) s.maxSlot());
            entry.add("pendingMessages");
            entry.add(0L);
            shards.add(entry);
        }
        List<Object> reply = new ArrayList<>();
        reply.add("MyId");
        reply.add(nodes.myId());
        reply.add("MyRunId");
        reply.add(nodes.runId());
        reply.add(shards);
        return Replies.of(reply);
    }

    private RedisMessage cluster(ClientInfo client, List<byte[]> args) {
        RedisUser user = client == null || client.user() == null ? null : new RedisUser(client.user(), client.password());
        Object reply = RedisBackend.dispatch(redis.connectionFor(user), args);
        String sub = args.size() < 2 ? "" : str(args.get(1)).toUpperCase(Locale.ROOT);
        return switch (sub) {
            // A RESP3 client gets maps where Redis would answer it with maps (jgears reads Redis in RESP2).
            case "SLOTS" -> resp3(client) ? Replies.resp3(slotsResp3(slots((List<?>) reply))) : Replies.of(slots((List<?>) reply));
            case "SHARDS" -> resp3(client) ? Replies.resp3(shardsResp3(shards((List<?>) reply))) : Replies.of(shards((List<?>) reply));
            case "NODES", "REPLICAS", "SLAVES" -> reply instanceof List<?> l
                    ? Replies.of(l.stream().map(o -> nodesText(String.valueOf(o))).toList())
                    : Replies.of(nodesText(String.valueOf(reply)));
            default -> Replies.of(reply);
        };
    }

    /**
     * CLUSTER SLOTS: per range, [start, end, master, replicas...], each node [ip, port, id, ...]. A node with
     * a jgears shows its address; a replica without one is left out (clients would reach Redis directly);
     * a master without one keeps Redis' address, so its slots stay reachable.
     */
    private List<Object> slots(List<?> reply) {
        List<Object> out = new ArrayList<>();
        for (Object r : reply) {
            List<?> range = (List<?>) r;
            List<Object> copy = new ArrayList<>(range.subList(0, 2));
            for (int i = 2; i < range.size(); i++) {
                List<Object> node = new ArrayList<>((List<?>) range.get(i));
                ClusterNodes.Peer peer = nodes.peer(String.valueOf(node.get(2)));
                if (peer != null) {
                    node.set(0, peer.host());
                    node.set(1, (long) peer.port());
                } else if (i > 2) {
                    continue;
                }
                copy.add(node);
            }
            out.add(copy);
        }
        return out;
    }

    /** CLUSTER SHARDS: each node's ip, endpoint and port name its jgears where it has one. */
    private List<Object> shards(List<?> reply) {
        List<Object> out = new ArrayList<>();
        for (Object s : reply) {
            List<Object> shard = new ArrayList<>((List<?>) s);
            for (int i = 0; i + 1 < shard.size(); i += 2) {
                if (!"nodes".equals(String.valueOf(shard.get(i)))) {
                    continue;
                }
                List<Object> nodeList = new ArrayList<>();
                for (Object n : (List<?>) shard.get(i + 1)) {
                    List<Object> node = new ArrayList<>((List<?>) n);
                    String id = null;
                    for (int j = 0; j + 1 < node.size(); j += 2) {
                        if ("id".equals(String.valueOf(node.get(j)))) {
                            id = String.valueOf(node.get(j + 1));
                        }
                    }
                    ClusterNodes.Peer peer = id == null ? null : nodes.peer(id);
                    if (peer != null) {
                        for (int j = 0; j + 1 < node.size(); j += 2) {
                            switch (String.valueOf(node.get(j))) {
                                case "ip", "endpoint" -> node.set(j + 1, peer.host());
                                case "port" -> node.set(j + 1, (long) peer.port());
                                default -> {
                                }
                            }
                        }
                    }
                    nodeList.add(node);
                }
                shard.set(i + 1, nodeList);
            }
            out.add(shard);
        }
        return out;
    }

    private static boolean resp3(ClientInfo client) {
        return client != null && client.protocol() == 3;
    }

    /** [k1, v1, k2, v2, ...] as a map, in order. */
    private static Map<Object, Object> pairs(List<?> flat) {
        Map<Object, Object> map = new LinkedHashMap<>();
        for (int i = 0; i + 1 < flat.size(); i += 2) {
            map.put(String.valueOf(flat.get(i)), flat.get(i + 1));
        }
        return map;
    }

    /** CLUSTER SLOTS in RESP3: each node's fourth element, its extra networking metadata, is a map. */
    private static List<Object> slotsResp3(List<Object> slots) {
        List<Object> out = new ArrayList<>();
        for (Object r : slots) {
            List<Object> range = new ArrayList<>((List<?>) r);
            for (int i = 2; i < range.size(); i++) {
                List<Object> node = new ArrayList<>((List<?>) range.get(i));
                if (node.size() > 3 && node.get(3) instanceof List<?> meta) {
                    node.set(3, pairs(meta));
                }
                range.set(i, node);
            }
            out.add(range);
        }
        return out;
    }

    /** CLUSTER SHARDS in RESP3: each shard a map ("slots", "nodes"), each node a map. */
    private static List<Object> shardsResp3(List<Object> shards) {
        List<Object> out = new ArrayList<>();
        for (Object s : shards) {
            Map<Object, Object> shard = pairs((List<?>) s);
            if (shard.get("nodes") instanceof List<?> nodeList) {
                shard.put("nodes", nodeList.stream().map(n -> (Object) pairs((List<?>) n)).toList());
            }
            out.add(shard);
        }
        return out;
    }

    /** CLUSTER NODES lines: "id ip:port@cport[,hostname] flags ...": the ip:port part names the jgears. */
    private String nodesText(String text) {
        StringBuilder out = new StringBuilder();
        for (String line : text.split("\n", -1)) {
            String[] f = line.split(" ", 3);
            if (f.length == 3) {
                ClusterNodes.Peer peer = nodes.peer(f[0]);
                int at = f[1].indexOf('@');
                if (peer != null && at > 0) {
                    line = f[0] + " " + peer.address() + f[1].substring(at) + " " + f[2];
                }
            }
            out.append(line).append('\n');
        }
        out.setLength(out.length() - 1);
        return out.toString();
    }

    private static String str(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }
}
