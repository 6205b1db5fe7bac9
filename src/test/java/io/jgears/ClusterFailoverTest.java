package io.jgears;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A failover on a real cluster (3 masters, a replica for shard 0, a jgears beside every node): the replica's
 * jgears holds its master's registrations dormant (nothing runs while its Redis is a replica, scripts sent to
 * it are refused), and when the master's Redis and jgears die mid-backlog and the replica is promoted, the
 * stream registration resumes from the replicated consumer group: every entry written before the failover
 * (and acknowledged by WAIT to the replica) is processed at least once. Key-event registrations lose the
 * events whose handlers had not run on the old master: the test counts them (printed, not asserted).
 */
class ClusterFailoverTest {
    private static final int ENTRIES = 240;
    private static final int KEY_WRITES = 200;
    /** Not a multiple of the batch size (5): the held batch has entries marked and entries not. */
    private static final int HOLD_AT = 58;

    @Test
    void aStreamBacklogSurvivesTheFailoverOfItsMaster() throws Exception {
        try (TestCluster cluster = TestCluster.start(3, 1, 1)) {
            JGears masterJgears = cluster.jgears.getFirst();
            JGears replicaJgears = cluster.replicaJgears.getFirst();
            TestCluster.RedisNode masterRedis = cluster.redis.getFirst();
            TestCluster.RedisNode replicaRedis = cluster.replicas.getFirst();
            // Every key of the test is on shard 0 (one hash tag): the handlers' marks replicate in the same
            // stream as the entries and the acknowledgements.
            String tag = "{" + cluster.keyOn(0, "fo") + "}";
            String stream = tag + ":stream";
            String marks = tag + ":marks";
            String keyMarks = tag + ":keymarks";
            String hold = tag + ":hold";
            // Past HOLD_AT marked entries the stream handler waits while the hold key exists: when the master
            // dies a batch is surely in flight (delivered, partly marked, not acknowledged), and the backlog
            // cannot be done before the crash however slow or fast the machine is.
            String streamScript = "import time\n"
                    + "def mark(r):\n"
                    + "    execute('HINCRBY', '" + marks + "', r['id'], 1)\n"
                    + "    time.sleep(0.02)\n"
                    + "    while int(execute('HLEN', '" + marks + "')) >= " + HOLD_AT + " and execute('EXISTS', '" + hold + "') == 1:\n"
                    + "        time.sleep(0.05)\n"
                    + "GB('StreamReader').foreach(mark).register(prefix='" + stream + "', batch=5, duration=200)\n";
            // A session of its own: a held stream execution holds its session's context.
            String keyScript = "import time\n"
                    + "def key_mark(r):\n"
                    + "    execute('HINCRBY', '" + keyMarks + "', r['key'], 1)\n"
                    + "    time.sleep(0.04)\n"
                    + "GB().foreach(key_mark).register(prefix='" + tag + ":k:*', eventTypes=['set'])\n";
            try {
                assertEquals("OK", TestCluster.call(masterJgears.port(), "RG.PYEXECUTE", streamScript, "ID", "failover-stream"));
                assertEquals("OK", TestCluster.call(masterJgears.port(), "RG.PYEXECUTE", keyScript, "ID", "failover-keys"));

                // The replica's jgears copies the session (same id) and holds both registrations.
                progress("sessions registered on the master");
                TestCluster.await("the replica's jgears to copy the registrations", () -> registrations(replicaJgears.port()).size() == 2);
                // Upgrades and unregistrations on the master reach the copy too.
                assertEquals("OK", TestCluster.call(masterJgears.port(), "RG.PYEXECUTE",
                        "GB('KeysReader', desc='v1').foreach(lambda r: None).register(prefix='extra:*')", "ID", "extra"));
                TestCluster.await("the replica's jgears to copy the second session", () -> descriptions(replicaJgears.port()).contains("v1"));
                assertEquals("OK", TestCluster.call(masterJgears.port(), "RG.PYEXECUTE",
                        "GB('KeysReader', desc='v2').foreach(lambda r: None).register(prefix='extra:*')", "ID", "extra", "UPGRADE"));
                TestCluster.await("the replica's jgears to upgrade its copy", () -> {
                    List<String> d = descriptions(replicaJgears.port());
                    return d.contains("v2") && !d.contains("v1");
                });
                String extraId = registrationIdWithDescription(masterJgears.port(), "v2");
                assertEquals("OK", TestCluster.call(masterJgears.port(), "RG.UNREGISTER", extraId));
                TestCluster.await("the replica's jgears to drop its copy", () -> registrations(replicaJgears.port()).size() == 2);

                Object refused = TestCluster.call(replicaJgears.port(), "RG.PYEXECUTE", "GB().run()");
                assertTrue(String.valueOf(refused).startsWith("-READONLY this jgears is beside a replica")
                        && String.valueOf(refused).contains("at 127.0.0.1:" + masterJgears.port()), "reply: " + refused);

                // The backlog, acknowledged by the replica (WAIT) before the failover.
                List<String> ids = new ArrayList<>();
                TestCluster.call(masterRedis.port(), "SET", hold, "1");
                try (RawResp c = new RawResp(masterRedis.port())) {
                    for (int i = 0; i < ENTRIES; i++) {
                        c.send("XADD", stream, "*", "n", String.valueOf(i));
                    }
                    for (int i = 0; i < ENTRIES; i++) {
                        ids.add(String.valueOf(c.read()));
                    }
                    assertTrue((Long) c.send("WAIT", "1", "10000").read() >= 1, "the replica did not acknowledge the backlog");
                }

                progress("backlog written");
                // Mid-backlog: the handler holds at entry HOLD_AT, its batch in flight.
                TestCluster.await("the master to work through part of the backlog", () -> hlen(masterRedis.port(), marks) >= HOLD_AT);
                // Key writes just before the crash, acknowledged by the replica too: their events reach the old
                // master's jgears, whose handlers (slow) have not all run when it dies.
                try (RawResp c = new RawResp(masterRedis.port())) {
                    for (int i = 0; i < KEY_WRITES; i++) {
                        c.send("SET", tag + ":k:" + i, "v");
                    }
                    for (int i = 0; i < KEY_WRITES; i++) {
                        assertEquals("OK", c.read());
                    }
                    assertTrue((Long) c.send("WAIT", "1", "10000").read() >= 1, "the replica did not acknowledge the key writes");
                }
                TestCluster.await("the master to handle some of the key events", () -> hlen(masterRedis.port(), keyMarks) >= KEY_WRITES / 10);
                long beforeKill = hlen(masterRedis.port(), marks);
                long keyMarksBeforeKill = hlen(masterRedis.port(), keyMarks);
                assertTrue(beforeKill < ENTRIES, "the backlog was done before the failover: " + beforeKill);
                // The dormant copies ran nothing while the master worked (the master's did).
                assertTrue(triggered(masterJgears.port(), "StreamReader") > 0);
                assertTrue(triggered(masterJgears.port(), "KeysReader") > 0);
                assertEquals(0, triggered(replicaJgears.port(), "StreamReader"), "a replica's stream registration ran");
                assertEquals(0, triggered(replicaJgears.port(), "KeysReader"), "a replica's key registration ran");

                // The master's Redis and its jgears die.
                progress("killing the master");
                long killedAt = System.nanoTime();
                TestCluster.kill(masterRedis);
                CompletableFuture.runAsync(masterJgears::close);

                TestCluster.await("the replica to be promoted", () -> {
                    try {
                        return String.valueOf(TestCluster.call(replicaRedis.port(), "ROLE")).startsWith("[master");
                    } catch (IOException e) {
                        return false;
                    }
                });
                long promotedMillis = (System.nanoTime() - killedAt) / 1_000_000;
                progress("promoted");
                TestCluster.call(replicaRedis.port(), "DEL", hold);
                TestCluster.await("every entry's mark on the new master", () -> hlen(replicaRedis.port(), marks) >= ENTRIES);
                long doneMillis = (System.nanoTime() - killedAt) / 1_000_000;

                Map<String, Long> counts = hash(replicaRedis.port(), marks);
                List<String> missing = ids.stream().filter(id -> !counts.containsKey(id)).toList();
                assertEquals(List.of(), missing, "entries never processed");
                long duplicates = counts.values().stream().filter(n -> n > 1).count();
                // The held batch's entries marked on the old master ran again: its pending entries were read.
                assertTrue(duplicates >= 1, "no entry of the batch in flight at the crash ran again");
                assertTrue(triggered(replicaJgears.port(), "StreamReader") > 0, "the promoted node's registration did not run");

                // The key registration is awake on the promoted node: a new write fires it.
                TestCluster.call(replicaRedis.port(), "SET", tag + ":k:after", "v");
                TestCluster.await("the promoted node's key registration to fire", () -> {
                    try {
                        return TestCluster.call(replicaRedis.port(), "HGET", keyMarks, tag + ":k:after") != null;
                    } catch (IOException e) {
                        return false;
                    }
                });
                long keyEventsRun = hash(replicaRedis.port(), keyMarks).keySet().stream().filter(k -> !k.endsWith(":k:after")).count();
                System.out.printf("failover: %d entries, %d marked before the kill, promoted after %d ms, all marked %d ms after the kill,"
                                + " %d entries processed twice; key events: %d writes just before the kill, %d handled on the old"
                                + " master by the kill, %d of them on the new master (%d lost)%n", ENTRIES, beforeKill, promotedMillis,
                        doneMillis, duplicates, KEY_WRITES, keyMarksBeforeKill, keyEventsRun, KEY_WRITES - keyEventsRun);
                assertTrue(keyEventsRun <= KEY_WRITES);
                // A new entry on the promoted node is read too.
                String late = String.valueOf(TestCluster.call(replicaRedis.port(), "XADD", stream, "*", "n", "late"));
                TestCluster.await("the entry added after the failover", () -> {
                    try {
                        return TestCluster.call(replicaRedis.port(), "HGET", marks, late) != null;
                    } catch (IOException e) {
                        return false;
                    }
                });

                // The old master comes back: a replica of the promoted node now. A jgears started beside it copies
                // the session from the promoted node's jgears and runs nothing.
                progress("restarting the old master");
                TestCluster.RedisNode back = cluster.restart(masterRedis);
                TestCluster.await("the old master to come back as a replica in sync", () -> {
                    try {
                        return String.valueOf(TestCluster.call(back.port(), "INFO", "replication")).contains("master_link_status:up");
                    } catch (IOException e) {
                        return false;
                    }
                });
                JGears backJgears = cluster.startJgearsBeside(back);
                TestCluster.await("the returning node's jgears to copy the registrations", () -> registrations(backJgears.port()).size() == 2);
                Object refusedBack = TestCluster.call(backJgears.port(), "RG.PYEXECUTE", "GB().run()");
                assertTrue(String.valueOf(refusedBack).contains("at 127.0.0.1:" + replicaJgears.port()), "reply: " + refusedBack);
                TestCluster.call(replicaRedis.port(), "SET", tag + ":k:back", "v");
                TestCluster.call(replicaRedis.port(), "XADD", stream, "*", "n", "back");
                TestCluster.await("the new master's key registration to mark the write", () -> {
                    try {
                        return TestCluster.call(back.port(), "HGET", keyMarks, tag + ":k:back") != null;  // replicated to the returning node
                    } catch (IOException e) {
                        return false;
                    }
                });
                assertEquals(0, triggered(backJgears.port(), "StreamReader"), "the demoted node's stream registration ran");
                assertEquals(0, triggered(backJgears.port(), "KeysReader"), "the demoted node's key registration ran");
            } finally {
                // A held handler would keep its session's context (and the cluster's closing) waiting.
                for (TestCluster.RedisNode n : cluster.allRedis()) {
                    try {
                        TestCluster.call(n.port(), "DEL", hold);
                    } catch (IOException e) {
                        // dead, or a replica (READONLY/MOVED replies are not exceptions)
                    }
                }
            }
        }
    }

    private static final long START = System.nanoTime();

    /** Where the test is, for a failure's log (the awaits are long). */
    private static void progress(String what) {
        System.out.printf("ClusterFailoverTest +%d ms: %s%n", (System.nanoTime() - START) / 1_000_000, what);
    }

    /** RG.DUMPREGISTRATIONS of a jgears. */
    private static List<?> registrations(int port) {
        try {
            return (List<?>) TestCluster.call(port, "RG.DUMPREGISTRATIONS");
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** The descriptions of a jgears' registrations. */
    private static List<String> descriptions(int port) {
        return registrations(port).stream().map(o -> (List<?>) o).map(r -> String.valueOf(r.get(r.indexOf("desc") + 1))).toList();
    }

    private static String registrationIdWithDescription(int port, String description) {
        return registrations(port).stream().map(o -> (List<?>) o).filter(r -> description.equals(String.valueOf(r.get(r.indexOf("desc") + 1))))
                .map(r -> String.valueOf(r.get(r.indexOf("id") + 1))).findFirst().orElseThrow();
    }

    /** numTriggered of the registration of that reader on a jgears. */
    private static long triggered(int port, String reader) {
        for (Object o : registrations(port)) {
            List<?> r = (List<?>) o;
            if (reader.equals(r.get(r.indexOf("reader") + 1))) {
                List<?> data = (List<?>) r.get(r.indexOf("RegistrationData") + 1);
                return (Long) data.get(data.indexOf("numTriggered") + 1);
            }
        }
        throw new AssertionError("no " + reader + " registration on " + port);
    }

    private static long hlen(int port, String key) {
        try {
            return (Long) TestCluster.call(port, "HLEN", key);
        } catch (IOException e) {
            return -1;
        }
    }

    private static Map<String, Long> hash(int port, String key) throws IOException {
        List<?> flat = (List<?>) TestCluster.call(port, "HGETALL", key);
        Map<String, Long> out = new HashMap<>();
        for (int i = 0; i + 1 < flat.size(); i += 2) {
            out.put(String.valueOf(flat.get(i)), Long.parseLong(String.valueOf(flat.get(i + 1))));
        }
        return out;
    }
}
