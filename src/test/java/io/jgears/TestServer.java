package io.jgears;

import io.jgears.redis.EmbeddedRedis;
import io.jgears.redis.RedisBackend;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.codec.StringCodec;
import java.nio.charset.StandardCharsets;
import io.lettuce.core.protocol.ProtocolVersion;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * One real jgears for the whole test run: a real redis-server on a free port (embedded mode, temp
 * data dir) and jgears on another free port. Tests talk to it over sockets with Lettuce or raw RESP.
 */
public final class TestServer {
    private static JGears jgears;
    private static RedisClient client;
    private static RedisClient direct;

    private TestServer() {
    }

    public static synchronized JGears get() {
        if (jgears == null) {
            try {
                Path data = Files.createTempDirectory("jgears-test");
                int port = EmbeddedRedis.freePort();
                jgears = JGears.start(new JGears.Options("127.0.0.1", port, null, data, true,
                        Map.of("PoolSize", "3", "ExecutionThreads", "3"), 512 * 1024 * 1024, 1024 * 1024));
                Runtime.getRuntime().addShutdownHook(new Thread(TestServer::stop));
            } catch (IOException e) {
                throw new IllegalStateException(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
        return jgears;
    }

    private static synchronized void stop() {
        if (client != null) {
            client.shutdown(Duration.ZERO, Duration.ofSeconds(1));
        }
        if (direct != null) {
            direct.shutdown(Duration.ZERO, Duration.ofSeconds(1));
        }
        if (jgears != null) {
            jgears.close();
        }
    }

    public static int port() {
        return get().port();
    }

    private static synchronized RedisClient client(ProtocolVersion protocol) {
        if (client == null) {
            client = RedisClient.create(RedisURI.builder().withHost("127.0.0.1").withPort(port())
                    .withTimeout(Duration.ofSeconds(120)).build());
        }
        client.setOptions(ClientOptions.builder().protocolVersion(protocol).build());
        return client;
    }

    /** A Lettuce client connected to jgears (RESP2 unless asked otherwise). */
    public static synchronized StatefulRedisConnection<String, String> connect(ProtocolVersion protocol) {
        return client(protocol).connect(StringCodec.UTF8);
    }

    public static StatefulRedisConnection<String, String> connect() {
        return connect(ProtocolVersion.RESP2);
    }

    /** A binary Lettuce connection to jgears, for {@link #call}. */
    public static synchronized StatefulRedisConnection<byte[], byte[]> connectRaw() {
        return client(ProtocolVersion.RESP2).connect(ByteArrayCodec.INSTANCE);
    }

    /** A Lettuce client connected straight to the Redis behind jgears, bypassing it. */
    public static synchronized RedisCommands<String, String> redisDirect() {
        if (direct == null) {
            direct = RedisClient.create(get().redisUri());
        }
        return direct.connect(StringCodec.UTF8).sync();
    }

    /** As {@link #redisDirect()}, with byte[] keys and values (for values that are not UTF-8). */
    public static synchronized RedisCommands<byte[], byte[]> redisDirectBytes() {
        redisDirect();
        return direct.connect(ByteArrayCodec.INSTANCE).sync();
    }

    /** Sends any command through jgears and decodes the reply into Java values (errors throw). */
    public static Object call(StatefulRedisConnection<byte[], byte[]> c, String... args) {
        return RedisBackend.dispatch(c, java.util.Arrays.stream(args).map(a -> a.getBytes(StandardCharsets.UTF_8)).toList());
    }
}
