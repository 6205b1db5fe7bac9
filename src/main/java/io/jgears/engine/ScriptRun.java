package io.jgears.engine;

import io.jgears.gears.ClusterRunIds;
import io.jgears.gears.Execution;

import java.util.ArrayList;
import java.util.List;

/** One RG.PYEXECUTE invocation while its script loads: the executions its run() calls started. */
public final class ScriptRun {
    private final boolean unblocking;
    private final boolean restoring;
    private final List<Execution> started = new ArrayList<>();
    private final String clusterRole;
    private final List<java.util.concurrent.CompletableFuture<Object>> shardReplies;
    private final String clusterRunId;
    private final ClusterRunIds clusterIds;
    /** How many cluster-wide ids the script took so far. */
    private int clusterIdsTaken;

    ScriptRun(boolean unblocking, boolean restoring) {
        this(unblocking, restoring, "none", List.of(), null, null);
    }

    public ScriptRun(boolean unblocking, boolean restoring, String clusterRole, List<java.util.concurrent.CompletableFuture<Object>> shardReplies,
              String clusterRunId, ClusterRunIds clusterIds) {
        this.clusterRunId = clusterRunId;
        this.clusterIds = clusterIds;
        this.unblocking = unblocking;
        this.restoring = restoring;
        this.clusterRole = clusterRole;
        this.shardReplies = shardReplies;
    }

    /** "none" on a single Redis (and for restored sessions), "coordinator" or "shard" on a cluster. */
    String clusterRole() {
        return restoring ? "none" : clusterRole;
    }

    /** On a cluster: the run's name on every shard (repartition batches are addressed by it), else null. */
    String clusterRunId() {
        return clusterRunId;
    }

    /**
     * The id of the next registration or execution the script creates: cluster-wide (the same on every
     * shard, see {@link ClusterRunIds}), or null for the next id of this shard. Restored sessions take the
     * ids they had (their stored block).
     */
    String nextClusterId() {
        return clusterIds == null ? null : clusterIds.id(++clusterIdsTaken);
    }

    /** On a cluster: this shard keeps its part of the run stored (the client ran it UNBLOCKING). */
    boolean keepsExecution() {
        return clusterIds != null && clusterIds.keepExecution() && !restoring;
    }

    /** A coordinator's run: the other shards' replies to the same script. */
    List<java.util.concurrent.CompletableFuture<Object>> shardReplies() {
        return shardReplies;
    }

    /** Re-run at start-up from the stored code: run() does nothing, register()/registerTE() take effect. */
    boolean restoring() {
        return restoring;
    }

    boolean unblocking() {
        return unblocking;
    }

    void started(Execution execution) {
        started.add(execution);
    }

    /**
     * Blocking runs of this script that finished while it loaded: released when it has loaded, or kept
     * (stored, as RedisGears keeps them) when the script also registered something.
     */
    public void holdFinished(Execution e) {
        heldFinished.add(e);
    }

    public List<Execution> heldFinished() {
        return heldFinished;
    }

    private final List<Execution> heldFinished = new ArrayList<>();

    public List<Execution> started() {
        return started;
    }
}
