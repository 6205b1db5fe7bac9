package io.jgears.gears;

import io.jgears.redis.RedisBackend;
import io.lettuce.core.api.StatefulRedisConnection;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Sessions that outlive their script (they hold registrations or time events) are stored in Redis, so
 * that jgears restores them when it starts: a hash per session (code, description, created) and a sorted
 * set of ids by creation time (restored in that order). They live in a database of their own
 * ({@link GearsConfig#STATE_DATABASE}), never in the keyspace clients use: KEYS, SCAN, DBSIZE and KeysReader
 * runs do not see them, and clients may use any key name. Redis persists that database with the rest
 * (AOF/RDB). FLUSHALL empties it too: jgears writes its sessions back after a FLUSHALL it forwards, and
 * checks every second that the index is still there (a FLUSHALL or FLUSHDB sent directly to Redis).
 */
public final class SessionStore implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(SessionStore.class);
    /** Key names inside the state database; older jgears kept them in the clients' database (migrated). */
    static final String INDEX = "{jgears}:sessions";
    static final String SESSION = "{jgears}:session:";

    /**
     * {@code user}: the ACL user name the session ran as (never its password), or null. {@code clusterIds}:
     * on a cluster, the block its registrations' ids came from ({@link ClusterRunIds#text()}), else null.
     */
    public record Stored(String id, String code, String description, String user, boolean shared,
                         List<String> requirements, String network, boolean threads, String clusterIds) {
    }

    private final StatefulRedisConnection<byte[], byte[]> state;

    SessionStore(RedisBackend redis, int database) {
        if (database == redis.database()) {
            throw new IllegalArgumentException(GearsConfig.STATE_DATABASE + " " + database
                    + " is the database clients use: choose another one for jgears' state");
        }
        this.state = redis.connectDatabase(database);
        migrateFrom(redis, database);
    }

    /** No state database (Redis Cluster has database 0 only): nothing stored in Redis, the file copy is all. */
    static SessionStore none() {
        return new SessionStore();
    }

    private SessionStore() {
        this.state = null;
    }

    /** False when there is no state database (a cluster node): the file copy is all. */
    boolean inRedis() {
        return state != null;
    }

    private Object run(String... args) {
        List<byte[]> argv = new ArrayList<>(args.length);
        for (String a : args) {
            argv.add(a.getBytes(StandardCharsets.UTF_8));
        }
        return RedisBackend.dispatch(state, argv);
    }

    /** Sessions an older jgears stored among the clients' keys move to the state database (MOVE). */
    private static void migrateFrom(RedisBackend redis, int database) {
        List<?> ids;
        try {
            ids = (List<?>) redis.execute(List.of("ZRANGE".getBytes(), INDEX.getBytes(), "0".getBytes(), "-1".getBytes()));
        } catch (RuntimeException e) {
            return;  // a client's own key of that name (not a sorted set): nothing of jgears' to move
        }
        if (ids.isEmpty()) {
            return;
        }
        String db = String.valueOf(database);
        for (Object id : ids) {
            redis.execute(List.of("MOVE".getBytes(), (SESSION + id).getBytes(StandardCharsets.UTF_8), db.getBytes()));
        }
        redis.execute(List.of("MOVE".getBytes(), INDEX.getBytes(), db.getBytes()));
        log.info("moved {} stored sessions out of the clients' database into database {}", ids.size(), database);
    }

    /** The entry a session is stored as. */
    static Stored of(Session s) {
        return new Stored(s.id(), s.code(), s.description(), s.user() == null ? null : s.user().name(), s.isShared(),
                s.requirements(), s.policy().networkText(), s.policy().threads(),
                s.clusterIds() == null ? null : s.clusterIds().text());
    }

    /** How many sessions the index holds (0 after a FLUSHALL or FLUSHDB of the state database). */
    synchronized long count() {
        if (state == null) {
            return Long.MAX_VALUE;  // nothing to store again
        }
        return (Long) run("ZCARD", INDEX);
    }

    synchronized void save(Session s) {
        if (state == null) {
            return;
        }
        run("HSET", SESSION + s.id(),
                "code", s.code(),
                "description", s.description() == null ? "" : s.description(),
                "hasDescription", s.description() == null ? "0" : "1",
                "created", s.created().toString(),
                "user", s.user() == null ? "" : s.user().name(),
                "isolation", s.isShared() ? "shared" : "interpreter",
                // One requirement per line (pip requirement strings have no newlines).
                "requirements", String.join("\n", s.requirements()),
                "network", s.policy().networkText(),
                "threads", s.policy().threads() ? "1" : "0");
        run("ZADD", INDEX, "NX", String.valueOf(s.created().toEpochMilli()), s.id());
    }

    synchronized void delete(String id) {
        if (state == null) {
            return;
        }
        run("ZREM", INDEX, id);
        run("DEL", SESSION + id);
    }

    List<Stored> loadAll() {
        List<Stored> out = new ArrayList<>();
        if (state == null) {
            return out;
        }
        for (Object id : (List<?>) run("ZRANGE", INDEX, "0", "-1")) {
            String sid = String.valueOf(id);
            List<?> h = (List<?>) run("HMGET", SESSION + sid, "code", "description", "hasDescription", "user", "isolation",
                    "requirements", "network", "threads");
            if (h.get(0) == null) {
                continue;
            }
            String user = h.get(3) == null || String.valueOf(h.get(3)).isEmpty() ? null : String.valueOf(h.get(3));
            out.add(new Stored(sid, String.valueOf(h.get(0)), "1".equals(String.valueOf(h.get(2))) ? String.valueOf(h.get(1)) : null, user,
                    "shared".equals(String.valueOf(h.get(4))),
                    h.get(5) == null || String.valueOf(h.get(5)).isEmpty() ? List.of() : List.of(String.valueOf(h.get(5)).split("\n")),
                    h.get(6) == null ? "none" : String.valueOf(h.get(6)),
                    "1".equals(String.valueOf(h.get(7))), null));
        }
        return out;
    }

    @Override
    public void close() {
        if (state != null) {
            state.close();
        }
    }
}
