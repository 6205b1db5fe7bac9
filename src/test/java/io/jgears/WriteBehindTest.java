package io.jgears;

import io.jgears.redis.EmbeddedRedis;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import io.lettuce.core.codec.StringCodec;
import io.lettuce.core.output.NestedMultiOutput;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.ProtocolKeyword;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The rgsync write-behind pattern end to end, on a real PostgreSQL, with pg8000 installed as a REQUIREMENT
 * from a local wheel folder: a sync key registration turns every HSET of person:* into an entry of a
 * stream, and a StreamReader registration upserts the stream's batches into PostgreSQL and acknowledges
 * them only after the commit. jgears is killed with kill -9 in the middle of 10,000 writes and started
 * again (same --data, same Redis): every row arrives, each once. Then the database goes down and comes
 * back (entries wait and are written), a read-through registration answers key misses from the database,
 * and `import redis` reaches Redis back through jgears.
 */
@Tag("long")  // minutes on 2 cores: ./jgears test-long
class WriteBehindTest {
    private static final Path LOGS = Path.of("target", "write-behind-test");
    private static final int WRITES = 10_000;
    private static final int BATCH = 1000;

    private static void await(String what, long millis, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        while (!condition.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(50);
        }
    }

    private static Process startJGears(int port, int redisPort, Path data, Path wheels, String name) throws Exception {
        Files.createDirectories(LOGS);
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(Arrays.asList(Files.readString(Path.of("target", "jvm.args")).trim().split("\\s+")));
        cmd.addAll(List.of("-Xss16m", "-Xmx2g", "-cp", System.getProperty("java.class.path"), "io.jgears.cli.Main", "start",
                "--port", String.valueOf(port), "--redis", "redis://127.0.0.1:" + redisPort, "--data", data.toString(),
                "--pool-size", "1", "--set", "PythonFindLinks=" + wheels));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(LOGS.resolve(name + ".log").toFile()).start();
        RedisClient probe = RedisClient.create(RedisURI.builder().withHost("127.0.0.1").withPort(port).withTimeout(Duration.ofSeconds(5)).build());
        try {
            await("jgears " + name + " to answer", 600_000, () -> {
                if (!p.isAlive()) {
                    throw new AssertionError("jgears " + name + " exited; see " + LOGS.resolve(name + ".log"));
                }
                try (StatefulRedisConnection<String, String> c = probe.connect()) {
                    return "PONG".equals(c.sync().ping());
                } catch (RuntimeException e) {
                    return false;
                }
            });
        } catch (AssertionError | RuntimeException e) {
            p.destroyForcibly();  // not left running after a failed start
            throw e;
        } finally {
            probe.shutdown();
        }
        return p;
    }

    private static final ProtocolKeyword PYEXECUTE = new ProtocolKeyword() {
        @Override
        public byte[] getBytes() {
            return "RG.PYEXECUTE".getBytes();
        }

        @Override
        public String toString() {
            return "RG.PYEXECUTE";
        }
    };

    private static Object pyexecute(RedisCommands<String, String> c, String code, String... options) {
        CommandArgs<String, String> args = new CommandArgs<>(StringCodec.UTF8).add(code);
        for (String o : options) {
            args.add(o);
        }
        List<Object> out = c.dispatch(PYEXECUTE, new NestedMultiOutput<>(StringCodec.UTF8), args);
        return out.size() == 1 ? out.getFirst() : out;
    }

    /**
     * The capture session: each HSET of person:* adds a stream entry before the write is answered (sync).
     * A session of its own: a sync event never waits for a database batch holding the writer's context.
     */
    static final String CAPTURE = """
            def to_stream(r):
                v = r['value'] or {}
                execute('XADD', '_person_wb', '*', 'key', r['key'], 'name', v.get('name', ''), 'age', v.get('age', '0'))

            GB('KeysReader').foreach(to_stream).register(prefix='person:*', eventTypes=['hset'], mode='sync')
            """;

    /** The writer session: the stream → PostgreSQL, in batches, acknowledged after the commit. */
    static String writeBehind(int pgPort) {
        return """
                import pg8000

                DB = dict(user='postgres', host='127.0.0.1', port=%d, database='postgres')
                connection = [None]

                def collect(a, r):
                    a = a or []
                    a.append(r)
                    return a

                def write(batch):
                    if connection[0] is None:
                        connection[0] = pg8000.connect(**DB)
                    c = connection[0]
                    try:
                        cur = c.cursor()
                        for r in batch:
                            v = r['value']
                            cur.execute('INSERT INTO person (id, name, age) VALUES (%%s, %%s, %%s) '
                                        'ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, age = EXCLUDED.age, '
                                        'deliveries = person.deliveries + 1', (v['key'], v['name'], int(v['age'])))
                        c.commit()
                    except Exception:
                        connection[0] = None
                        try:
                            c.close()
                        except Exception:
                            pass
                        raise

                GB('StreamReader').accumulate(collect).foreach(write).register(
                    prefix='_person_wb', batch=%d, duration=1000, onFailedPolicy='retry', onFailedRetryInterval=1)
                """.formatted(pgPort, BATCH);
    }

    @Test
    void personHashesReachPostgresExactlyOnceAcrossKill9AndDatabaseOutage() throws Exception {
        Path wheels = TestWheels.folder();
        EmbeddedRedis redis = EmbeddedRedis.start(Files.createTempDirectory("jgears-wb-redis"), true);
        Path data = Files.createTempDirectory("jgears-wb-data");
        RedisClient redisClient = RedisClient.create(RedisURI.create("127.0.0.1", redis.port()));
        Process first = null;
        Process second = null;
        try (TestPostgres pg = TestPostgres.start();
             StatefulRedisConnection<String, String> dc = redisClient.connect()) {
            RedisCommands<String, String> direct = dc.sync();
            pg.sql("CREATE TABLE person (id text PRIMARY KEY, name text NOT NULL, age int NOT NULL, deliveries int NOT NULL DEFAULT 0)");
            int port = EmbeddedRedis.freePort();
            first = startJGears(port, redis.port(), data, wheels, "first");
            RedisClient jg = RedisClient.create(RedisURI.builder().withHost("127.0.0.1").withPort(port)
                    .withTimeout(Duration.ofSeconds(10)).build());
            RedisClient admin = RedisClient.create(RedisURI.builder().withHost("127.0.0.1").withPort(port)
                    .withTimeout(Duration.ofSeconds(600)).build());
            try (StatefulRedisConnection<String, String> c = admin.connect()) {
                long t0 = System.nanoTime();
                assertEquals("OK", pyexecute(c.sync(), writeBehind(pg.port()), "ID", "wb",
                        "ALLOW", "network=127.0.0.1:" + pg.port(), "REQUIREMENTS", "pg8000"));
                System.out.printf("write-behind: session with REQUIREMENTS pg8000 (cold install) loaded in %d ms%n",
                        (System.nanoTime() - t0) / 1_000_000);
                assertEquals("OK", pyexecute(c.sync(), CAPTURE, "ID", "capture"));
            }

            // 10,000 writes through jgears from 16 clients; each retries its write until jgears answers it
            // (the sync registration replies after the XADD), across the kill.
            AtomicInteger acknowledged = new AtomicInteger();
            AtomicInteger retries = new AtomicInteger();
            List<Thread> writers = new ArrayList<>();
            int clients = 16;
            long writeStart = System.nanoTime();
            for (int w = 0; w < clients; w++) {
                int slice = w;
                writers.add(Thread.ofPlatform().start(() -> {
                    try (StatefulRedisConnection<String, String> c = jg.connect()) {
                        for (int i = slice; i < WRITES; i += clients) {
                            while (true) {
                                try {
                                    c.sync().hset("person:" + i, Map.of("name", "name-" + i, "age", String.valueOf(i % 100)));
                                    acknowledged.incrementAndGet();
                                    break;
                                } catch (RuntimeException e) {
                                    retries.incrementAndGet();
                                    try {
                                        Thread.sleep(200);
                                    } catch (InterruptedException ie) {
                                        return;
                                    }
                                }
                            }
                        }
                    }
                }));
            }
            await("a third of the writes", 900_000, () -> acknowledged.get() >= WRITES / 3);
            first.destroyForcibly().waitFor();  // kill -9: no shutdown hook runs
            int atKill = acknowledged.get();
            long rowsAtKill = Long.parseLong(pg.sql("SELECT count(*) FROM person"));
            assertTrue(atKill < WRITES, "killed in the middle of the writes (" + atKill + " acknowledged)");
            second = startJGears(port, redis.port(), data, wheels, "second");
            for (Thread t : writers) {
                t.join(1_200_000);
            }
            assertEquals(WRITES, acknowledged.get(), "every write acknowledged");
            long writesDone = System.nanoTime();
            await("every row in PostgreSQL", 900_000, () -> count(pg) == WRITES);
            long rowsDone = System.nanoTime();
            assertEquals(String.valueOf(WRITES), pg.sql("SELECT count(*) FROM person WHERE name = 'name-' || substr(id, 8) "
                    + "AND age = substr(id, 8)::int % 100"), "each row holds its hash's values");
            await("the stream drained (nothing pending)", 300_000, () -> pending(direct) == 0);
            assertEquals(String.valueOf(WRITES), pg.sql("SELECT count(DISTINCT id) FROM person"), "no row twice");
            System.out.printf("write-behind: %d writes (%d retried across the kill at %d acknowledged, %d rows then), "
                            + "all %d rows in PostgreSQL %.1f s after the first write, %.1f s after the last one (batch %d)%n",
                    WRITES, retries.get(), atKill, rowsAtKill, WRITES, (rowsDone - writeStart) / 1e9, (rowsDone - writesDone) / 1e9, BATCH);

            // Throughput of the stream → PostgreSQL side alone: 10,000 entries added at once.
            long t0 = System.nanoTime();
            for (int i = WRITES; i < 2 * WRITES; i++) {
                dc.async().xadd("_person_wb", Map.of("key", "person:" + i, "name", "name-" + i, "age", String.valueOf(i % 100)));
            }
            await("the second 10,000 rows", 600_000, () -> count(pg) == 2L * WRITES);
            double secs = (System.nanoTime() - t0) / 1e9;
            System.out.printf("write-behind throughput: %d rows in %.2f s = %.0f rows/s into PostgreSQL (batch %d)%n",
                    WRITES, secs, WRITES / secs, BATCH);

            // The database goes down: entries wait (retried every second), nothing is lost, then they are written.
            pg.stopServer();
            try (StatefulRedisConnection<String, String> c = jg.connect()) {
                for (int i = 0; i < 50; i++) {
                    c.sync().hset("person:down" + i, Map.of("name", "down-" + i, "age", "1"));
                }
            }
            await("the registration failing while the database is down", 60_000, () -> pending(direct) > 0);
            Thread.sleep(1500);
            pg.startServer();
            await("the rows written while the database was down", 300_000, () -> count(pg) == 2L * WRITES + 50);
            await("the stream drained again", 300_000, () -> pending(direct) == 0);

            try (StatefulRedisConnection<String, String> c = admin.connect()) {
                RedisCommands<String, String> j = c.sync();
                // Read-through: a GET of a missing cache:name:<id> is answered from PostgreSQL (and cached).
                pg.sql("INSERT INTO person (id, name, age) VALUES ('only-in-db', 'Ada', 36)");
                assertEquals("OK", pyexecute(j, """
                        import pg8000
                        DB = dict(user='postgres', host='127.0.0.1', port=%d, database='postgres')
                        def fetch(r):
                            pid = r['key'][len('cache:name:'):]
                            c = pg8000.connect(**DB)
                            try:
                                cur = c.cursor()
                                cur.execute('SELECT name FROM person WHERE id = %%s', (pid,))
                                row = cur.fetchone()
                            finally:
                                c.close()
                            if row is not None:
                                execute('SET', r['key'], row[0], 'EX', '60')
                                override_reply(row[0])
                        GB().foreach(fetch).register(prefix='cache:name:*', eventTypes=['keymiss'], commands=['get'], mode='sync')
                        """.formatted(pg.port()), "ID", "readthrough", "ALLOW", "network=127.0.0.1:" + pg.port(),
                        "REQUIREMENTS", "pg8000"));
                assertEquals("Ada", j.get("cache:name:only-in-db"), "read through from PostgreSQL");
                assertEquals("Ada", direct.get("cache:name:only-in-db"), "and cached in Redis");
                assertEquals(null, j.get("cache:name:nobody"), "not in the database either: nil");

                // import redis, connecting back to Redis through jgears (network allowed for that host:port only).
                Object back = pyexecute(j, """
                        import redis
                        def ping(x):
                            r = redis.Redis(host='127.0.0.1', port=%d)
                            return r.hget('person:7', 'name').decode()
                        GB('ShardsIDReader').map(ping).run()
                        """.formatted(port), "ALLOW", "network=127.0.0.1:" + port, "REQUIREMENTS", "redis");
                assertEquals(List.of(List.of("name-7"), List.of()), back);
            }
            jg.shutdown();
            admin.shutdown();
        } finally {
            for (Process p : new Process[]{first, second}) {
                if (p != null) {
                    p.destroyForcibly().waitFor();
                }
            }
            redisClient.shutdown();
            redis.close();
        }
    }

    private static long count(TestPostgres pg) {
        try {
            return Long.parseLong(pg.sql("SELECT count(*) FROM person"));
        } catch (Exception e) {
            return -1;
        }
    }

    /** Entries of the stream's consumer groups not acknowledged yet, plus entries no group has read. */
    private static long pending(RedisCommands<String, String> direct) {
        long n = 0;
        for (Object g : direct.xinfoGroups("_person_wb")) {
            List<?> fields = (List<?>) g;
            for (int i = 0; i + 1 < fields.size(); i += 2) {
                String f = String.valueOf(fields.get(i));
                if (f.equals("pending") || f.equals("lag")) {
                    n += fields.get(i + 1) == null ? 0 : ((Number) fields.get(i + 1)).longValue();
                }
            }
        }
        return n;
    }
}
