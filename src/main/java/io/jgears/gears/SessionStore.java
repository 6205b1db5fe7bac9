package io.jgears.gears;

import io.jgears.redis.RedisBackend;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Sessions that outlive their script (they hold registrations or time events) are stored in Redis under
 * the reserved prefix, so that jgears restores them when it starts: a hash per session (code,
 * description, created) and a sorted set of ids by creation time (restored in that order).
 */
final class SessionStore {
    static final String INDEX = Registrations.RESERVED_PREFIX + "sessions";
    static final String SESSION = Registrations.RESERVED_PREFIX + "session:";

    /** {@code user}: the ACL user name the session ran as (never its password), or null. */
    record Stored(String id, String code, String description, String user, boolean shared) {
    }

    private final RedisBackend redis;

    SessionStore(RedisBackend redis) {
        this.redis = redis;
    }

    void save(Session s) {
        byte[] key = (SESSION + s.id()).getBytes(StandardCharsets.UTF_8);
        redis.execute(List.of("HSET".getBytes(), key,
                "code".getBytes(), s.code().getBytes(StandardCharsets.UTF_8),
                "description".getBytes(), (s.description() == null ? "" : s.description()).getBytes(StandardCharsets.UTF_8),
                "hasDescription".getBytes(), (s.description() == null ? "0" : "1").getBytes(),
                "created".getBytes(), s.created().toString().getBytes(),
                "user".getBytes(), (s.user() == null ? "" : s.user().name()).getBytes(StandardCharsets.UTF_8),
                "isolation".getBytes(), (s.isShared() ? "shared" : "interpreter").getBytes()));
        redis.execute(List.of("ZADD".getBytes(), INDEX.getBytes(), "NX".getBytes(),
                String.valueOf(s.created().toEpochMilli()).getBytes(), s.id().getBytes(StandardCharsets.UTF_8)));
    }

    void delete(String id) {
        redis.execute(List.of("ZREM".getBytes(), INDEX.getBytes(), id.getBytes(StandardCharsets.UTF_8)));
        redis.execute(List.of("DEL".getBytes(), (SESSION + id).getBytes(StandardCharsets.UTF_8)));
    }

    List<Stored> loadAll() {
        List<Stored> out = new ArrayList<>();
        for (Object id : (List<?>) redis.execute(List.of("ZRANGE".getBytes(), INDEX.getBytes(), "0".getBytes(), "-1".getBytes()))) {
            String sid = String.valueOf(id);
            List<?> h = (List<?>) redis.execute(List.of("HMGET".getBytes(), (SESSION + sid).getBytes(StandardCharsets.UTF_8),
                    "code".getBytes(), "description".getBytes(), "hasDescription".getBytes(), "user".getBytes(), "isolation".getBytes()));
            if (h.get(0) == null) {
                continue;
            }
            String user = h.get(3) == null || String.valueOf(h.get(3)).isEmpty() ? null : String.valueOf(h.get(3));
            out.add(new Stored(sid, String.valueOf(h.get(0)), "1".equals(String.valueOf(h.get(2))) ? String.valueOf(h.get(1)) : null, user,
                    "shared".equals(String.valueOf(h.get(4)))));
        }
        return out;
    }
}
