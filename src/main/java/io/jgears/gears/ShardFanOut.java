package io.jgears.gears;

import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * On a Redis Cluster: sends an RG.PYEXECUTE to the jgears of every other shard, where the script runs as
 * that shard's part of the run (see the cluster section of gears_runtime.py). Implemented by the cluster
 * package; null on a single Redis.
 */
public interface ShardFanOut {
    /** The command that runs a script as one shard's part; only jgears nodes send it. */
    String SHARD_EXECUTE = "RG.JGEARSSHARDEXECUTE";

    /**
     * Sends {@code SHARD_EXECUTE args...} to every other shard's jgears. One entry per shard: its reply
     * (as RedisBackend.dispatch gives replies), or a future failed with a message naming the shard.
     */
    List<CompletableFuture<Object>> sendToOtherShards(List<byte[]> args);
}
