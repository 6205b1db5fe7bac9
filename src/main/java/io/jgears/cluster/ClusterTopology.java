package io.jgears.cluster;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The Redis Cluster as {@code CLUSTER SHARDS} describes it: shards, their slot ranges and their nodes
 * (Redis' own addresses). Immutable; {@link ClusterNodes} swaps in a new one on each refresh.
 */
public record ClusterTopology(List<Shard> shards) {
    public static final int SLOTS = 16384;

    /** A Redis node of a shard, as Redis names it. */
    public record Node(String id, String ip, int port, String endpoint, boolean master, String health) {
        public String address() {
            return ip + ":" + port;
        }
    }

    /** Slot ranges are inclusive pairs {@code [start, end, start, end, ...]}. */
    public record Shard(List<Integer> slots, List<Node> nodes) {
        /**
         * The shard's master, or null while it has none (during a failover). Just after a failover a view may
         * still list the failed old master as a master too: the one Redis reports online comes first.
         */
        public Node master() {
            return nodes.stream().filter(Node::master).filter(n -> "online".equals(n.health())).findFirst()
                    .orElse(nodes.stream().filter(Node::master).findFirst().orElse(null));
        }

        public boolean owns(int slot) {
            for (int i = 0; i + 1 < slots.size(); i += 2) {
                if (slot >= slots.get(i) && slot <= slots.get(i + 1)) {
                    return true;
                }
            }
            return false;
        }

        public int minSlot() {
            return slots.isEmpty() ? -1 : slots.stream().mapToInt(Integer::intValue).min().orElse(-1);
        }

        public int maxSlot() {
            return slots.isEmpty() ? -1 : slots.stream().mapToInt(Integer::intValue).max().orElse(-1);
        }
    }

    /** Parses the RESP2 reply of CLUSTER SHARDS (flat key/value lists). */
    public static ClusterTopology parse(Object reply) {
        List<Shard> shards = new ArrayList<>();
        for (Object s : (List<?>) reply) {
            List<?> shard = (List<?>) s;
            List<Integer> slots = new ArrayList<>();
            List<Node> nodes = new ArrayList<>();
            for (int i = 0; i + 1 < shard.size(); i += 2) {
                String field = String.valueOf(shard.get(i));
                Object value = shard.get(i + 1);
                if (field.equals("slots")) {
                    for (Object n : (List<?>) value) {
                        slots.add(((Number) n).intValue());
                    }
                } else if (field.equals("nodes")) {
                    for (Object n : (List<?>) value) {
                        nodes.add(node((List<?>) n));
                    }
                }
            }
            shards.add(new Shard(List.copyOf(slots), List.copyOf(nodes)));
        }
        // Shards with slots first, by their first slot: a stable order for INFOCLUSTER and fan-outs.
        shards.sort(java.util.Comparator.comparingInt((Shard sh) -> sh.slots().isEmpty() ? Integer.MAX_VALUE : sh.minSlot()));
        return new ClusterTopology(List.copyOf(shards));
    }

    private static Node node(List<?> fields) {
        String id = null;
        String ip = null;
        String endpoint = null;
        String health = "online";
        int port = 0;
        boolean master = false;
        for (int i = 0; i + 1 < fields.size(); i += 2) {
            String field = String.valueOf(fields.get(i)).toLowerCase(Locale.ROOT);
            Object value = fields.get(i + 1);
            switch (field) {
                case "id" -> id = String.valueOf(value);
                case "ip" -> ip = String.valueOf(value);
                case "endpoint" -> endpoint = String.valueOf(value);
                case "port" -> port = ((Number) value).intValue();
                case "role" -> master = "master".equals(String.valueOf(value));
                case "health" -> health = String.valueOf(value);
                default -> {
                }
            }
        }
        return new Node(id, ip, port, endpoint, master, health);
    }

    /** The shard owning {@code slot}, or null when no shard serves it. */
    public Shard shardOf(int slot) {
        for (Shard s : shards) {
            if (s.owns(slot)) {
                return s;
            }
        }
        return null;
    }

    /** Shards that serve slots (an empty master added to the cluster has none yet). */
    public List<Shard> servingShards() {
        return shards.stream().filter(s -> !s.slots().isEmpty()).toList();
    }

    /** The shard holding the Redis node {@code nodeId}, or null. */
    public Shard shardOfNode(String nodeId) {
        for (Shard s : shards) {
            for (Node n : s.nodes()) {
                if (n.id().equals(nodeId)) {
                    return s;
                }
            }
        }
        return null;
    }

    /** The Redis node at {@code ip:port}, or null. */
    public Node nodeAt(String address) {
        for (Shard s : shards) {
            for (Node n : s.nodes()) {
                if (n.address().equals(address) || (n.endpoint() + ":" + n.port()).equals(address)) {
                    return n;
                }
            }
        }
        return null;
    }
}
