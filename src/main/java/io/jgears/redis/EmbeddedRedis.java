package io.jgears.redis;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * A redis-server child process owned by jgears (the embedded default): a free loopback port, data and
 * append-only file in the data directory, stopped with SIGTERM (so Redis flushes its AOF) on close.
 */
public final class EmbeddedRedis implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(EmbeddedRedis.class);

    private final Process process;
    private final int port;
    private final Path dataDir;

    private EmbeddedRedis(Process process, int port, Path dataDir) {
        this.process = process;
        this.port = port;
        this.dataDir = dataDir;
    }

    public static Optional<Path> findExecutable() {
        String path = System.getenv().getOrDefault("PATH", "/usr/local/bin:/usr/bin:/bin");
        List<String> dirs = new ArrayList<>(List.of(path.split(":")));
        dirs.add("/usr/sbin");
        dirs.add("/usr/local/sbin");
        for (String dir : dirs) {
            Path p = Path.of(dir, "redis-server");
            if (Files.isExecutable(p)) {
                return Optional.of(p);
            }
        }
        return Optional.empty();
    }

    /** Starts redis-server and waits until it answers PING. */
    public static EmbeddedRedis start(Path dataDir, boolean appendOnly) throws IOException {
        Path exe = findExecutable().orElseThrow(() -> new IOException(
                "redis-server was not found on PATH. jgears needs Redis 7: install it with "
                        + "'apt-get install -y redis-server' (Debian/Ubuntu), or give --redis redis://host:port"));
        Files.createDirectories(dataDir);
        Path abs = dataDir.toAbsolutePath();
        killLeftover(abs);
        int port = freePort();
        List<String> cmd = List.of(exe.toString(),
                "--port", String.valueOf(port),
                "--bind", "127.0.0.1",
                "--dir", abs.toString(),
                "--appendonly", appendOnly ? "yes" : "no",
                "--save", "",
                "--daemonize", "no",
                "--pidfile", abs.resolve("redis.pid").toString(),
                "--logfile", abs.resolve("redis.log").toString());
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        EmbeddedRedis redis = new EmbeddedRedis(p, port, abs);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (System.nanoTime() < deadline) {
            if (!p.isAlive()) {
                throw new IOException("redis-server exited with code " + p.exitValue() + "; see " + abs.resolve("redis.log"));
            }
            if (ping(port)) {
                log.info("embedded redis-server (pid {}) on 127.0.0.1:{}, data in {}, appendonly {}",
                        p.pid(), port, abs, appendOnly ? "yes" : "no");
                return redis;
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        redis.close();
        throw new IOException("redis-server did not answer on port " + port + " in time; see " + abs.resolve("redis.log"));
    }

    /** A redis-server left behind by a jgears that was killed (kill -9) still holds the data directory. */
    private static void killLeftover(Path dataDir) {
        Path pidFile = dataDir.resolve("redis.pid");
        try {
            if (!Files.exists(pidFile)) {
                return;
            }
            long pid = Long.parseLong(Files.readString(pidFile).trim());
            ProcessHandle.of(pid).filter(h -> h.info().command().map(c -> c.contains("redis")).orElse(false))
                    .ifPresent(h -> {
                        log.warn("stopping leftover redis-server pid {} on data dir {}", pid, dataDir);
                        h.destroy();
                        try {
                            h.onExit().get(10, TimeUnit.SECONDS);
                        } catch (Exception e) {
                            h.destroyForcibly();
                        }
                    });
        } catch (IOException | NumberFormatException e) {
            log.debug("ignoring pid file {}: {}", pidFile, e.toString());
        }
    }

    private static boolean ping(int port) {
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(1000);
            s.getOutputStream().write("PING\r\n".getBytes(StandardCharsets.US_ASCII));
            InputStream in = s.getInputStream();
            byte[] buf = new byte[7];
            int n = in.readNBytes(buf, 0, 7);
            return n == 7 && new String(buf, StandardCharsets.US_ASCII).equals("+PONG\r\n");
        } catch (IOException e) {
            return false;
        }
    }

    public static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            s.setReuseAddress(true);
            return s.getLocalPort();
        }
    }

    public int port() {
        return port;
    }

    public Path dataDir() {
        return dataDir;
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroy();
            try {
                if (!process.waitFor(15, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                }
            } catch (InterruptedException e) {
                process.destroyForcibly();
                Thread.currentThread().interrupt();
            }
            log.info("embedded redis-server stopped");
        }
    }
}
