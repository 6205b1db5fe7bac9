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
 * with a free cluster bus port), slots split evenly, nodes introduced with CLUSTER MEET, and a jgears
 * (in this JVM) beside each node with --cluster. Closing stops all of it.
 */
final class TestCluster implements AutoCloseable {
    record RedisNode(Process process, int port, Path dir) {
    }

    final List<RedisNode> redis = new ArrayList<>();
    final List<JGears> jgears = new ArrayList<>();
    /** What each jgears was started with (a restart reuses it: the same port and data directory). */
    final List<JGears.Options> jgearsOptions = new ArrayList<>();

    static TestCluster start(int masters) throws Exception {
        return start(masters, null);
    }

    /** As {@link #start(int)}, each jgears started with {@code --announce announce(itsPort)} when given. */
    static TestCluster start(int masters, java.util.function.IntFunction<String> announce) throws Exception {
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
            for (RedisNode n : c.redis) {
                int port = EmbeddedRedis.freePort();
                JGears.Options options = new JGears.Options("127.0.0.1", port,
                        "redis://127.0.0.1:" + n.port(), Files.createTempDirectory("jgears-cluster-node"), false,
                        Map.of("PoolSize", "1", "ExecutionThreads", "2"), 1 << 26, 1 << 16).asClusterNode();
                options = announce == null ? options : options.announcedAs(announce.apply(port));
                c.jgearsOptions.add(options);
                c.jgears.add(JGears.start(options));
            }
            // Every node has heard every other's announcement.
            for (JGears j : c.jgears) {
                await("jgears on " + j.port() + " to know every node", () -> c.jgears.stream()
                        .allMatch(o -> j.cluster().peer(o.cluster().myId()) != null));
            }
            return c;
        } catch (Exception | Error e) {
            c.close();
            throw e;
        }
    }

    private static final Map<Integer, Integer> BUS_PORTS = new java.util.concurrent.ConcurrentHashMap<>();

    private static int busPortOf(RedisNode n) {
        return BUS_PORTS.get(n.port());
    }

    private static RedisNode startRedis(Path exe) throws IOException, InterruptedException {
        Path dir = Files.createTempDirectory("jgears-cluster-redis");
        int port = EmbeddedRedis.freePort();
        int bus = EmbeddedRedis.freePort();
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
        for (JGears j : jgears) {
            j.close();
        }
        for (RedisNode n : redis) {
            n.process().destroy();
        }
        for (RedisNode n : redis) {
            try {
                n.process().waitFor(10, java.util.concurrent.TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            n.process().destroyForcibly();
        }
    }
}
