package io.jgears;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A jgears node that goes away while a cluster run waits for its part: the run ends with the other shards'
 * records and an error naming the lost shard, and the next run says that shard has no live jgears.
 */
class ClusterNodeLossTest {
    /**
     * Sends RG.PYEXECUTE of {@code GB('ShardsIDReader').map(part)<rest>.run()} to shard 0's jgears, where shard 2's
     * part marks that it started and then sleeps 30 s while shards 0 and 1 answer at once; returns the pending
     * reply once shard 2's part has started.
     */
    private static CompletableFuture<Object> runWhileShard2Sleeps(TestCluster cluster, String lostId, String rest)
            throws Exception {
        String mark = cluster.keyOn(2, "loss:mark:");
        String code = "import time\n"
                + "def part(r):\n"
                + "    if r == '" + lostId + "':\n"
                + "        execute('SET', '" + mark + "', '1')\n"
                + "        time.sleep(30)\n"
                + "    return r\n"
                + "GB('ShardsIDReader').map(part)" + rest + ".run()";
        CompletableFuture<Object> run = CompletableFuture.supplyAsync(() -> {
            try {
                return TestCluster.call(cluster.jgears.get(0).port(), "RG.PYEXECUTE", code);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        TestCluster.await("shard 2 to run its part", () -> {
            try {
                return "1".equals(TestCluster.call(cluster.redis.get(2).port(), "GET", mark));
            } catch (IOException e) {
                return false;
            }
        });
        return run;
    }

    @Test
    void aNodeLostMidRunIsAClearErrorOfThatRun() throws Exception {
        try (TestCluster cluster = TestCluster.start(3)) {
            String lostId = cluster.jgears.get(2).cluster().myId();
            CompletableFuture<Object> run = runWhileShard2Sleeps(cluster, lostId, "");
            cluster.jgears.get(2).close();
            List<?> reply = (List<?>) run.get();
            List<String> results = ((List<?>) reply.get(0)).stream().map(String::valueOf).sorted().toList();
            assertEquals(List.of(cluster.jgears.get(0).cluster().myId(), cluster.jgears.get(1).cluster().myId()).stream().sorted().toList(),
                    results);
            List<?> errors = (List<?>) reply.get(1);
            assertEquals(1, errors.size(), "errors: " + errors);
            assertTrue(String.valueOf(errors.getFirst()).contains("the jgears of shard " + lostId), "error: " + errors.getFirst());
            assertTrue(String.valueOf(errors.getFirst()).contains("cut off mid-run"), "error: " + errors.getFirst());
            // Its announcements stop: after the peer timeout a run says so without waiting.
            TestCluster.await("shard 2's jgears to be dropped", () -> cluster.jgears.get(0).cluster().peer(lostId) == null);
            List<?> next = (List<?>) TestCluster.call(cluster.jgears.get(0).port(), "RG.PYEXECUTE", "GB('ShardsIDReader').run()");
            assertEquals(2, ((List<?>) next.get(0)).size());
            assertTrue(String.valueOf(((List<?>) next.get(1)).getFirst()).startsWith("no live jgears beside Redis node " + lostId),
                    "error: " + next.get(1));
        }
    }

    @Test
    void aNodeLostBeforeItsRepartitionDoesNotHoldUpTheOthers() throws Exception {
        try (TestCluster cluster = TestCluster.start(3)) {
            String lostId = cluster.jgears.get(2).cluster().myId();
            CompletableFuture<Object> run = runWhileShard2Sleeps(cluster, lostId, ".repartition(lambda r: r)");
            long start = System.nanoTime();
            cluster.jgears.get(2).close();
            List<?> reply = (List<?>) run.get();
            long seconds = java.util.concurrent.TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - start);
            assertTrue(seconds < 60, "the run took " + seconds + " s after the loss");
            // The records of shards 0 and 1 whose key shard 2 owns went there and are lost with it.
            List<String> expected = java.util.stream.Stream.of(cluster.jgears.get(0).cluster().myId(), cluster.jgears.get(1).cluster().myId())
                    .filter(id -> TestCluster.slot(id) < 2 * 16384 / 3).sorted().toList();
            assertEquals(expected, ((List<?>) reply.get(0)).stream().map(String::valueOf).sorted().toList());
            List<String> errors = ((List<?>) reply.get(1)).stream().map(String::valueOf).toList();
            // Shards 0 and 1 stop waiting for shard 2's records once its announcements stop; the coordinator's
            // wait for its part ends as before. (A shard that sent its records after the loss says so too.)
            assertTrue(errors.stream().allMatch(e -> e.contains(lostId)), "errors: " + errors);
            assertEquals(2, errors.stream().filter(e -> e.startsWith("the jgears of shard " + lostId)
                    && e.contains("went away mid-run: its records of the repartition are missing")).count(), "errors: " + errors);
            assertEquals(1, errors.stream().filter(e -> e.startsWith("the jgears of shard " + lostId)
                    && e.contains("cut off mid-run")).count(), "errors: " + errors);
        }
    }
}
