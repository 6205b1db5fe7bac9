package io.jgears;

import io.lettuce.core.RedisURI;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import io.lettuce.core.cluster.models.partitions.RedisClusterNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * jgears on a real 3-master Redis Cluster, a jgears beside each master: the topology it shows
 * (RG.INFOCLUSTER, CLUSTER SLOTS/SHARDS/NODES) and the redirects it passes on name jgears nodes, so that
 * cluster clients (redis-cli -c, Lettuce's cluster client) only ever talk to jgears.
 */
class ClusterTest {
    private static TestCluster cluster;

    @BeforeAll
    static void startCluster() throws Exception {
        cluster = TestCluster.start(3);
    }

    @AfterAll
    static void stopCluster() {
        if (cluster != null) {
            cluster.close();
        }
    }

    private static String redisId(int index) throws IOException {
        return String.valueOf(TestCluster.call(cluster.redis.get(index).port(), "CLUSTER", "MYID"));
    }

    @Test
    void infoClusterHasRedisGearsShapeWithEveryShardsJgears() throws Exception {
        List<?> info = (List<?>) TestCluster.call(cluster.jgears.get(1).port(), "RG.INFOCLUSTER");
        assertEquals("MyId", info.get(0));
        assertEquals(redisId(1), info.get(1));
        assertEquals("MyRunId", info.get(2));
        assertEquals(cluster.jgears.get(1).cluster().runId(), info.get(3));
        List<?> shards = (List<?>) info.get(4);
        assertEquals(3, shards.size());
        Set<Object> ports = new HashSet<>();
        long slots = 0;
        for (int i = 0; i < 3; i++) {
            List<?> s = (List<?>) shards.get(i);
            assertEquals(List.of("id", "ip", "port", "unixSocket", "runid", "minHslot", "maxHslot", "pendingMessages"),
                    List.of(s.get(0), s.get(2), s.get(4), s.get(6), s.get(8), s.get(10), s.get(12), s.get(14)));
            assertEquals(redisId(i), s.get(1));
            assertEquals("127.0.0.1", s.get(3));
            ports.add(((Long) s.get(5)).intValue());
            assertEquals(cluster.jgears.get(i).cluster().runId(), s.get(9));
            slots += (Long) s.get(13) - (Long) s.get(11) + 1;
        }
        assertEquals(new HashSet<>(cluster.jgearsPorts()), ports);
        assertEquals(16384, slots);
        assertEquals("OK", TestCluster.call(cluster.jgears.get(0).port(), "RG.REFRESHCLUSTER"));
    }

    @Test
    void executionIdsCarryTheShardsRedisNodeId() throws Exception {
        String id = String.valueOf(TestCluster.call(cluster.jgears.get(2).port(),
                "RG.PYEXECUTE", "GB('ShardsIDReader').run()", "UNBLOCKING"));
        assertTrue(id.matches(redisId(2) + "-\\d+"), id);
    }

    @Test
    void clusterSlotsShardsAndNodesNameJgearsNodes() throws Exception {
        Set<Integer> jgearsPorts = new HashSet<>(cluster.jgearsPorts());
        List<?> slots = (List<?>) TestCluster.call(cluster.jgears.get(0).port(), "CLUSTER", "SLOTS");
        assertEquals(3, slots.size());
        for (Object r : slots) {
            List<?> node = (List<?>) ((List<?>) r).get(2);
            assertTrue(jgearsPorts.contains(((Long) node.get(1)).intValue()), "CLUSTER SLOTS names " + node);
        }
        String nodes = String.valueOf(TestCluster.call(cluster.jgears.get(0).port(), "CLUSTER", "NODES"));
        for (int p : jgearsPorts) {
            assertTrue(nodes.contains("127.0.0.1:" + p + "@"), nodes);
        }
        for (TestCluster.RedisNode n : cluster.redis) {
            assertTrue(!nodes.contains(":" + n.port() + "@"), nodes);
        }
        List<?> shards = (List<?>) TestCluster.call(cluster.jgears.get(0).port(), "CLUSTER", "SHARDS");
        Set<Integer> shardPorts = new HashSet<>();
        for (Object s : shards) {
            List<?> shard = (List<?>) s;
            for (Object n : (List<?>) shard.get(shard.indexOf("nodes") + 1)) {
                List<?> node = (List<?>) n;
                shardPorts.add(((Long) node.get(node.indexOf("port") + 1)).intValue());
            }
        }
        assertEquals(jgearsPorts, shardPorts);
        // Other CLUSTER subcommands are Redis' own.
        assertEquals(Long.valueOf(TestCluster.slot("somekey")), TestCluster.call(cluster.jgears.get(0).port(), "CLUSTER", "KEYSLOT", "somekey"));
    }

    @Test
    void movedAndAskRedirectsNameTheJgearsOfTheOwningShard() throws Exception {
        String key = cluster.keyOn(2, "moved:");
        Object reply = TestCluster.call(cluster.jgears.get(0).port(), "SET", key, "v");
        assertEquals("-MOVED " + TestCluster.slot(key) + " 127.0.0.1:" + cluster.jgears.get(2).port(), reply);
        // The shard's own jgears serves it.
        assertEquals("OK", TestCluster.call(cluster.jgears.get(2).port(), "SET", key, "v"));
    }

    @Test
    void redisCliInClusterModeReachesEveryShardThroughJgears() throws Exception {
        for (int i = 0; i < 3; i++) {
            String key = cluster.keyOn(i, "cli:");
            assertEquals("OK", redisCli(cluster.jgears.get(0).port(), "SET", key, "value-" + i));
            assertEquals("value-" + i, redisCli(cluster.jgears.get(1).port(), "GET", key));
            assertEquals("value-" + i, String.valueOf(TestCluster.call(cluster.redis.get(i).port(), "GET", key)));
        }
    }

    private static String redisCli(int port, String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of("redis-cli", "-c", "-p", String.valueOf(port)));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "redis-cli did not finish");
        return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    }

    @Test
    void lettucesClusterClientSeesOnlyJgearsNodes() throws Exception {
        RedisClusterClient client = RedisClusterClient.create(RedisURI.builder().withHost("127.0.0.1")
                .withPort(cluster.jgears.get(1).port()).withTimeout(Duration.ofSeconds(120)).build());
        try (StatefulRedisClusterConnection<String, String> c = client.connect()) {
            Set<Integer> seen = new HashSet<>();
            for (RedisClusterNode n : client.getPartitions()) {
                seen.add(n.getUri().getPort());
            }
            assertEquals(new HashSet<>(cluster.jgearsPorts()), seen);
            for (int i = 0; i < 300; i++) {
                c.sync().set("lettuce:" + i, String.valueOf(i));
            }
            for (int i = 0; i < 300; i++) {
                assertEquals(String.valueOf(i), c.sync().get("lettuce:" + i));
            }
            // The keys are spread over the three shards.
            for (TestCluster.RedisNode n : cluster.redis) {
                Object size = TestCluster.call(n.port(), "DBSIZE");
                assertNotNull(size);
                assertTrue((Long) size > 50, "shard on " + n.port() + " holds " + size + " keys");
            }
        } finally {
            client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
        }
    }
}
