package io.jgears;

import io.jgears.redis.EmbeddedRedis;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A Redis with ACL users behind jgears: jgears asks for AUTH like Redis does, and a session's
 * execute() calls run as the ACL user that created it, so Redis' ACL decides what a script may touch.
 */
class AuthTest {

    @Test
    void sessionsRunAsTheirClientsAclUser() throws Exception {
        EmbeddedRedis redis = EmbeddedRedis.start(Files.createTempDirectory("jgears-acl"), false);
        RedisClient admin = RedisClient.create(RedisURI.create("127.0.0.1", redis.port()));
        try (StatefulRedisConnection<String, String> a = admin.connect()) {
            RedisCommands<String, String> r = a.sync();
            r.aclSetuser("jgears", io.lettuce.core.AclSetuserArgs.Builder.on().addPassword("jgpass").allKeys().allChannels().allCommands());
            r.aclSetuser("alice", io.lettuce.core.AclSetuserArgs.Builder.on().addPassword("apass").keyPattern("alice:*").allCommands());
            r.aclSetuser("bob", io.lettuce.core.AclSetuserArgs.Builder.on().addPassword("bpass").keyPattern("bob:*").allCommands());
            r.set("alice:secret", "a");
            r.set("bob:secret", "b");
            r.aclSetuser("default", io.lettuce.core.AclSetuserArgs.Builder.off());
        }
        try (JGears jgears = JGears.start(new JGears.Options("127.0.0.1", EmbeddedRedis.freePort(),
                "redis://jgears:jgpass@127.0.0.1:" + redis.port(), redis.dataDir(), false, Map.of("PoolSize", "2"), 1 << 20, 1 << 10));
             RawResp anon = new RawResp(jgears.port());
             RawResp alice = new RawResp(jgears.port());
             RawResp bob = new RawResp(jgears.port())) {
            assertTrue(String.valueOf(anon.send("GET", "alice:secret").read()).startsWith("-NOAUTH"), "Redis refuses forwarded commands");
            assertTrue(String.valueOf(anon.send("RG.PYEXECUTE", "GB('ShardsIDReader').run()").read()).startsWith("-NOAUTH"),
                    "jgears refuses its own");
            assertTrue(String.valueOf(anon.send("AUTH", "alice", "wrong").read()).startsWith("-WRONGPASS"));
            assertTrue(String.valueOf(anon.send("RG.PYSTATS").read()).startsWith("-NOAUTH"), "a failed AUTH does not count");

            assertEquals("OK", alice.send("AUTH", "alice", "apass").read());
            assertEquals("OK", bob.send("HELLO", "2", "AUTH", "bob", "bpass").read() instanceof List<?> ? "OK" : "no");
            String read = "GB('ShardsIDReader').map(lambda x: execute('GET', '%s')).run()";
            assertEquals(List.of(List.of("a"), List.of()), alice.send("RG.PYEXECUTE", read.formatted("alice:secret")).read());
            List<?> denied = (List<?>) alice.send("RG.PYEXECUTE", read.formatted("bob:secret")).read();
            assertTrue(denied.get(1).toString().contains("NOPERM"), "alice's script may not read bob's keys: " + denied);
            assertEquals(List.of(List.of("b"), List.of()), bob.send("RG.PYEXECUTE", read.formatted("bob:secret")).read());
            // A KeysReader batch sees only the keys its user may read.
            assertEquals(List.of(List.of("alice:secret"), List.of()),
                    alice.send("RG.PYEXECUTE", "GB().map(lambda r: r['key']).run('*')").read());
            // A registration runs as its session's user too: bob's writes to alice's keys are refused.
            assertEquals("OK", bob.send("RG.PYEXECUTE", "GB().foreach(lambda r: execute('SET', 'alice:stolen', r['value']))"
                    + ".register(prefix='bob:*')", "ID", "bobs").read());
            bob.send("SET", "bob:trigger", "x").read();
            long deadline = System.currentTimeMillis() + 120_000;
            String dump;
            do {
                Thread.sleep(50);
                dump = String.valueOf(bob.send("RG.DUMPREGISTRATIONS").read());
            } while (!dump.contains("NOPERM") && System.currentTimeMillis() < deadline);
            assertTrue(dump.contains("NOPERM"), dump);
            assertEquals(0L, alice.send("EXISTS", "alice:stolen").read());
        } finally {
            admin.shutdown();
            redis.close();
        }
    }
}
