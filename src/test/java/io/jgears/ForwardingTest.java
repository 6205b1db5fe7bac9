package io.jgears;

import io.lettuce.core.KeyValue;
import io.lettuce.core.TransactionResult;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import io.lettuce.core.protocol.ProtocolVersion;
import io.lettuce.core.pubsub.RedisPubSubAdapter;
import io.lettuce.core.pubsub.StatefulRedisPubSubConnection;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every non-RG command goes to Redis over the client's own upstream connection, with Redis' own reply. */
class ForwardingTest {

    @Test
    void getSetAndRedisErrorsAsRedisGivesThem() {
        try (StatefulRedisConnection<String, String> c = TestServer.connect()) {
            RedisCommands<String, String> r = c.sync();
            assertEquals("OK", r.set("fw:a", "1"));
            assertEquals("1", r.get("fw:a"));
            assertEquals("1", TestServer.redisDirect().get("fw:a"), "the write reached the real Redis");
            Exception e = assertThrows(Exception.class, () -> r.lpush("fw:a", "x"));
            assertTrue(e.getMessage().startsWith("WRONGTYPE"), e.getMessage());
            assertEquals(2L, r.incr("fw:a"));
            assertEquals(List.of("fw:a"), r.keys("fw:a"));
        }
    }

    @Test
    void multiExecAndWatchKeepConnectionState() {
        try (StatefulRedisConnection<String, String> c = TestServer.connect()) {
            RedisCommands<String, String> r = c.sync();
            r.multi();
            r.set("fw:tx", "1");
            r.incr("fw:tx");
            TransactionResult result = r.exec();
            assertEquals(List.of("OK", 2L), result.stream().toList());

            r.watch("fw:tx");
            TestServer.redisDirect().set("fw:tx", "changed");
            r.multi();
            r.set("fw:tx", "mine");
            assertTrue(r.exec().wasDiscarded(), "WATCH saw the concurrent write");
            assertEquals("changed", r.get("fw:tx"));
        }
    }

    @Test
    void selectIsPerConnection() {
        try (StatefulRedisConnection<String, String> a = TestServer.connect();
             StatefulRedisConnection<String, String> b = TestServer.connect()) {
            a.sync().select(3);
            a.sync().set("fw:db", "three");
            assertEquals("three", a.sync().get("fw:db"));
            assertEquals(null, b.sync().get("fw:db"), "the other connection is still on db 0");
        }
    }

    @Test
    void pipelinedCommandsKeepTheirOrderAcrossRgAndRedis() throws Exception {
        try (RawResp raw = new RawResp(TestServer.port())) {
            raw.send(concat(
                    RawResp.command("SET", "fw:p", "1"),
                    RawResp.command("RG.PYEXECUTE", "import time\ntime.sleep(0.3)\nGB('ShardsIDReader').map(lambda x: 'slow').run()"),
                    RawResp.command("INCR", "fw:p"),
                    RawResp.command("RG.CONFIGGET", "MaxExecutions"),
                    RawResp.command("GET", "fw:p")));
            assertEquals("OK", raw.read());
            assertEquals(List.of(List.of("slow"), List.of()), raw.read());
            assertEquals(2L, raw.read());
            assertEquals(List.of(1000L), raw.read());
            assertEquals("2", raw.read());
        }
    }

    @Test
    void blockingCommandBlocksOnlyItsClient() throws Exception {
        try (StatefulRedisConnection<String, String> blocked = TestServer.connect();
             StatefulRedisConnection<String, String> other = TestServer.connect()) {
            CompletableFuture<KeyValue<String, String>> pop = blocked.async().blpop(10, "fw:queue").toCompletableFuture();
            Thread.sleep(200);
            assertFalse(pop.isDone());
            assertEquals("PONG", other.sync().ping());
            other.sync().rpush("fw:queue", "item");
            assertEquals("item", pop.get(120, TimeUnit.SECONDS).getValue());
        }
    }

    @Test
    void pubSubPassesMessagesThrough() throws Exception {
        io.lettuce.core.RedisClient client = io.lettuce.core.RedisClient.create("redis://127.0.0.1:" + TestServer.port());
        try (StatefulRedisPubSubConnection<String, String> sub = client.connectPubSub();
             StatefulRedisConnection<String, String> pub = TestServer.connect()) {
            LinkedBlockingQueue<String> got = new LinkedBlockingQueue<>();
            sub.addListener(new RedisPubSubAdapter<>() {
                @Override
                public void message(String channel, String message) {
                    got.add(channel + ":" + message);
                }
            });
            sub.sync().subscribe("fw:ch1", "fw:ch2");
            pub.sync().publish("fw:ch1", "hello");
            pub.sync().publish("fw:ch2", "world");
            assertEquals("fw:ch1:hello", got.poll(10, TimeUnit.SECONDS));
            assertEquals("fw:ch2:world", got.poll(10, TimeUnit.SECONDS));
            sub.sync().unsubscribe("fw:ch1", "fw:ch2");
            // Back to request/reply: an ordinary command and an RG command answer in order.
            assertEquals("PONG", sub.sync().ping());
        } finally {
            client.shutdown();
        }
    }

    @Test
    void resp3ClientsWork() {
        try (StatefulRedisConnection<String, String> c = TestServer.connect(ProtocolVersion.RESP3)) {
            c.sync().hset("fw:h3", "f", "v");
            assertEquals(java.util.Map.of("f", "v"), c.sync().hgetall("fw:h3"));
            assertNotNull(c.sync().info("server"));
        }
    }

    @Test
    void quitClosesAfterItsReply() throws Exception {
        try (RawResp raw = new RawResp(TestServer.port())) {
            raw.send(concat(RawResp.command("SET", "fw:q", "1"), RawResp.command("QUIT")));
            assertEquals("OK", raw.read());
            assertEquals("OK", raw.read());
            assertTrue(raw.closedByServer());
        }
    }

    @Test
    void inlineCommandsWork() throws Exception {
        try (RawResp raw = new RawResp(TestServer.port())) {
            raw.send("PING\r\n".getBytes());
            assertEquals("PONG", raw.read());
            raw.send("RG.CONFIGGET ExecutionThreads\r\n".getBytes());
            assertEquals(List.of(3L), raw.read());
        }
    }

    static byte[] concat(byte[]... parts) {
        java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
        for (byte[] p : parts) {
            b.writeBytes(p);
        }
        return b.toByteArray();
    }
}
