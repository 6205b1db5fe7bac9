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
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * jgears on a real 3-master Redis Cluster, a jgears beside each master: the topology it shows
 * (RG.INFOCLUSTER, CLUSTER SLOTS/SHARDS/NODES) and the redirects it passes on name jgears nodes, so that
 * cluster clients (redis-cli -c, Lettuce's cluster client) only ever talk to jgears. Also KeysReader's reads on a
 * cluster node: batches whose keys are in many slots give every key with its value, whatever its type, and a
 * key the node does not serve (as after a resharding moved it between SCAN and the read) is an error naming
 * it, never a silently missing record.
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

    private static List<?> pyExecute(int node, String code, String... options) throws IOException {
        String[] args = new String[2 + options.length];
        args[0] = "RG.PYEXECUTE";
        args[1] = code;
        System.arraycopy(options, 0, args, 2, options.length);
        Object reply = TestCluster.call(cluster.jgears.get(node).port(), args);
        assertTrue(reply instanceof List<?>, "reply: " + reply);
        return (List<?>) reply;
    }

    private static List<String> sorted(Object results) {
        return ((List<?>) results).stream().map(String::valueOf).sorted().toList();
    }

    private static void writeBatchKeys() throws IOException {
        // 30 keys, ten on each shard, written to the owning Redis directly.
        for (int shard = 0; shard < 3; shard++) {
            for (int i = 0; i < 10; i++) {
                String key = cluster.keyOn(shard, "batch:" + shard + ":" + i + ":");
                TestCluster.call(cluster.redis.get(shard).port(), "SET", key, String.valueOf(shard * 10 + i));
            }
        }
    }

    @Test
    void shardsIdReaderGivesOneRecordPerShard() throws Exception {
        List<?> reply = pyExecute(1, "GB('ShardsIDReader').run()");
        assertEquals(List.of(redisId(0), redisId(1), redisId(2)).stream().sorted().toList(), sorted(reply.get(0)));
        assertEquals(List.of(), reply.get(1));
    }

    @Test
    void batchRunsReadEveryShardAndReduceAcrossShards() throws Exception {
        writeBatchKeys();
        assertEquals(30, ((List<?>) pyExecute(0, "GB().map(lambda r: r['key']).run('batch:*')").get(0)).size());
        assertEquals(List.of("30"), pyExecute(2, "GB().count().run('batch:*')").get(0));
        assertEquals(List.of(String.valueOf(29 * 30 / 2)), pyExecute(1,
                "GB().map(lambda r: int(r['value'])).aggregate(0, lambda a, r: a + r, lambda a, r: a + r).run('batch:*')").get(0));
        assertEquals(List.of("14.5"), pyExecute(0, "GB().map(lambda r: int(r['value'])).avg().run('batch:*')").get(0));
        assertEquals(List.of("0", "1", "2", "3", "4"), pyExecute(0,
                "GB().map(lambda r: int(r['value'])).sort().limit(5).run('batch:*')").get(0));
        assertEquals(List.of("{'key': '0', 'value': 10}", "{'key': '1', 'value': 10}", "{'key': '2', 'value': 10}"),
                sorted(pyExecute(1, "GB().countby(lambda r: str(int(r['value']) % 3)).run('batch:*')").get(0)));
        assertEquals(List.of("{'key': 'a', 'value': 435}"), sorted(pyExecute(2,
                "GB().aggregateby(lambda r: 'a', 0, lambda k, a, r: a + int(r['value']), lambda k, a, r: a + r).run('batch:*')").get(0)));
        assertEquals(List.of("0:10", "1:10", "2:10"), sorted(pyExecute(0,
                "GB().groupby(lambda r: str(int(r['value']) // 10), lambda k, a, r: (a or 0) + 1)"
                        + ".map(lambda r: '%s:%s' % (r['key'], r['value'])).run('batch:*')").get(0)));
        // run(collect=False): the records stay on their shards; the reply has the coordinator's own.
        assertEquals(10, ((List<?>) pyExecute(1, "GB().map(lambda r: r['key']).run('batch:*', collect=False)").get(0)).size());
        // Errors of every shard come back to the coordinator.
        List<?> failing = pyExecute(1, "GB().map(lambda r: 1 / 0).run('batch:*')");
        assertEquals(List.of(), failing.get(0));
        assertEquals(30, ((List<?>) failing.get(1)).size());
    }

    @Test
    void repartitionMovesEachRecordToTheShardOwningItsKeyAndTheNextStepsRunThere() throws Exception {
        // Four source keys on each shard; each names a target key, and the targets are on all three shards.
        List<String> targets = new java.util.ArrayList<>();
        java.util.Map<String, Integer> ownerOf = new java.util.HashMap<>();
        for (int shard = 0; shard < 3; shard++) {
            for (int i = 0; i < 4; i++) {
                int owner = (shard + i) % 3;
                String target = cluster.keyOn(owner, "rp:dst:" + shard + ":" + i + ":");
                String source = cluster.keyOn(shard, "rp:src:" + shard + ":" + i + ":");
                TestCluster.call(cluster.redis.get(shard).port(), "SET", source, target);
                targets.add(target);
                ownerOf.put(target, owner);
            }
        }
        List<String> expected = targets.stream().sorted().toList();
        // After the repartition the steps run on the target's owner: execute() there is never MOVED (a MOVED
        // would be a step error). The INCR's key has the target as hash tag: the same slot.
        List<?> reply = pyExecute(1, "GB().map(lambda r: {'key': r['value'], 'src': r['key']})"
                + ".repartition(lambda r: r['key'])"
                + ".foreach(lambda r: execute('SET', r['key'], r['src']))"
                + ".foreach(lambda r: execute('INCR', '{%s}:n' % r['key']))"
                + ".map(lambda r: r['key']).run('rp:src:*')");
        assertEquals(List.of(), reply.get(1));
        assertEquals(expected, sorted(reply.get(0)));
        for (String target : targets) {
            int port = cluster.redis.get(ownerOf.get(target)).port();
            assertTrue(String.valueOf(TestCluster.call(port, "GET", target)).startsWith("rp:src:"), target);
            assertEquals("1", TestCluster.call(port, "GET", "{" + target + "}:n"), target);
        }
        // groupby moves the records to their group key's owner too; a count after it is gathered as before.
        reply = pyExecute(0, "GB().groupby(lambda r: r['value'], lambda k, a, r: (a or 0) + 1)"
                + ".foreach(lambda r: execute('SET', '{%s}:g' % r['key'], str(r['value']))).count().run('rp:src:*')");
        assertEquals(List.of(), reply.get(1));
        assertEquals(List.of("12"), reply.get(0));
        for (String target : targets) {
            assertEquals("1", TestCluster.call(cluster.redis.get(ownerOf.get(target)).port(), "GET", "{" + target + "}:g"), target);
        }
        // Two repartitions in a row, then collect=False: the records stay on the owners of the second key.
        reply = pyExecute(2, "GB().map(lambda r: r['value']).repartition(lambda r: r)"
                + ".map(lambda r: '{%s}:twice' % r).repartition(lambda r: r)"
                + ".foreach(lambda r: execute('SET', r, 'x')).run('rp:src:*', collect=False)");
        assertEquals(List.of(), reply.get(1));
        long onTwo = targets.stream().filter(t -> ownerOf.get(t) == 2).count();
        assertEquals(onTwo, ((List<?>) reply.get(0)).size());
        for (String target : targets) {
            assertEquals("x", TestCluster.call(cluster.redis.get(ownerOf.get(target)).port(), "GET", "{" + target + "}:twice"), target);
        }
        // Errors of the steps after a repartition, on every shard, reach the coordinator.
        reply = pyExecute(0, "GB().repartition(lambda r: r['value']).map(lambda r: 1 / 0).run('rp:src:*')");
        assertEquals(List.of(), reply.get(0));
        assertEquals(12, ((List<?>) reply.get(1)).size());
    }

    @Test
    void aShardWhoseScriptFailsDoesNotHoldUpTheOthersRepartition() throws Exception {
        for (int shard = 0; shard < 3; shard++) {
            TestCluster.call(cluster.redis.get(shard).port(), "SET", cluster.keyOn(shard, "rpfail:" + shard + ":"), "v" + shard);
        }
        String failing = redisId(2);
        long start = System.nanoTime();
        List<?> reply = pyExecute(0, "if execute('CLUSTER', 'MYID') == '" + failing + "':\n"
                + "    raise Exception('no part here')\n"
                + "GB().repartition(lambda r: r['key']).map(lambda r: r['key']).run('rpfail:*')");
        long seconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - start);
        assertTrue(seconds < 60, "the run took " + seconds + " s");
        List<String> errors = ((List<?>) reply.get(1)).stream().map(String::valueOf).toList();
        assertTrue(errors.stream().anyMatch(e -> e.contains("no part here")), "errors: " + errors);
        // Shards 0 and 1 heard that shard 2 sends nothing: each says so, neither waited for it.
        assertEquals(2, errors.stream().filter(e -> e.contains("shard " + failing + " sent no records to the repartition")).count(),
                "errors: " + errors);
        assertEquals(List.of(cluster.keyOn(0, "rpfail:0:"), cluster.keyOn(1, "rpfail:1:")), sorted(reply.get(0)));
    }

    @Test
    void registrationsAreInstalledOnEveryShardAndFireWhereTheDataChanges() throws Exception {
        assertEquals("OK", TestCluster.call(cluster.jgears.get(0).port(), "RG.PYEXECUTE",
                "GB().foreach(lambda r: execute('SET', '{%s}:seen' % r['key'], '1')).register(prefix='reg:*', eventTypes=['set'])",
                "ID", "everywhere"));
        for (int shard = 0; shard < 3; shard++) {
            // The coordinator answers once its own shard has registered; the others follow (as in RedisGears).
            // (Other tests' registrations may be there too: this one is the only KeysReader.)
            int port = cluster.jgears.get(shard).port();
            TestCluster.await("the KeysReader registration on the jgears at " + port, () -> {
                try {
                    return ((List<?>) TestCluster.call(port, "RG.DUMPREGISTRATIONS")).stream()
                            .filter(r -> "KeysReader".equals(((List<?>) r).get(3))).count() == 1;
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
        }
        for (int shard = 0; shard < 3; shard++) {
            String key = cluster.keyOn(shard, "reg:");
            int port = cluster.redis.get(shard).port();
            // Set again until seen: a registration is listed a moment before it subscribes to its events.
            TestCluster.await("the registration on shard " + port + " to see " + key, () -> {
                try {
                    TestCluster.call(port, "SET", key, "x");
                    return "1".equals(TestCluster.call(port, "GET", "{" + key + "}:seen"));
                } catch (IOException e) {
                    return false;
                }
            });
        }
    }

    @Test
    void triggerOnKeyIsRoutedToTheKeysShard() throws Exception {
        assertEquals("OK", TestCluster.call(cluster.jgears.get(1).port(), "RG.PYEXECUTE",
                "GB('CommandReader').map(lambda x: execute('GET', x[1])).register(trigger='getter')", "ID", "getter"));
        String key = cluster.keyOn(2, "trig:");
        TestCluster.call(cluster.redis.get(2).port(), "SET", key, "from-shard-2");
        // The other shards register it as their part of the run arrives (the coordinator does not wait for them).
        int owner = cluster.jgears.get(2).port();
        TestCluster.await("the getter registration on the jgears at " + owner, () -> {
            try {
                return ((List<?>) TestCluster.call(owner, "RG.DUMPREGISTRATIONS")).stream()
                        .anyMatch(r -> "CommandReader".equals(((List<?>) r).get(3)));
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        assertEquals("-MOVED " + TestCluster.slot(key) + " 127.0.0.1:" + cluster.jgears.get(2).port(),
                TestCluster.call(cluster.jgears.get(0).port(), "RG.TRIGGERONKEY", "getter", key));
        assertEquals("from-shard-2", redisCli(cluster.jgears.get(0).port(), "RG.TRIGGERONKEY", "getter", key));
    }

    @Test
    void executeFromPythonSeesTheClusterAsClientsDo() throws Exception {
        // Each shard's part asks its own jgears: one MyId per shard, each that shard's Redis node id.
        List<?> reply = pyExecute(2, "GB('ShardsIDReader').map(lambda r: '%s=%s' % (r, execute('RG.INFOCLUSTER')[1])).run()");
        Set<Object> expected = new HashSet<>();
        for (int i = 0; i < 3; i++) {
            expected.add(redisId(i) + "=" + redisId(i));
        }
        assertEquals(expected, new HashSet<>((List<?>) reply.get(0)), "reply: " + reply);
        assertEquals(List.of("OK"), pyExecute(0,
                "GB('ShardsIDReader').map(lambda r: execute('RG.REFRESHCLUSTER')).distinct().run()").get(0));
    }

    /** The registrations on the jgears at {@code port} whose CommandReader trigger is {@code trigger}: their ids. */
    private static List<String> registrationsOfTrigger(int port, String trigger) throws IOException {
        List<String> ids = new java.util.ArrayList<>();
        for (Object o : (List<?>) TestCluster.call(port, "RG.DUMPREGISTRATIONS")) {
            List<?> r = (List<?>) o;
            if (String.valueOf(r.get(7)).contains(trigger)) {
                ids.add(String.valueOf(r.get(1)));
            }
        }
        return ids;
    }

    @Test
    void registrationsAndTheirSessionHaveTheSameIdsOnEveryShardAndUnregisterOnAnyShardRemovesThemAll() throws Exception {
        assertEquals("OK", TestCluster.call(cluster.jgears.get(1).port(), "RG.PYEXECUTE",
                "GB('CommandReader').register(trigger='sameids1')\n"
                        + "GB('CommandReader').register(trigger='sameids2')"));
        List<List<String>> perShard = new java.util.ArrayList<>();
        for (int shard = 0; shard < 3; shard++) {
            int port = cluster.jgears.get(shard).port();
            TestCluster.await("both registrations on the jgears at " + port, () -> {
                try {
                    return registrationsOfTrigger(port, "sameids1").size() == 1 && registrationsOfTrigger(port, "sameids2").size() == 1;
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            perShard.add(List.of(registrationsOfTrigger(port, "sameids1").getFirst(), registrationsOfTrigger(port, "sameids2").getFirst()));
        }
        // RedisGears names them by the shard the script was sent to, the same on every shard.
        List<String> ids = perShard.getFirst();
        assertEquals(List.of(ids, ids, ids), perShard);
        assertTrue(ids.get(0).matches(redisId(1) + "-\\d+"), ids.toString());
        assertTrue(ids.get(0).compareTo(ids.get(1)) != 0, ids.toString());
        // The session too: PD names it, and RG.PYDUMPSESSIONS on each shard shows it.
        String pd = null;
        for (Object o : (List<?>) TestCluster.call(cluster.jgears.get(2).port(), "RG.DUMPREGISTRATIONS")) {
            List<?> r = (List<?>) o;
            if (ids.get(0).equals(r.get(1))) {
                pd = String.valueOf(r.get(9));
            }
        }
        assertNotNull(pd);
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("'sessionName':'([0-9a-f]+)'").matcher(pd);
        assertTrue(m.find(), pd);
        String session = m.group(1);
        for (int shard = 0; shard < 3; shard++) {
            assertTrue(String.valueOf(TestCluster.call(cluster.jgears.get(shard).port(), "RG.PYDUMPSESSIONS")).contains(session),
                    "session " + session + " on shard " + shard);
        }

        // Unregistered through another shard than the one that created it: gone everywhere when the reply comes.
        assertEquals("OK", TestCluster.call(cluster.jgears.get(2).port(), "RG.UNREGISTER", ids.get(0)));
        for (int shard = 0; shard < 3; shard++) {
            assertEquals(List.of(), registrationsOfTrigger(cluster.jgears.get(shard).port(), "sameids1"), "shard " + shard);
            assertEquals(List.of(ids.get(1)), registrationsOfTrigger(cluster.jgears.get(shard).port(), "sameids2"), "shard " + shard);
        }
        assertEquals("-execution is not registered", TestCluster.call(cluster.jgears.get(0).port(), "RG.UNREGISTER", ids.get(0)));
        assertEquals("OK", TestCluster.call(cluster.jgears.get(0).port(), "RG.UNREGISTER", ids.get(1)));
        for (int shard = 0; shard < 3; shard++) {
            assertEquals(List.of(), registrationsOfTrigger(cluster.jgears.get(shard).port(), "sameids2"), "shard " + shard);
        }
    }

    @Test
    void anUnblockingRunHasOneIdOnEveryShardForGetExecutionClusterAndDrop() throws Exception {
        String id = String.valueOf(TestCluster.call(cluster.jgears.get(0).port(),
                "RG.PYEXECUTE", "GB('ShardsIDReader').map(lambda r: r).run()", "UNBLOCKING"));
        assertTrue(id.matches(redisId(0) + "-\\d+"), id);
        TestCluster.await("the run to end", () -> {
            try {
                return TestCluster.call(cluster.jgears.get(0).port(), "RG.GETRESULTS", id) instanceof List<?>;
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        Set<Object> everyShard = Set.of(redisId(0), redisId(1), redisId(2));
        for (int shard = 0; shard < 3; shard++) {
            int port = cluster.jgears.get(shard).port();
            assertTrue(String.valueOf(TestCluster.call(port, "RG.DUMPEXECUTIONS")).contains(id), "shard " + shard);
            // On a cluster RG.GETEXECUTION gathers every shard's part by default, as RedisGears does.
            TestCluster.await("every shard's part to be done, seen from shard " + shard, () -> {
                try {
                    List<?> plans = (List<?>) TestCluster.call(port, "RG.GETEXECUTION", id);
                    Set<Object> shards = new HashSet<>();
                    for (Object p : plans) {
                        List<?> entry = (List<?>) p;
                        assertEquals("shard_id", entry.get(0));
                        List<?> plan = (List<?>) entry.get(3);
                        if ("done".equals(plan.get(1))) {
                            shards.add(entry.get(1));
                        }
                    }
                    return shards.equals(everyShard);
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            List<?> mine = (List<?>) TestCluster.call(port, "RG.GETEXECUTION", id, "SHARD");
            assertEquals(1, mine.size());
            assertEquals(redisId(shard), ((List<?>) mine.getFirst()).get(1));
        }
        assertEquals(3, ((List<?>) TestCluster.call(cluster.jgears.get(1).port(), "RG.GETEXECUTION", id, "cluster")).size());
        // The coordinator's part counts the shards that got the run and finished it.
        List<?> coordinator = (List<?>) ((List<?>) ((List<?>) TestCluster.call(cluster.jgears.get(0).port(),
                "RG.GETEXECUTION", id, "SHARD")).getFirst()).get(3);
        assertEquals(List.of("shards_received", 2L, "shards_completed", 2L), coordinator.subList(2, 6));

        // Dropped through another shard: gone from every shard.
        assertEquals("OK", TestCluster.call(cluster.jgears.get(2).port(), "RG.DROPEXECUTION", id));
        for (int shard = 0; shard < 3; shard++) {
            int port = cluster.jgears.get(shard).port();
            assertEquals("-execution plan does not exist", TestCluster.call(port, "RG.GETEXECUTION", id));
            assertTrue(!String.valueOf(TestCluster.call(port, "RG.DUMPEXECUTIONS")).contains(id), "shard " + shard);
        }
        assertEquals("-execution does not exist", TestCluster.call(cluster.jgears.get(1).port(), "RG.DROPEXECUTION", id));
    }

    private static void awaitTriggerOnEveryShard(String trigger, int count) throws InterruptedException {
        for (int shard = 0; shard < 3; shard++) {
            int index = shard;
            TestCluster.await(count + " registration(s) of trigger " + trigger + " on shard " + shard, () -> {
                try {
                    return registrationsOfTrigger(cluster.jgears.get(index).port(), trigger).size() == count;
                } catch (IOException e) {
                    return false;
                }
            });
        }
    }

    @Test
    void aRestartedNodeRestoresItsRegistrationsUnderTheirIdsAndGivesNewOnesOthers() throws Exception {
        // Not the node's first ids: a restart that numbered restored registrations afresh would differ.
        pyExecute(1, "GB('ShardsIDReader').run()");
        assertEquals("OK", TestCluster.call(cluster.jgears.get(1).port(), "RG.PYEXECUTE",
                "GB('CommandReader').register(trigger='restartids')"));
        awaitTriggerOnEveryShard("restartids", 1);
        String id = registrationsOfTrigger(cluster.jgears.get(1).port(), "restartids").getFirst();

        cluster.restartJgears(1);
        assertEquals(List.of(id), registrationsOfTrigger(cluster.jgears.get(1).port(), "restartids"));
        // The restarted node coordinates a new script: its ids come after the restored block.
        assertEquals("OK", TestCluster.call(cluster.jgears.get(1).port(), "RG.PYEXECUTE",
                "GB('CommandReader').register(trigger='afterrestart')"));
        awaitTriggerOnEveryShard("afterrestart", 1);
        String next = registrationsOfTrigger(cluster.jgears.get(1).port(), "afterrestart").getFirst();
        assertTrue(Long.parseLong(next.substring(next.lastIndexOf('-') + 1)) > Long.parseLong(id.substring(id.lastIndexOf('-') + 1)),
                id + " then " + next);
        // One RG.UNREGISTER still reaches the restored registration.
        assertEquals("OK", TestCluster.call(cluster.jgears.get(0).port(), "RG.UNREGISTER", id));
        assertEquals("OK", TestCluster.call(cluster.jgears.get(2).port(), "RG.UNREGISTER", next));
        awaitTriggerOnEveryShard("restartids", 0);
        awaitTriggerOnEveryShard("afterrestart", 0);
    }

    @Test
    void everyShardsPartRunsAsTheClientsAclUser() throws Exception {
        // A cluster's nodes each have the same ACL users (Redis does not spread ACL changes itself).
        for (TestCluster.RedisNode n : cluster.redis) {
            assertEquals("OK", TestCluster.call(n.port(), "ACL", "SETUSER", "carol", "on", ">carolpw", "~carol:*", "+@all"));
        }
        try (RawResp c = new RawResp(cluster.jgears.get(0).port())) {
            assertEquals("OK", String.valueOf(c.send("AUTH", "carol", "carolpw").read()));
            List<?> reply = (List<?>) c.send("RG.PYEXECUTE",
                    "GB('ShardsIDReader').map(lambda r: execute('SET', 'notcarols:{%s}' % r, '1')).run()").read();
            List<?> errors = (List<?>) reply.get(1);
            // As jgears' own user each shard would set the key (or get MOVED for it): as carol each is refused.
            assertEquals(3, errors.size(), "reply: " + reply);
            for (Object e : errors) {
                assertTrue(String.valueOf(e).contains("NOPERM"), "reply: " + reply);
            }
        } finally {
            for (TestCluster.RedisNode n : cluster.redis) {
                TestCluster.call(n.port(), "ACL", "DELUSER", "carol");
            }
        }
    }

    /** The RegistrationData of the registration on the jgears at {@code port} whose args mention {@code prefix}. */
    private static List<?> registrationData(int port, String prefix) throws IOException {
        for (Object o : (List<?>) TestCluster.call(port, "RG.DUMPREGISTRATIONS")) {
            List<?> r = (List<?>) o;
            if (String.valueOf(r.get(7)).contains(prefix)) {
                return (List<?>) r.get(7);
            }
        }
        return null;
    }

    @Test
    void inModeAsyncARepartitionMovesAnEventsRecordsToTheShardOwningTheirKeyAndInAsyncLocalItDoesNot() throws Exception {
        String steps = "GB().repartition(lambda r: r['value'])"
                + ".foreach(lambda r: execute('SET', r['value'], 'from ' + r['key']))";
        assertEquals("OK", TestCluster.call(cluster.jgears.get(1).port(), "RG.PYEXECUTE",
                steps + ".register(prefix='fwd:*', eventTypes=['set'])\n"
                        + steps + ".register(prefix='fwdlocal:*', eventTypes=['set'], mode='async_local')"));
        for (int shard = 0; shard < 3; shard++) {
            int port = cluster.jgears.get(shard).port();
            TestCluster.await("both registrations on shard " + shard, () -> {
                try {
                    return registrationData(port, "fwd:*") != null && registrationData(port, "fwdlocal:*") != null;
                } catch (IOException e) {
                    return false;
                }
            });
        }
        // An event on shard 0 whose record names a key of shard 2: the foreach after the repartition runs there.
        String source = cluster.keyOn(0, "fwd:");
        String target = cluster.keyOn(2, "fwdtarget:");
        TestCluster.await(target + " set on shard 2", () -> {
            try {
                // Set again until seen: a registration is listed a moment before it subscribes to its events.
                TestCluster.call(cluster.redis.get(0).port(), "SET", source, target);
                return ("from " + source).equals(TestCluster.call(cluster.redis.get(2).port(), "GET", target));
            } catch (IOException e) {
                return false;
            }
        });
        // async_local: the execution stays on shard 0, where that key is not served.
        String localSource = cluster.keyOn(0, "fwdlocal:");
        String localTarget = cluster.keyOn(2, "fwdlocaltarget:");
        int port0 = cluster.jgears.get(0).port();
        TestCluster.await("the async_local execution to fail on shard 0", () -> {
            try {
                TestCluster.call(cluster.redis.get(0).port(), "SET", localSource, localTarget);
                return String.valueOf(registrationData(port0, "fwdlocal:*")).contains("MOVED");
            } catch (IOException e) {
                return false;
            }
        });
        assertEquals(null, TestCluster.call(cluster.redis.get(2).port(), "GET", localTarget));
    }

    /** The type markers of a RESP reply's frames, in order (its shape without the values). */
    private static String shapeOf(String raw) {
        StringBuilder shape = new StringBuilder();
        int i = 0;
        while (i < raw.length()) {
            char type = raw.charAt(i);
            int eol = raw.indexOf("\r\n", i);
            shape.append(type);
            if (type == '$') {
                i = eol + 2 + Integer.parseInt(raw.substring(i + 1, eol)) + 2;
            } else {
                i = eol + 2;
            }
        }
        return shape.toString();
    }

    @Test
    void aResp3ClientGetsClusterShardsAndSlotsInRedisResp3Shape() throws Exception {
        int jgearsPort = cluster.jgears.get(0).port();
        try (RawResp redis = new RawResp(cluster.redis.get(0).port()); RawResp jgears = new RawResp(jgearsPort)) {
            redis.send("HELLO", "3").readRaw();
            assertTrue(jgears.send("HELLO", "3").readRaw().startsWith("%"), "HELLO 3 answers a map");
            for (String sub : List.of("SHARDS", "SLOTS")) {
                String fromRedis = redis.send("CLUSTER", sub).readRaw();
                String fromJgears = jgears.send("CLUSTER", sub).readRaw();
                assertEquals(shapeOf(fromRedis), shapeOf(fromJgears), sub + ": " + fromJgears);
                assertTrue(fromJgears.contains(":" + jgearsPort + "\r\n"), sub + " names the jgears: " + fromJgears);
            }
            assertTrue(redis.send("CLUSTER", "SHARDS").readRaw().startsWith("*3\r\n%"), "Redis answers RESP3 maps");
            // Back to RESP2: arrays again.
            jgears.send("HELLO", "2").readRaw();
            assertTrue(jgears.send("CLUSTER", "SHARDS").readRaw().startsWith("*3\r\n*"));
        }
    }

    private static String partStatus(int shard, String id) {
        try {
            Object reply = TestCluster.call(cluster.jgears.get(shard).port(), "RG.GETEXECUTION", id, "SHARD");
            return reply instanceof List<?> l ? String.valueOf(((List<?>) ((List<?>) l.getFirst()).get(3)).get(1)) : String.valueOf(reply);
        } catch (IOException e) {
            return e.toString();
        }
    }

    @Test
    void abortThroughAnotherShardStopsEveryShardsPartOfARun() throws Exception {
        String id = String.valueOf(TestCluster.call(cluster.jgears.get(0).port(), "RG.PYEXECUTE",
                "GB('ShardsIDReader').map(lambda r: [0 for _ in iter(int, 1)]).run()", "UNBLOCKING"));
        for (int shard = 0; shard < 3; shard++) {
            int s = shard;
            TestCluster.await("shard " + shard + "'s part to run", () -> "running".equals(partStatus(s, id)));
        }
        assertEquals("OK", TestCluster.call(cluster.jgears.get(2).port(), "RG.ABORTEXECUTION", id));
        for (int shard = 0; shard < 3; shard++) {
            int s = shard;
            TestCluster.await("shard " + shard + "'s part to be aborted", () -> "aborted".equals(partStatus(s, id)));
        }
        assertEquals("OK", TestCluster.call(cluster.jgears.get(1).port(), "RG.DROPEXECUTION", id));
    }

    /** The time events of session {@code session} on jgears {@code shard}: their ids. */
    private static List<String> timeEventsOf(int shard, String session) throws IOException {
        List<String> ids = new java.util.ArrayList<>();
        for (Object o : (List<?>) TestCluster.call(cluster.jgears.get(shard).port(), "RG.DUMPTIMEEVENTS")) {
            List<?> te = (List<?>) o;
            if (session.equals(te.get(3))) {
                ids.add(String.valueOf(te.get(1)));
            }
        }
        return ids;
    }

    private static long counter(int shard, String key) throws IOException {
        Object v = TestCluster.call(cluster.redis.get(shard).port(), "GET", key);
        return v == null ? 0 : Long.parseLong(String.valueOf(v));
    }

    @Test
    void aScriptsRegisterTeLivesOnOneShardItsKeysOrTheOneTheScriptWasSentTo() throws Exception {
        String key = cluster.keyOn(2, "tekey:");
        String plainTicks = cluster.keyOn(0, "teplain:");
        String script = "def keyed():\n    execute('INCR', '{" + key + "}:ticks')\n"
                + "def plain():\n    execute('INCR', '" + plainTicks + "')\n"
                + "registerTE(1, keyed, '" + key + "')\n"
                + "registerTE(1, plain)\n"
                + "GB('CommandReader').register(trigger='tehost')";
        assertEquals("OK", TestCluster.call(cluster.jgears.get(0).port(), "RG.PYEXECUTE", script, "ID", "tesession"));
        // The script loads on every shard (a keyed registerTE does not fail it where the key is not served).
        awaitTriggerOnEveryShard("tehost", 1);
        TestCluster.await("the keyed event to tick on shard 2", () -> {
            try {
                return counter(2, "{" + key + "}:ticks") >= 2;
            } catch (IOException e) {
                return false;
            }
        });
        TestCluster.await("the plain event to tick on shard 0", () -> {
            try {
                return counter(0, plainTicks) >= 2;
            } catch (IOException e) {
                return false;
            }
        });
        // One event each, where it lives (RedisGears runs the script on the shard it was sent to only).
        assertEquals(1, timeEventsOf(0, "tesession").size());
        assertEquals(0, timeEventsOf(1, "tesession").size());
        assertEquals(1, timeEventsOf(2, "tesession").size());
        TestCluster.call(cluster.redis.get(2).port(), "DEL", key);
        assertEquals("OK", TestCluster.call(cluster.jgears.get(0).port(), "RG.UNREGISTERTE", timeEventsOf(0, "tesession").getFirst()));
        assertEquals("OK", TestCluster.call(cluster.jgears.get(0).port(), "RG.UNREGISTER",
                registrationsOfTrigger(cluster.jgears.get(0).port(), "tehost").getFirst()));
    }

    // KeysReader's reads on a cluster node, where one MGET may not span slots.

    @Test
    void batchOverManySlotsReadsEveryKeyWithItsValue() throws Exception {
        // 300 strings per shard (hundreds of slots each), plus a hash, a list and a set on each shard.
        java.util.Map<String, String> expected = new java.util.TreeMap<>();
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
        java.util.Map<String, String> read = new java.util.TreeMap<>();
        for (Object record : (List<?>) ((List<?>) reply).get(0)) {
            String[] parts = String.valueOf(record).split("\\|", 2);
            read.put(parts[0], parts[1]);
        }
        assertEquals(expected, read);
    }

    @Test
    void keyNotServedByTheNodeIsAnErrorNamingIt() throws Exception {
        int port = cluster.redis.get(0).port();
        try (io.jgears.redis.RedisBackend redis = new io.jgears.redis.RedisBackend(RedisURI.create("redis://127.0.0.1:" + port), Duration.ofSeconds(30))) {
            List<byte[]> keys = new java.util.ArrayList<>();
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
            List<byte[]> withAway = new java.util.ArrayList<>(keys);
            withAway.add(10, away.getBytes(StandardCharsets.UTF_8));
            for (List<byte[]> read : List.of(withAway, List.of(away.getBytes(StandardCharsets.UTF_8)))) {
                io.jgears.redis.RedisCommandException e = assertThrows(io.jgears.redis.RedisCommandException.class, () -> redis.readValues(null, "0", read, false));
                assertTrue(e.getMessage().contains("'" + away + "'") && e.getMessage().contains("resharding"), e.getMessage());
            }
            // Key events read by type (readKeys): the same error.
            io.jgears.redis.RedisCommandException e = assertThrows(io.jgears.redis.RedisCommandException.class, () -> redis.readKeys(null, withAway, false));
            assertTrue(e.getMessage().contains("'" + away + "'") && e.getMessage().contains("resharding"), e.getMessage());
        }
    }
}
