package io.jgears;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.InetSocketAddress;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code --announce HOST[:PORT]}: a cluster node behind NAT or in a container names the address its clients
 * and the other jgears nodes reach it at, in every cluster view, instead of the address it binds.
 */
class ClusterAnnounceTest {
    private static TestCluster cluster;

    @BeforeAll
    static void startCluster() throws Exception {
        // One master: the announced address need not be reachable, since no other node calls it.
        cluster = TestCluster.start(1, port -> "jgears-a.example:7777");
    }

    @AfterAll
    static void stopCluster() {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void clusterViewsNameTheAnnouncedAddress() throws Exception {
        int port = cluster.jgears.getFirst().port();
        List<?> slots = (List<?>) TestCluster.call(port, "CLUSTER", "SLOTS");
        List<?> node = (List<?>) ((List<?>) slots.getFirst()).get(2);
        assertEquals("jgears-a.example", node.get(0), "CLUSTER SLOTS: " + slots);
        assertEquals(7777L, node.get(1), "CLUSTER SLOTS: " + slots);
        String nodes = String.valueOf(TestCluster.call(port, "CLUSTER", "NODES"));
        assertTrue(nodes.contains("jgears-a.example:7777@"), nodes);
        assertTrue(!nodes.contains("127.0.0.1:" + port + "@"), nodes);
        List<?> info = (List<?>) TestCluster.call(port, "RG.INFOCLUSTER");
        List<?> shard = (List<?>) ((List<?>) info.get(4)).getFirst();
        assertEquals("jgears-a.example", shard.get(shard.indexOf("ip") + 1), "RG.INFOCLUSTER: " + info);
        assertEquals(7777L, shard.get(shard.indexOf("port") + 1), "RG.INFOCLUSTER: " + info);
    }

    @Test
    void announceValuesAreParsedOrRefused() {
        assertEquals(InetSocketAddress.createUnresolved("10.0.0.5", 6380), JGears.parseAnnounce("10.0.0.5", 6380));
        assertEquals(InetSocketAddress.createUnresolved("node-1", 7000), JGears.parseAnnounce("node-1:7000", 6380));
        assertEquals(InetSocketAddress.createUnresolved("::1", 6380), JGears.parseAnnounce("::1", 6380));
        assertEquals(InetSocketAddress.createUnresolved("fe80::1", 7001), JGears.parseAnnounce("[fe80::1]:7001", 6380));
        for (String bad : new String[]{"", ":7000", "host:0", "host:70000", "host:port", "[::1", "[::1]x", "a b"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> JGears.parseAnnounce(bad, 6380), bad);
            assertTrue(e.getMessage().startsWith("--announce: "), e.getMessage());
        }
        JGears.Options plain = JGears.Options.defaults();
        assertEquals(InetSocketAddress.createUnresolved("127.0.0.1", 6380), plain.announced("10.1.1.1"));
        JGears.Options any = new JGears.Options("0.0.0.0", 6390, null, plain.dataDir(), true, java.util.Map.of(), 1 << 20, 1 << 10);
        assertEquals(InetSocketAddress.createUnresolved("10.1.1.1", 6390), any.announced("10.1.1.1"), "binding 0.0.0.0: the Redis host");
        assertEquals(InetSocketAddress.createUnresolved("gw", 6390), any.announcedAs("gw").announced("10.1.1.1"));
    }
}
