package io.jgears.cluster;

import io.jgears.gears.GearsEngine;
import io.jgears.gears.SessionStore;
import io.jgears.server.Replies;
import io.netty.handler.codec.redis.ErrorRedisMessage;
import io.netty.handler.codec.redis.RedisMessage;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A jgears beside a replica keeps the sessions of its master's jgears, as Redis keeps the master's data:
 * once a second it asks that jgears for its stored sessions ({@link #COMMAND}, answered with a digest only
 * when nothing changed) and installs, upgrades or removes its own to match, with the same session ids (so
 * a stream registration's consumer group, named after its session id, is the one the master used and
 * Redis replicated). A copy is installed as a restart restores a session: register() and registerTE()
 * take effect, run() does not. While the local Redis is a replica those registrations are dormant (see
 * {@code Registrations#redisIsMaster}); when a failover promotes it they run, and stream registrations
 * resume from their groups' pending entries.
 * <p>
 * Pulled rather than pushed by the coordinator's fan-out: the same path serves a replica's jgears that
 * starts (or restarts) later, an old master that comes back as a replica, upgrades and unregistrations,
 * and it needs nothing from the run protocol. The price is a window: a session created less than about a
 * second before its master fails may not have reached the replica's jgears.
 */
public final class ReplicaSessions implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ReplicaSessions.class);
    /** jgears-to-jgears: {@code RG.JGEARSSESSIONS [digest]}, the asker's last digest. */
    public static final String COMMAND = "RG.JGEARSSESSIONS";
    static final long SYNC_MS = 1000;
    /** A copy that failed to load is tried again after this long (or as soon as the master's copy changes). */
    static final long RETRY_FAILED_MS = 30_000;

    private final ClusterNodes nodes;
    private final GearsEngine engine;
    private final ShardLinks links;
    private final ScheduledExecutorService timer;
    private final ReentrantLock syncing = new ReentrantLock();
    /** The master's digest last applied completely, and the master it came from. */
    private volatile String appliedDigest = "";
    private volatile String appliedFrom = "";
    /** Copies that failed to load, by id: the entry that failed and when. */
    private final Map<String, Map.Entry<SessionStore.Stored, Long>> failed = new HashMap<>();
    private volatile boolean wasMaster;

    public ReplicaSessions(ClusterNodes nodes, GearsEngine engine, ShardLinks links) {
        this.nodes = nodes;
        this.engine = engine;
        this.links = links;
        this.timer = Executors.newSingleThreadScheduledExecutor(r -> Thread.ofPlatform().daemon().name("jgears-replica-sessions").unstarted(r));
    }

    public ReplicaSessions start() {
        wasMaster = nodes.myMaster() == null;
        nodes.onTopology(this::topologyChanged);
        timer.scheduleWithFixedDelay(() -> Thread.ofVirtual().name("jgears-replica-sync").start(this::syncQuietly),
                0, SYNC_MS, TimeUnit.MILLISECONDS);
        return this;
    }

    /** Whether the local Redis is a replica in the latest topology. */
    public boolean replica() {
        return nodes.myMaster() != null;
    }

    /** A failover shows in the topology: registrations wake (or go dormant) without waiting for the role watch. */
    private void topologyChanged(ClusterTopology topology) {
        ClusterTopology.Shard shard = topology.shardOfNode(nodes.myId());
        if (shard == null) {
            return;
        }
        boolean master = shard.nodes().stream().anyMatch(n -> n.id().equals(nodes.myId()) && n.master());
        if (master != wasMaster) {
            log.info("the topology shows Redis node {} as a {} now", nodes.myId(), master ? "master" : "replica");
            wasMaster = master;
            engine.registrations().redisRole(master);
        }
    }

    /** The answer to {@link #COMMAND}: [digest] when {@code known} is the current digest, else [digest, session...]. */
    public RedisMessage answer(String known) {
        List<SessionStore.Stored> stored = engine.storedSessions();
        List<Object> encoded = new ArrayList<>(stored.size());
        for (SessionStore.Stored s : stored) {
            encoded.add(encode(s));
        }
        String digest = digest(encoded);
        List<Object> reply = new ArrayList<>();
        reply.add(digest);
        if (!digest.equals(known)) {
            reply.addAll(encoded);
        }
        return Replies.of(reply);
    }

    private static List<Object> encode(SessionStore.Stored s) {
        List<Object> out = new ArrayList<>();
        out.add(s.id());
        out.add(s.code());
        out.add(s.description());
        out.add(s.user());
        out.add(s.shared() ? "shared" : "interpreter");
        out.add(String.join("\n", s.requirements()));
        out.add(s.network());
        out.add(s.threads() ? "1" : "0");
        out.add(s.clusterIds());  // the same registration ids as on the master
        return out;
    }

    private static SessionStore.Stored decode(List<?> f) {
        String reqs = text(f.get(5));
        return new SessionStore.Stored(text(f.get(0)), text(f.get(1)), text(f.get(2)), text(f.get(3)), "shared".equals(text(f.get(4))),
                reqs == null || reqs.isEmpty() ? List.of() : List.of(reqs.split("\n")), text(f.get(6)), "1".equals(text(f.get(7))),
                f.size() > 8 ? text(f.get(8)) : null);
    }

    private static String digest(List<Object> encoded) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            for (Object e : encoded) {
                for (Object field : (List<?>) e) {
                    byte[] b = field == null ? new byte[0] : String.valueOf(field).getBytes(StandardCharsets.UTF_8);
                    md.update((field == null ? "n" : b.length + ":").getBytes(StandardCharsets.UTF_8));
                    md.update(b);
                }
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private void syncQuietly() {
        if (!syncing.tryLock()) {
            return;
        }
        try {
            sync();
        } catch (Exception e) {
            log.debug("sessions of the master's jgears: {}", e.getMessage());  // master's jgears unreachable: next second
        } finally {
            syncing.unlock();
        }
    }

    /** Brings this jgears' sessions in line with its master's jgears' (nothing while the local Redis is a master). */
    void sync() throws Exception {
        ClusterTopology.Node master = nodes.myMaster();
        if (master == null) {
            return;
        }
        ClusterNodes.Peer peer = nodes.peer(master.id());
        if (peer == null) {
            return;  // its jgears is not heard (down, or the master failed): keep what we have
        }
        String known = peer.runId().equals(appliedFrom) ? appliedDigest : "";
        Object reply = links.call(peer, List.of(COMMAND.getBytes(StandardCharsets.UTF_8), known.getBytes(StandardCharsets.UTF_8)))
                .get(30, TimeUnit.SECONDS);
        List<?> parts = (List<?>) reply;
        String digest = text(parts.getFirst());
        if (digest.equals(known)) {
            return;
        }
        LinkedHashMap<String, SessionStore.Stored> wanted = new LinkedHashMap<>();
        for (Object o : parts.subList(1, parts.size())) {
            SessionStore.Stored s = decode((List<?>) o);
            wanted.put(s.id(), s);
        }
        if (nodes.myMaster() == null) {
            return;  // promoted meanwhile: our sessions are the shard's now
        }
        Map<String, SessionStore.Stored> mine = new HashMap<>();
        for (SessionStore.Stored s : engine.storedSessions()) {
            mine.put(s.id(), s);
        }
        boolean complete = true;
        for (String id : mine.keySet()) {
            if (!wanted.containsKey(id)) {
                log.info("session {} is gone from the master's jgears: removed here too", id);
                engine.removeSession(id);
            }
        }
        long now = System.currentTimeMillis();
        for (SessionStore.Stored s : wanted.values()) {
            SessionStore.Stored have = mine.get(s.id());
            if (s.equals(have)) {
                continue;
            }
            var failure = failed.get(s.id());
            if (failure != null && failure.getKey().equals(s) && now - failure.getValue() < RETRY_FAILED_MS) {
                complete = false;
                continue;
            }
            // A session of that id may be live here without being stored (it held nothing): replace it too.
            boolean replace = have != null || engine.sessions().get(s.id()) != null;
            RedisMessage r = engine.installSessionCopy(s, replace);
            if (r instanceof ErrorRedisMessage error) {
                complete = false;
                failed.put(s.id(), Map.entry(s, now));
                log.warn("the copy of session {} from the master's jgears did not load here: {}", s.id(), error.content());
            } else {
                failed.remove(s.id());
                log.info("session {} {} from the master's jgears (dormant while Redis is a replica)", s.id(),
                        have == null ? "copied" : "upgraded");
            }
        }
        if (complete) {
            appliedDigest = digest;
            appliedFrom = peer.runId();
        }
    }

    private static String text(Object o) {
        return o == null ? null : o instanceof byte[] b ? new String(b, StandardCharsets.UTF_8) : String.valueOf(o);
    }

    @Override
    public void close() {
        timer.shutdownNow();
    }
}
