package io.jgears.server;

import io.netty.handler.codec.redis.RedisMessage;

import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * A {@link LocalCommands} that hands everything to the next one: the base of the decorators that add a
 * few commands of their own in front of the RG.* family (SHUTDOWN, Redis' INFO/COMMAND views).
 */
public abstract class DelegatingLocalCommands implements LocalCommands {
    protected final LocalCommands next;

    protected DelegatingLocalCommands(LocalCommands next) {
        this.next = next;
    }

    @Override
    public boolean handles(String upperName) {
        return next.handles(upperName);
    }

    @Override
    public CompletableFuture<RedisMessage> execute(ClientInfo client, List<byte[]> args) {
        return next.execute(client, args);
    }

    /** RG.* commands in a transaction go on to the next one; a decorator's own commands run as usual. */
    @Override
    public CompletableFuture<RedisMessage> executeInTransaction(ClientInfo client, List<byte[]> args) {
        String name = new String(args.getFirst(), java.nio.charset.StandardCharsets.UTF_8).toUpperCase(java.util.Locale.ROOT);
        return next.handles(name) ? next.executeInTransaction(client, args) : execute(client, args);
    }

    @Override
    public boolean hooks(String upperName) {
        return next.hooks(upperName);
    }

    @Override
    public CompletableFuture<RedisMessage> hook(ClientInfo client, List<byte[]> args) {
        return next.hook(client, args);
    }

    @Override
    public CompletableFuture<Void> afterForwardedReply() {
        return next.afterForwardedReply();
    }

    @Override
    public void afterFlushAll() {
        next.afterFlushAll();
    }

    @Override
    public java.util.function.Supplier<CompletableFuture<RedisMessage>> watchKeys(ClientInfo client, List<byte[]> args) {
        return next.watchKeys(client, args);
    }

    @Override
    public CompletableFuture<RedisMessage> hookQueued(ClientInfo client, List<byte[]> args) {
        return next.hookQueued(client, args);
    }

    @Override
    public String redirectTarget(String redisAddress) {
        return next.redirectTarget(redisAddress);
    }
}
