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

    /** A command queued inside MULTI, run when EXEC succeeds (where blocking is not allowed). */
    default CompletableFuture<RedisMessage> executeInTransaction(ClientInfo client, List<byte[]> args) {
        return execute(client, args);
    }

    /** Whether a command hook may intercept this forwarded command (cheap: called for every command). */
    default boolean hooks(String upperName) {
        return false;
    }

    /** Runs the hook for this command, or null when none applies (the command is forwarded). */
    default CompletableFuture<RedisMessage> hook(ClientInfo client, List<byte[]> args) {
        return null;
    }

    /**
     * For a forwarded command a KeysReader registration hooks (commands=[...]): what to run once Redis has
     * answered it, completing with a reply that replaces Redis' one, or null to keep it. Null when not hooked.
     */
    default java.util.function.Supplier<CompletableFuture<RedisMessage>> watchKeys(ClientInfo client, List<byte[]> args) {
        return null;
    }

    /** A hooked command that was queued in a MULTI, run once its EXEC has run: its reply. */
    default CompletableFuture<RedisMessage> hookQueued(ClientInfo client, List<byte[]> args) {
        return CompletableFuture.completedFuture(null);
    }

    /**
     * Called when Redis' reply to a forwarded command arrives: a future to complete before the reply is
     * released to the client (sync registrations), or null.
     */
    default CompletableFuture<Void> afterForwardedReply() {
        return null;
    }

    /** Called when Redis accepted a forwarded FLUSHALL (which also empties jgears' state database). */
    default void afterFlushAll() {
    }

    /**
     * A MOVED or ASK redirect from Redis names {@code redisAddress} ("ip:port"): the address clients should
     * be sent to instead (the jgears beside that Redis node on a cluster), or null to keep Redis' one.
     */
    default String redirectTarget(String redisAddress) {
        return null;
    }
}
