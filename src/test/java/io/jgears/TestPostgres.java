package io.jgears;

import io.jgears.redis.EmbeddedRedis;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real PostgreSQL (Debian's postgresql package) for a test: initdb in a temporary directory, trust
 * authentication, listening on a free loopback port only. As root it runs as the postgres user (initdb
 * refuses root). Queries go through psql.
 */
final class TestPostgres implements AutoCloseable {
    private final Path dir;
    private final Path bin;
    private final int port;
    private final boolean asPostgres;

    private TestPostgres(Path dir, Path bin, int port, boolean asPostgres) {
        this.dir = dir;
        this.bin = bin;
        this.port = port;
        this.asPostgres = asPostgres;
    }

    static TestPostgres start() throws IOException, InterruptedException {
        Path bin;
        try (var versions = Files.list(Path.of("/usr/lib/postgresql"))) {
            bin = versions.sorted().toList().getLast().resolve("bin");
        } catch (IOException e) {
            throw new IllegalStateException("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)", e);
        }
        boolean root = "root".equals(System.getProperty("user.name"));
        Path dir = Files.createTempDirectory("jgears-pg");
        TestPostgres pg = new TestPostgres(dir, bin, EmbeddedRedis.freePort(), root);
        if (root) {
            run(List.of("chown", "postgres", dir.toString()), 30);
        }
        pg.runAs(List.of(bin.resolve("initdb").toString(), "-D", dir.resolve("db").toString(), "--auth=trust",
                "-U", "postgres", "--no-sync"), 120);
        pg.startServer();
        return pg;
    }

    int port() {
        return port;
    }

    void startServer() throws IOException, InterruptedException {
        runAs(List.of(bin.resolve("pg_ctl").toString(), "-D", dir.resolve("db").toString(), "-l", dir.resolve("log").toString(),
                "-w", "-t", "120", "-o", "-p " + port + " -k " + dir + " -c listen_addresses=127.0.0.1 -c fsync=off", "start"), 150);
    }

    void stopServer() throws IOException, InterruptedException {
        runAs(List.of(bin.resolve("pg_ctl").toString(), "-D", dir.resolve("db").toString(), "-m", "fast", "-w", "stop"), 120);
    }

    /** Runs SQL with psql; returns its unaligned, tuples-only output, trimmed. */
    String sql(String statement) throws IOException, InterruptedException {
        return run(List.of("psql", "-h", "127.0.0.1", "-p", String.valueOf(port), "-U", "postgres", "-d", "postgres",
                "-v", "ON_ERROR_STOP=1", "-tAc", statement), 120).trim();
    }

    private String runAs(List<String> cmd, long seconds) throws IOException, InterruptedException {
        List<String> full = new ArrayList<>();
        if (asPostgres) {
            full.addAll(List.of("runuser", "-u", "postgres", "--"));
        }
        full.addAll(cmd);
        return run(full, seconds);
    }

    private static String run(List<String> cmd, long seconds) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException("timed out: " + cmd);
        }
        String text = new String(out, StandardCharsets.UTF_8);
        if (p.exitValue() != 0) {
            throw new IllegalStateException(cmd + " failed (" + p.exitValue() + "):\n" + text);
        }
        return text;
    }

    @Override
    public void close() {
        try {
            stopServer();
        } catch (Exception e) {
            // already stopped
        }
        try (var walk = Files.walk(dir)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException e) {
            // a temporary directory left behind
        }
    }
}
