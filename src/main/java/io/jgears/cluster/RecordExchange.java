package io.jgears.cluster;

import io.jgears.gears.ShardFanOut;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.BiFunction;

/**
 * The repartitions of distributed runs: every shard sends each other shard the records whose keys that
 * shard owns (one batch per shard and phase, maybe empty, over the jgears-to-jgears links), and waits for
 * the batch of every other shard. Batches may arrive before this shard's execution reaches the phase: they
 * wait in the run's inbox. A shard that will not send (its script failed, its execution ended before the
 * repartition) says so (ABANDON), so nobody waits for it; a shard whose jgears goes away is noticed by its
 * announcements stopping; in any case nobody waits longer than {@link #WAIT_SECONDS}.
 */
final class RecordExchange {
    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(RecordExchange.class);
    static final long WAIT_SECONDS = 120;
    /** Inboxes are dropped this long after they were made (late batches of finished runs, abandoned runs). */
    private static final long KEEP_MS = 10 * 60_000;
    /** Records per RG.JGEARSSHARDRECORDS command. */
    static final int CHUNK = 4096;

    private final ClusterNodes nodes;
    private final BiFunction<ClusterNodes.Peer, List<byte[]>, CompletableFuture<Object>> send;
    private final Map<String, Inbox> inboxes = new ConcurrentHashMap<>();

    private static final class Inbox {
        final long created = System.currentTimeMillis();
        /** By "phase from": the records a shard sent here. */
        final Map<String, List<String>> batches = new HashMap<>();
        /** By shard: the first phase it does not send, and why. */
        final Map<String, Integer> abandonedFrom = new HashMap<>();
        final Map<String, String> abandonMessages = new HashMap<>();
        /** The "phase from" keys whose batch has come whole (its last command, RECORDS). */
        final Set<String> complete = new java.util.HashSet<>();
        /** Phases this shard has sent its batches of. */
        int sentPhases;
        /** This shard's execution of the run has ended: later batches are dropped. */
        boolean closed;
    }

    RecordExchange(ClusterNodes nodes, BiFunction<ClusterNodes.Peer, List<byte[]>, CompletableFuture<Object>> send) {
        this.nodes = nodes;
        this.send = send;
    }

    private volatile long lastSweep;

    private Inbox inbox(String runId) {
        long now = System.currentTimeMillis();
        if (now - lastSweep > 1000) {
            lastSweep = now;
            inboxes.values().removeIf(i -> now - i.created > KEEP_MS);
        }
        return inboxes.computeIfAbsent(runId, k -> new Inbox());
    }

    ShardFanOut.Exchanged exchange(String runId, int phase, List<String> dests, List<String> payloads) {
        List<String> errors = new ArrayList<>();
        String me = nodes.myId();
        // The other shards' masters and their jgears (null: none alive).
        Map<String, ClusterNodes.Peer> others = new LinkedHashMap<>();
        for (ClusterTopology.Shard s : nodes.topology().servingShards()) {
            ClusterTopology.Node m = s.master();
            if (m == null) {
                errors.add("the shard of slots " + s.minSlot() + "-" + s.maxSlot()
                        + " has no master now (a failover?): its records of the repartition are missing");
                continue;
            }
            if (m.id().equals(me)) {
                continue;
            }
            ClusterNodes.Peer p = nodes.peer(m.id());
            if (p == null) {
                errors.add("no live jgears beside Redis node " + m.id() + " (" + m.address()
                        + "): its records of the repartition are missing");
            }
            others.put(m.id(), p);
        }
        Map<String, List<byte[]>> out = new LinkedHashMap<>();
        for (Map.Entry<String, ClusterNodes.Peer> e : others.entrySet()) {
            if (e.getValue() != null) {
                out.put(e.getKey(), new ArrayList<>());
            }
        }
        Map<String, Integer> lost = new LinkedHashMap<>();
        for (int i = 0; i < dests.size(); i++) {
            List<byte[]> records = out.get(dests.get(i));
            if (records == null) {
                lost.merge(dests.get(i), 1, Integer::sum);
            } else {
                records.add(payloads.get(i).getBytes(StandardCharsets.UTF_8));
            }
        }
        lost.forEach((shard, n) -> errors.add(n + " record(s) of the repartition could not be sent to shard " + shard
                + " (no live jgears there): they are lost"));
        Inbox inbox = inbox(runId);
        synchronized (inbox) {
            inbox.sentPhases = Math.max(inbox.sentPhases, phase + 1);
        }
        // In commands of at most CHUNK records (a client's command has an argument limit): MORE, then RECORDS last.
        Map<String, CompletableFuture<Object>> sends = new LinkedHashMap<>();
        out.forEach((shard, records) -> {
            CompletableFuture<Object> all = CompletableFuture.completedFuture(null);
            for (int from = 0; ; from += CHUNK) {
                int to = Math.min(records.size(), from + CHUNK);
                boolean last = to == records.size();
                List<byte[]> args = new ArrayList<>(to - from + 5);
                for (String a : List.of(ShardFanOut.SHARD_RECORDS, runId, String.valueOf(phase), me, last ? "RECORDS" : "MORE")) {
                    args.add(a.getBytes(StandardCharsets.UTF_8));
                }
                args.addAll(records.subList(from, to));
                CompletableFuture<Object> sent = send.apply(others.get(shard), args);
                all = all.thenCombine(sent, (a, b) -> b);
                if (last) {
                    break;
                }
            }
            sends.put(shard, all);
        });
        out = null;

        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
        log.debug("run {} repartition {}: sent to {}, waiting for their records", runId, phase, sends.keySet());
        List<String> received = new ArrayList<>();
        Set<String> pending = new LinkedHashSet<>(sends.keySet());
        synchronized (inbox) {
            while (!pending.isEmpty()) {
                for (Iterator<String> it = pending.iterator(); it.hasNext(); ) {
                    String from = it.next();
                    String key = phase + " " + from;
                    if (inbox.complete.remove(key)) {
                        List<String> batch = inbox.batches.remove(key);
                        if (batch != null) {
                            received.addAll(batch);
                        }
                        it.remove();
                        continue;
                    }
                    Integer abandoned = inbox.abandonedFrom.get(from);
                    if (abandoned != null && abandoned <= phase) {
                        errors.add("shard " + from + " sent no records to the repartition: " + inbox.abandonMessages.get(from));
                        it.remove();
                        continue;
                    }
                    ClusterNodes.Peer then = others.get(from);
                    ClusterNodes.Peer now = nodes.peer(from);
                    if (now == null || !now.runId().equals(then.runId())) {
                        errors.add("the jgears of shard " + from + " (" + then.address()
                                + ") went away mid-run: its records of the repartition are missing");
                        it.remove();
                    }
                }
                if (pending.isEmpty()) {
                    break;
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    for (String from : pending) {
                        errors.add("shard " + from + " did not send its records of the repartition within " + WAIT_SECONDS + " s");
                    }
                    break;
                }
                try {
                    inbox.wait(Math.max(1, Math.min(500, TimeUnit.NANOSECONDS.toMillis(left))));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted while waiting for the other shards' records");
                }
            }
        }
        // The other shards' acknowledgements: a shard whose jgears went away is not waited for (what it was
        // sent is lost with it).
        for (Map.Entry<String, CompletableFuture<Object>> e : sends.entrySet()) {
            try {
                ClusterNodes.Peer then = others.get(e.getKey());
                while (true) {
                    try {
                        e.getValue().get(Math.max(1, Math.min(TimeUnit.MILLISECONDS.toNanos(500), deadline - System.nanoTime())), TimeUnit.NANOSECONDS);
                        break;
                    } catch (java.util.concurrent.TimeoutException x) {
                        ClusterNodes.Peer now = nodes.peer(e.getKey());
                        if (now == null || !now.runId().equals(then.runId())) {
                            errors.add("the records of the repartition for shard " + e.getKey() + " were not acknowledged: its jgears ("
                                    + then.address() + ") went away mid-run");
                            break;
                        }
                        if (System.nanoTime() >= deadline) {
                            throw x;
                        }
                    }
                }
            } catch (java.util.concurrent.TimeoutException x) {
                errors.add("the records of the repartition for shard " + e.getKey() + " were not acknowledged within " + WAIT_SECONDS + " s");
            } catch (java.util.concurrent.ExecutionException x) {
                errors.add("the records of the repartition for shard " + e.getKey() + " were not delivered: "
                        + (x.getCause() == null ? x.getMessage() : x.getCause().getMessage()));
            } catch (InterruptedException x) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while sending records to the other shards");
            }
        }
        log.debug("run {} repartition {}: {} records in, errors {}", runId, phase, received.size(), errors);
        return new ShardFanOut.Exchanged(received, errors);
    }

    /** A command of a batch: {@code last} for its RECORDS (the batch is whole), else a MORE before it. */
    void received(String runId, int phase, String from, List<String> payloads, boolean last) {
        Inbox inbox = inbox(runId);
        synchronized (inbox) {
            if (!inbox.closed) {
                String key = phase + " " + from;
                inbox.batches.computeIfAbsent(key, k -> new ArrayList<>()).addAll(payloads);
                if (last) {
                    inbox.complete.add(key);
                    inbox.notifyAll();
                }
            }
        }
    }

    void abandoned(String runId, int fromPhase, String from, String message) {
        Inbox inbox = inbox(runId);
        synchronized (inbox) {
            inbox.abandonedFrom.merge(from, fromPhase, Math::min);
            inbox.abandonMessages.put(from, message);
            inbox.notifyAll();
        }
    }

    void abandon(String runId, String message) {
        end(runId, Integer.MAX_VALUE, message);
    }

    /** This shard's execution of the run ended: closes its inbox and tells the others of the phases it did not send. */
    void end(String runId, int phases, String message) {
        if (phases <= 0 && !inboxes.containsKey(runId)) {
            return;  // a run without repartitions: nothing to close, nobody to tell
        }
        Inbox inbox = inbox(runId);
        int sent;
        synchronized (inbox) {
            inbox.closed = true;
            inbox.batches.clear();
            inbox.complete.clear();
            sent = inbox.sentPhases;
        }
        if (sent >= phases) {
            return;
        }
        String me = nodes.myId();
        for (ClusterNodes.Peer p : nodes.masterPeers()) {
            if (p != null && !p.redisNodeId().equals(me)) {
                List<byte[]> args = new ArrayList<>();
                for (String a : List.of(ShardFanOut.SHARD_RECORDS, runId, String.valueOf(sent), me, "ABANDON", message)) {
                    args.add(a.getBytes(StandardCharsets.UTF_8));
                }
                send.apply(p, args);  // best effort: a shard that misses it stops waiting on its own bound
            }
        }
    }
}
