package io.jgears.server;

import io.netty.handler.codec.redis.RedisMessage;

import java.util.List;
import java.util.concurrent.CompletableFuture;

/** The commands jgears answers itself (the {@code RG.*} family); everything else goes to Redis. */
public interface LocalCommands {
    /** True when jgears answers this command (upper-case name) instead of Redis. */
    boolean handles(String upperName);

    /**
     * Runs one command. The future may complete on any thread; the caller puts the reply back in the
     * client's order. Implementations must not block the calling (event loop) thread.
     */
    CompletableFuture<RedisMessage> execute(ClientInfo client, List<byte[]> args);
}
