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
 * It is supervised: a redis-server that exits while jgears runs is started again on the same port and data
 * (clients reconnect as after a Redis restart); one that keeps dying is given up on, and jgears is told.
 */
public final class EmbeddedRedis implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(EmbeddedRedis.class);

    /** Restarts allowed within {@link #RESTART_WINDOW_NANOS} before jgears gives up on its Redis. */
    private static final int MAX_RESTARTS = 3;
    private static final long RESTART_WINDOW_NANOS = TimeUnit.SECONDS.toNanos(60);

    private volatile Process process;
    private final int port;
    private final Path dataDir;
    private final List<String> command;
    private final java.util.ArrayDeque<Long> restarts = new java.util.ArrayDeque<>();
    private volatile boolean closed;
    private volatile Runnable onGiveUp = () -> { };

    private EmbeddedRedis(Process process, int port, Path dataDir, List<String> command) {
        this.process = process;
        this.port = port;
        this.dataDir = dataDir;
        this.command = command;
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
        EmbeddedRedis redis = new EmbeddedRedis(null, port, abs, cmd);
        try {
            redis.launch();
        } catch (IOException e) {
            redis.close();
            throw e;
        }
        log.info("embedded redis-server (pid {}) on 127.0.0.1:{}, data in {}, appendonly {}",
                redis.process.pid(), port, abs, appendOnly ? "yes" : "no");
        return redis;
    }

    /** Starts the redis-server process and waits until it answers PING; then watches for its exit. */
    private void launch() throws IOException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        process = p;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (System.nanoTime() < deadline) {
            if (!p.isAlive()) {
                throw new IOException("redis-server exited with code " + p.exitValue() + "; see " + dataDir.resolve("redis.log"));
            }
            if (ping(port)) {
                p.onExit().thenRun(() -> exited(p));
                return;
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        throw new IOException("redis-server did not answer on port " + port + " in time; see " + dataDir.resolve("redis.log"));
    }

    /** Called once jgears must stop because its Redis cannot be kept running. */
    public void onGiveUp(Runnable action) {
        this.onGiveUp = action;
    }

    /**
     * Told before a SHUTDOWN goes to this Redis (true) and when Redis refused it (false): an exit while
     * it is expected is the shutdown jgears asked for, not a crash, so the process is not started again.
     */
    public void expectExit(boolean expected) {
        exitExpected = expected;
    }

    private volatile boolean exitExpected;

    private synchronized void exited(Process p) {
        if (closed || p != process) {
            return;
        }
        if (exitExpected) {
            log.info("embedded redis-server (pid {}) exited after SHUTDOWN", p.pid());
            return;
        }
        long now = System.nanoTime();
        restarts.addLast(now);
        while (!restarts.isEmpty() && now - restarts.peekFirst() > RESTART_WINDOW_NANOS) {
            restarts.removeFirst();
        }
        if (restarts.size() > MAX_RESTARTS) {
            log.error("embedded redis-server exited with code {} for the {}th time within a minute; jgears stops (see {})",
                    p.exitValue(), restarts.size(), dataDir.resolve("redis.log"));
            giveUp();
            return;
        }
        log.error("embedded redis-server (pid {}) exited with code {}; starting it again on port {} (see {})",
                p.pid(), p.exitValue(), port, dataDir.resolve("redis.log"));
        try {
            launch();
            log.info("embedded redis-server restarted (pid {})", process.pid());
        } catch (IOException e) {
            log.error("embedded redis-server could not be restarted: {}; jgears stops", e.getMessage());
            giveUp();
        }
    }

    private void giveUp() {
        // On a thread of its own: the action stops jgears, which closes this object (and waits for its lock).
        Thread.ofPlatform().name("jgears-redis-gone").start(onGiveUp);
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

    /** The running redis-server's pid. */
    public long pid() {
        return process.pid();
    }

    @Override
    public synchronized void close() {
        closed = true;
        Process process = this.process;
        if (process != null && process.isAlive()) {
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
