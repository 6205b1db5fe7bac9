package io.jgears.gears;

import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * On a Redis Cluster: sends an RG.PYEXECUTE to the jgears of every other shard, where the script runs as
 * that shard's part of the run (see the cluster section of gears_runtime.py), and moves records between
 * the shards at a repartition. Implemented by the cluster package; null on a single Redis.
 */
public interface ShardFanOut {
    /** The command that runs a script as one shard's part; only jgears nodes send it. */
    String SHARD_EXECUTE = "RG.JGEARSSHARDEXECUTE";
    /**
     * The command that hands one shard's records of a repartition to another:
     * {@code RG.JGEARSSHARDRECORDS runId phase fromNodeId RECORDS record...} (pickled records; a long batch
     * comes as MORE commands, then RECORDS), or
     * {@code ... fromPhase fromNodeId ABANDON message} (the sender sends no phase from fromPhase on).
     * Only jgears nodes send it.
     */
    String SHARD_RECORDS = "RG.JGEARSSHARDRECORDS";

    /**
     * {@code RG.JGEARSSHARDLOCAL command args...}: the RG.* command acts on this shard only. A command that
     * acts on every shard (RG.UNREGISTER, RG.DROPEXECUTION, RG.GETEXECUTION id CLUSTER, ...) reaches the
     * other shards so. Only jgears nodes send it.
     */
    String SHARD_LOCAL = "RG.JGEARSSHARDLOCAL";

    /**
     * {@code RG.JGEARSSHARDFORWARD registrationId step fromNodeId record...}: records of another shard's
     * execution of a registration in mode 'async', sent to the shard owning their keys at a repartition
     * (step: its index in the registration's steps); this shard runs the steps after it on them. Only
     * jgears nodes send it.
     */
    String SHARD_FORWARD = "RG.JGEARSSHARDFORWARD";

    /**
     * Sends each shard its records ({@code byShard}: Redis node id to pickled records) of registration
     * {@code registrationId} at step {@code step} (SHARD_FORWARD) and waits (bounded) for each to take them;
     * returns the errors, one per shard that did not.
     */
    List<String> forward(String registrationId, int step, java.util.Map<String, List<String>> byShard);

    /**
     * Sends {@code SHARD_EXECUTE args...} to every other shard's jgears. One entry per shard: its reply
     * (as RedisBackend.dispatch gives replies), or a future failed with a message naming the shard.
     */
    List<CompletableFuture<Object>> sendToOtherShards(List<byte[]> args);

    /**
     * Sends {@code SHARD_LOCAL command...} to every other shard's jgears, on links of their own (never
     * queued behind a shard's part of a run). One entry per shard, as {@link #sendToOtherShards}.
     */
    List<CompletableFuture<Object>> commandOtherShards(List<byte[]> command);

    /** Whether this node's shard (its master and replicas) serves {@code key}'s hash slot. */
    boolean servesKey(String key);

    /** Whether this node is in the shard (master or replica) of Redis node {@code nodeId}. */
    boolean inShardOf(String nodeId);

    /** The Redis node id of the master owning each key's hash slot ("" where no shard serves it). */
    String[] owners(List<String> keys);

    /** What one shard gets out of a repartition: the records sent to it (pickled) and the errors met. */
    record Exchanged(List<String> records, List<String> errors) {
    }

    /**
     * Phase {@code phase} of the repartitions of cluster run {@code runId}: sends {@code payloads.get(i)} to
     * the shard {@code dests.get(i)} (every other shard gets a batch, maybe empty) and waits (bounded) for
     * every other shard's batch for this shard.
     */
    Exchanged exchange(String runId, int phase, List<String> dests, List<String> payloads);

    /** Records from {@code from}: SHARD_RECORDS ... RECORDS ends its batch ({@code last}), MORE commands may come before. */
    void received(String runId, int phase, String from, List<String> payloads, boolean last);

    /** {@code from} sends no batch of {@code runId} from phase {@code fromPhase} on (SHARD_RECORDS ... ABANDON). */
    void abandoned(String runId, int fromPhase, String from, String message);

    /** This shard takes no part in {@code runId} any more (its script failed, or it ran nothing): tells the others. */
    void abandon(String runId, String message);

    /** This shard's execution of {@code runId} ended after its repartitions: the others are told of any it did not reach. */
    void runEnded(String runId, int phases, String message);
}
