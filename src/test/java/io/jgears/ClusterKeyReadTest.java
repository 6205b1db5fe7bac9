package io.jgears;

import io.jgears.redis.RedisBackend;
import io.jgears.redis.RedisCommandException;
import io.lettuce.core.RedisURI;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * KeysReader's reads on a Redis Cluster node, where one MGET may not span slots: batches whose keys are in
 * many slots give every key with its value, whatever its type, and a key the node does not serve (as after
 * a resharding moved it between SCAN and the read) is an error naming it, never a silently missing record.
 */
class ClusterKeyReadTest {
    private static TestCluster cluster;

    @BeforeAll
    static void startCluster() throws Exception {
        cluster = TestCluster.start(2);
    }

    @AfterAll
    static void stopCluster() {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void batchOverManySlotsReadsEveryKeyWithItsValue() throws Exception {
        // 300 strings per shard (hundreds of slots each), plus a hash, a list and a set on each shard.
        Map<String, String> expected = new TreeMap<>();
        for (int shard = 0; shard < 2; shard++) {
            int port = cluster.redis.get(shard).port();
            for (int i = 0; i < 300; i++) {
                String key = cluster.keyOn(shard, "mixed:" + shard + ":" + i + ":");
                TestCluster.call(port, "SET", key, "v" + key);
                expected.put(key, "string v" + key);
            }
            String hash = cluster.keyOn(shard, "mixed:h" + shard + ":");
            TestCluster.call(port, "HSET", hash, "f", "1");
            expected.put(hash, "hash {'f': '1'}");
            String list = cluster.keyOn(shard, "mixed:l" + shard + ":");
            TestCluster.call(port, "RPUSH", list, "a", "b");
            expected.put(list, "list ['a', 'b']");
            String set = cluster.keyOn(shard, "mixed:s" + shard + ":");
            TestCluster.call(port, "SADD", set, "x");
            expected.put(set, "set None");
        }
        Object reply = TestCluster.call(cluster.jgears.get(1).port(), "RG.PYEXECUTE",
                "GB().map(lambda r: '%s|%s %s' % (r['key'], r['type'], r.get('value'))).run('mixed:*')");
        assertTrue(reply instanceof List<?> l && ((List<?>) l.get(1)).isEmpty(), "reply: " + reply);
        Map<String, String> read = new TreeMap<>();
        for (Object record : (List<?>) ((List<?>) reply).get(0)) {
            String[] parts = String.valueOf(record).split("\\|", 2);
            read.put(parts[0], parts[1]);
        }
        assertEquals(expected, read);
    }

    @Test
    void keyNotServedByTheNodeIsAnErrorNamingIt() throws Exception {
        int port = cluster.redis.get(0).port();
        try (RedisBackend redis = new RedisBackend(RedisURI.create("redis://127.0.0.1:" + port), Duration.ofSeconds(30))) {
            List<byte[]> keys = new ArrayList<>();
            for (int i = 0; i < 20; i++) {
                String key = cluster.keyOn(0, "here:" + i + ":");
                TestCluster.call(port, "SET", key, String.valueOf(i));
                keys.add(key.getBytes(StandardCharsets.UTF_8));
            }
            // The keys of one batch, all on this node, in many slots: read, each with its value.
            List<?> batch = redis.readValues(null, "0", keys, false);
            assertEquals(1 + 3 * keys.size(), batch.size(), "batch: " + batch);
            for (int i = 0; i < keys.size(); i++) {
                assertEquals(new String(keys.get(i), StandardCharsets.UTF_8), batch.get(1 + 3 * i));
                assertEquals(String.valueOf(i), batch.get(3 + 3 * i));
            }

            String away = cluster.keyOn(1, "away:");
            TestCluster.call(cluster.redis.get(1).port(), "SET", away, "x");
            List<byte[]> withAway = new ArrayList<>(keys);
            withAway.add(10, away.getBytes(StandardCharsets.UTF_8));
            for (List<byte[]> read : List.of(withAway, List.of(away.getBytes(StandardCharsets.UTF_8)))) {
                RedisCommandException e = assertThrows(RedisCommandException.class, () -> redis.readValues(null, "0", read, false));
                assertTrue(e.getMessage().contains("'" + away + "'") && e.getMessage().contains("resharding"), e.getMessage());
            }
            // Key events read by type (readKeys): the same error.
            RedisCommandException e = assertThrows(RedisCommandException.class, () -> redis.readKeys(null, withAway, false));
            assertTrue(e.getMessage().contains("'" + away + "'") && e.getMessage().contains("resharding"), e.getMessage());
        }
    }
}
