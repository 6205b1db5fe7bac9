package io.jgears.gears;

/**
 * On a Redis Cluster: the ids one RG.PYEXECUTE gives what its script creates, the same on every shard, as
 * RedisGears names a distributed registration or execution by the shard that started it. Every shard runs
 * the script, so the k-th registration (or the run()) of the script gets {@code prefix-(base+k)} wherever it
 * runs: RG.UNREGISTER, RG.GETEXECUTION, RG.DROPEXECUTION and RG.ABORTEXECUTION name it on any shard.
 *
 * @param prefix        the coordinating shard's id (its Redis node id)
 * @param base          the number before the block the coordinator set aside in its id sequence
 * @param sessionId     the session's id on every shard (the client's ID, or one the coordinator chose)
 * @param keepExecution the client ran it UNBLOCKING: each shard keeps its part of the run (as the
 *                      coordinator keeps the whole) until RG.DROPEXECUTION, for RG.GETEXECUTION CLUSTER
 */
public record ClusterRunIds(String prefix, long base, String sessionId, boolean keepExecution) {
    /**
     * Registrations and executions one script creates with cluster-wide ids; any beyond get ids of their
     * own shard (RG.UNREGISTER then finds them on that shard only). The block is a gap in the
     * coordinator's sequence: RedisGears' ids are not consecutive on a cluster either.
     */
    public static final int BLOCK = 100;

    /** The {@code ordinal}-th id (1-based) of the block, or null past its end. */
    // Public: io.jgears.engine.ScriptRun hands these ids out.
    public String id(int ordinal) {
        return ordinal < 1 || ordinal > BLOCK ? null : prefix + "-" + (base + ordinal);
    }

    /** How a stored session keeps its block: "prefix base". */
    String text() {
        return prefix + " " + base;
    }

    /** A stored session's block ({@link #text()}), or null for none or a damaged one. */
    static ClusterRunIds parse(String text, String sessionId) {
        if (text == null) {
            return null;
        }
        int space = text.indexOf(' ');
        try {
            return space < 1 ? null : new ClusterRunIds(text.substring(0, space), Long.parseLong(text.substring(space + 1)), sessionId, false);
        } catch (NumberFormatException e) {
            return null;
        }
    }
}
