package io.jgears;

import io.jgears.redis.EmbeddedRedis;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

/**
 * A real local Redis Cluster for tests: N masters (redis-server --cluster-enabled yes on free ports, each
 * with a free cluster bus port, cluster-node-timeout 2000 ms), slots split evenly, nodes introduced with
 * CLUSTER MEET, optionally replicas (joined with CLUSTER REPLICATE), and a jgears (in this JVM) beside each
 * node with --cluster. Closing stops all of it.
 */
final class TestCluster implements AutoCloseable {
    record RedisNode(Process process, int port, Path dir) {
    }

    /** The masters' Redis nodes and their jgears, by master index. */
    final List<RedisNode> redis = new ArrayList<>();
    final List<JGears> jgears = new ArrayList<>();
    /** What each jgears was started with (a restart reuses it: the same port and data directory). */
    final List<JGears.Options> jgearsOptions = new ArrayList<>();
    /** Replicas' Redis nodes and their jgears; {@code replicaOf} gives each one's master index. */
    final List<RedisNode> replicas = new ArrayList<>();
    final List<JGears> replicaJgears = new ArrayList<>();
    final List<Integer> replicaOf = new ArrayList<>();

    static TestCluster start(int masters) throws Exception {
        return start(masters, null);
    }

    /**
     * {@code masters} masters, the first {@code replicatedMasters} of them with {@code replicasPerMaster}
     * replicas each, a jgears beside every node.
     */
    static TestCluster start(int masters, int replicasPerMaster, int replicatedMasters) throws Exception {
        return start(masters, replicasPerMaster, replicatedMasters, null);
    }

    /** As {@link #start(int)}, each jgears started with {@code --announce announce(itsPort)} when given. */
    static TestCluster start(int masters, java.util.function.IntFunction<String> announce) throws Exception {
        return start(masters, 0, 0, announce);
    }

    private static TestCluster start(int masters, int replicasPerMaster, int replicatedMasters,
                                     java.util.function.IntFunction<String> announce) throws Exception {
        TestCluster c = new TestCluster();
        try {
            Path exe = EmbeddedRedis.findExecutable().orElseThrow(() -> new IOException("redis-server is not installed"));
            for (int i = 0; i < masters; i++) {
                c.redis.add(startRedis(exe));
            }
            for (int i = 0; i < masters; i++) {
                int port = c.redis.get(i).port();
                call(port, "CLUSTER", "ADDSLOTSRANGE", String.valueOf(i * 16384 / masters), String.valueOf((i + 1) * 16384 / masters - 1));
                if (i > 0) {
                    call(port, "CLUSTER", "MEET", "127.0.0.1", String.valueOf(c.redis.getFirst().port()),
                            String.valueOf(busPortOf(c.redis.getFirst())));
                }
            }
            for (RedisNode n : c.redis) {
                await("cluster_state:ok on " + n.port(), () -> clusterOk(n.port(), masters));
            }
            for (int i = 0; i < Math.min(replicatedMasters, masters); i++) {
                String masterId = String.valueOf(call(c.redis.get(i).port(), "CLUSTER", "MYID"));
                for (int r = 0; r < replicasPerMaster; r++) {
                    RedisNode replica = startRedis(exe);
                    c.replicas.add(replica);
                    c.replicaOf.add(i);
                    call(replica.port(), "CLUSTER", "MEET", "127.0.0.1", String.valueOf(c.redis.getFirst().port()),
                            String.valueOf(busPortOf(c.redis.getFirst())));
                    // CLUSTER REPLICATE needs the master known to the new node: retried until gossip has it.
                    await("node " + replica.port() + " to replicate " + masterId, () -> {
                        try {
                            return "OK".equals(call(replica.port(), "CLUSTER", "REPLICATE", masterId));
                        } catch (IOException e) {
                            return false;
                        }
                    });
                }
            }
            int total = masters + c.replicas.size();
            for (RedisNode n : c.allRedis()) {
                await("cluster_state:ok on " + n.port() + " with " + total + " nodes", () -> clusterOk(n.port(), total));
            }
            for (RedisNode n : c.replicas) {
                await("replica " + n.port() + " in sync with its master", () -> {
                    try {
                        return String.valueOf(call(n.port(), "INFO", "replication")).contains("master_link_status:up");
                    } catch (IOException e) {
                        return false;
                    }
                });
            }
            for (RedisNode n : c.redis) {
                JGears.Options options = jgearsOptions(n, announce);
                c.jgearsOptions.add(options);
                c.jgears.add(JGears.start(options));
            }
            for (RedisNode n : c.replicas) {
                c.replicaJgears.add(startJgears(n, announce));
            }
            // Every node has heard every other's announcement.
            List<JGears> all = c.allJgears();
            for (JGears j : all) {
                await("jgears on " + j.port() + " to know every node", () -> all.stream()
                        .allMatch(o -> j.cluster().peer(o.cluster().myId()) != null));
            }
            return c;
        } catch (Exception | Error e) {
            c.close();
            throw e;
        }
    }

    private static JGears startJgears(RedisNode n, java.util.function.IntFunction<String> announce) throws Exception {
        return JGears.start(jgearsOptions(n, announce));
    }

    /** A jgears beside {@code n}: a free port, a data directory of its own, a small pool. */
    private static JGears.Options jgearsOptions(RedisNode n, java.util.function.IntFunction<String> announce) throws IOException {
        int port = EmbeddedRedis.freePort();
        JGears.Options options = new JGears.Options("127.0.0.1", port,
                "redis://127.0.0.1:" + n.port(), Files.createTempDirectory("jgears-cluster-node"), false,
                Map.of("PoolSize", "1", "ExecutionThreads", "2"), 1 << 26, 1 << 16).asClusterNode();
        return announce == null ? options : options.announcedAs(announce.apply(port));
    }

    List<RedisNode> allRedis() {
        List<RedisNode> all = new ArrayList<>(redis);
        all.addAll(replicas);
        all.addAll(extraRedis);
        return all;
    }

    List<JGears> allJgears() {
        List<JGears> all = new ArrayList<>(jgears);
        all.addAll(replicaJgears);
        all.addAll(extraJgears);
        return all;
    }

    /** SIGKILL to a Redis node: no shutdown, no last replication, as a crash. */
    static void kill(RedisNode n) throws InterruptedException {
        n.process().destroyForcibly();
        n.process().waitFor(10, java.util.concurrent.TimeUnit.SECONDS);
    }

    private static final Map<Integer, Integer> BUS_PORTS = new java.util.concurrent.ConcurrentHashMap<>();

    private static int busPortOf(RedisNode n) {
        return BUS_PORTS.get(n.port());
    }

    private static RedisNode startRedis(Path exe) throws IOException, InterruptedException {
        return startRedis(exe, EmbeddedRedis.freePort(), EmbeddedRedis.freePort(), Files.createTempDirectory("jgears-cluster-redis"));
    }

    /**
     * A node stopped (killed) before, started again on its port, bus port and directory: with its
     * nodes.conf it rejoins the cluster as the node it was (a master whose slots were failed over comes
     * back as a replica of the new master). Closed with the cluster.
     */
    RedisNode restart(RedisNode n) throws IOException, InterruptedException {
        Path exe = EmbeddedRedis.findExecutable().orElseThrow(() -> new IOException("redis-server is not installed"));
        RedisNode again = startRedis(exe, n.port(), busPortOf(n), n.dir());
        extraRedis.add(again);
        return again;
    }

    /** A jgears started later beside {@code n} (fresh data directory). Closed with the cluster. */
    JGears startJgearsBeside(RedisNode n) throws Exception {
        JGears j = startJgears(n, null);
        extraJgears.add(j);
        return j;
    }

    private final List<RedisNode> extraRedis = new ArrayList<>();
    private final List<JGears> extraJgears = new ArrayList<>();

    private static RedisNode startRedis(Path exe, int port, int bus, Path dir) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(exe.toString(), "--port", String.valueOf(port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-port", String.valueOf(bus), "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000", "--dir", dir.toString(), "--save", "", "--appendonly", "no",
                "--logfile", dir.resolve("redis.log").toString())
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        BUS_PORTS.put(port, bus);
        RedisNode node = new RedisNode(p, port, dir);
        await("redis-server on " + port, () -> {
            try {
                return "PONG".equals(call(port, "PING"));
            } catch (IOException e) {
                return false;
            }
        });
        return node;
    }

    private static boolean clusterOk(int port, int masters) {
        try {
            String info = String.valueOf(call(port, "CLUSTER", "INFO"));
            return info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:" + masters);
        } catch (IOException e) {
            return false;
        }
    }

    /** One command on a fresh connection. */
    static Object call(int port, String... args) throws IOException {
        try (RawResp c = new RawResp(port)) {
            return c.send(args).read();
        }
    }

    static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 120_000;
        while (!condition.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(50);
        }
    }

    /** The slot of a key, as Redis computes it (hash tags included). */
    static int slot(String key) {
        return io.lettuce.core.cluster.SlotHash.getSlot(key.getBytes(StandardCharsets.UTF_8));
    }

    /** A key owned by master {@code index} (slots split evenly, as {@link #start} assigns them). */
    String keyOn(int index, String prefix) {
        int n = redis.size();
        for (int i = 0; ; i++) {
            String key = prefix + i;
            int s = slot(key);
            if (s >= index * 16384 / n && s <= (index + 1) * 16384 / n - 1) {
                return key;
            }
        }
    }

    /** Stops jgears {@code index} and starts it again as it was (it restores its sessions from its data directory). */
    void restartJgears(int index) throws Exception {
        jgears.get(index).close();
        JGears again = JGears.start(jgearsOptions.get(index));
        jgears.set(index, again);
        for (JGears j : jgears) {
            await("jgears on " + j.port() + " to know the restarted one", () -> j.cluster().peer(again.cluster().myId()) != null
                    && again.cluster().peer(j.cluster().myId()) != null
                    && j.cluster().peer(again.cluster().myId()).runId().equals(again.cluster().runId()));
        }
    }

    List<Integer> jgearsPorts() {
        return jgears.stream().map(JGears::port).toList();
    }

    @Override
    public void close() {
        for (JGears j : allJgears()) {
            j.close();
        }
        for (RedisNode n : allRedis()) {
            n.process().destroy();
        }
        for (RedisNode n : allRedis()) {
            try {
                n.process().waitFor(10, java.util.concurrent.TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            n.process().destroyForcibly();
        }
    }
}
