package io.jgears.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Start-up configuration: a config file, --set and the dedicated flags set the same keys. */
class StartConfigTest {

    private static Map<String, String> configOf(String... args) throws Exception {
        Main.Start start = new Main.Start();
        new CommandLine(start).parseArgs(args);
        return start.config();
    }

    @Test
    void fileThenSetThenFlagsWithLaterOnesWinning() throws Exception {
        Path file = Files.createTempFile("jgears", ".conf");
        Files.writeString(file, "# jgears config\nMaxExecutions 50\nProfileExecutions=1\nPoolSize 2\nmyUserKey some value\n");
        Map<String, String> config = configOf("--config", file.toString(), "--set", "MaxExecutions=70", "--pool-size", "5");
        assertEquals("70", config.get("MaxExecutions"));
        assertEquals("1", config.get("ProfileExecutions"));
        assertEquals("5", config.get("PoolSize"));
        assertEquals("some value", config.get("myUserKey"));
    }

    @Test
    void badValuesAreRefusedAtStartUp() throws Exception {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> configOf("--set", "MaxExecutions=lots"));
        assertTrue(e.getMessage().contains("MaxExecutions"), e.getMessage());
        assertEquals(2, new CommandLine(new Main.Start()).execute("--set", "ExecutionTimeout=-1"));
        assertEquals(2, new CommandLine(new Main.Start()).execute("--set", "PreImports=json;import os"));
        assertEquals("json, re", configOf("--set", "PreImports=json, re").get("PreImports"));
        assertEquals(2, new CommandLine(new Main.Start()).execute("--config", "/nonexistent/jgears.conf"));
    }

    /** Runs the jgears command line as main() does, returning its exit code and what it printed on stderr. */
    private static Object[] run(String... args) {
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        java.io.PrintStream saved = System.err;
        int rc;
        try {
            System.setErr(new java.io.PrintStream(err, true));
            CommandLine cli = Main.commandLine();
            cli.setErr(new java.io.PrintWriter(System.err, true));
            rc = cli.execute(args);
        } finally {
            System.setErr(saved);
        }
        return new Object[]{rc, err.toString().strip()};
    }

    @Test
    void aBadFlagIsOneLineAndExitCode2() {
        Object[] r = run("start", "--no-such-flag");
        assertEquals(2, r[0]);
        String printed = (String) r[1];
        assertEquals(1, printed.lines().count(), printed);
        assertTrue(printed.startsWith("jgears: Unknown option: '--no-such-flag'"), printed);
        r = run("start", "--port", "notanumber");
        assertEquals(2, r[0]);
        assertEquals(1, ((String) r[1]).lines().count(), (String) r[1]);
        assertTrue(((String) r[1]).contains("--port"), (String) r[1]);
    }

    @Test
    void aPortInUseIsOneLineAndExitCode2() throws Exception {
        io.jgears.redis.EmbeddedRedis redis = io.jgears.redis.EmbeddedRedis.start(Files.createTempDirectory("jgears-port"), false);
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 50, java.net.InetAddress.getByName("127.0.0.1"))) {
            Object[] r = run("start", "--port", String.valueOf(taken.getLocalPort()), "--pool-size", "1",
                    "--redis", "redis://127.0.0.1:" + redis.port(), "--data", Files.createTempDirectory("jgears-port-data").toString());
            assertEquals(2, r[0]);
            String printed = (String) r[1];
            String last = printed.lines().reduce((a, b) -> b).orElse("");
            assertTrue(last.startsWith("jgears: cannot start:") && last.contains(String.valueOf(taken.getLocalPort())), printed);
            assertEquals(1, printed.lines().filter(l -> l.startsWith("jgears:") || l.startsWith("\tat ")).count(),
                    "one line, no stack trace: " + printed);
        } finally {
            redis.close();
        }
    }

    @Test
    void announceIsForClusterNodesAndNeedsAHostAndAPort() {
        Object[] r = run("start", "--announce", "10.0.0.5:7000", "--port", "0");
        assertEquals(2, r[0]);
        assertEquals("jgears: --announce is for a cluster node (--cluster)", r[1]);
        r = run("start", "--cluster", "--redis", "redis://127.0.0.1:1", "--announce", "10.0.0.5:99999", "--port", "0");
        assertEquals(2, r[0]);
        assertEquals("jgears: --announce: '99999' is not a port (1 to 65535)", r[1]);
    }

    /**
     * The metrics endpoint starts as soon as jgears listens, before the pool is full: a metrics port in use
     * still ends the start-up with one line and exit code 2, and the RESP port it had opened is closed again.
     */
    @Test
    void aMetricsPortInUseIsOneLineAndExitCode2AndNothingIsLeftListening() throws Exception {
        io.jgears.redis.EmbeddedRedis redis = io.jgears.redis.EmbeddedRedis.start(Files.createTempDirectory("jgears-metrics"), false);
        int port = io.jgears.redis.EmbeddedRedis.freePort();
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 50, java.net.InetAddress.getByName("127.0.0.1"))) {
            Object[] r = run("start", "--port", String.valueOf(port), "--pool-size", "1",
                    "--metrics-port", String.valueOf(taken.getLocalPort()),
                    "--redis", "redis://127.0.0.1:" + redis.port(), "--data", Files.createTempDirectory("jgears-metrics-data").toString());
            assertEquals(2, r[0]);
            String printed = (String) r[1];
            String last = printed.lines().reduce((a, b) -> b).orElse("");
            assertTrue(last.startsWith("jgears: cannot start: metrics port " + taken.getLocalPort()), printed);
            assertEquals(1, printed.lines().filter(l -> l.startsWith("jgears:") || l.startsWith("\tat ")).count(),
                    "one line, no stack trace: " + printed);
            assertThrows(java.net.ConnectException.class, () -> new java.net.Socket("127.0.0.1", port).close(),
                    "the RESP port is closed after the failed start-up");
        } finally {
            redis.close();
        }
    }

    @Test
    void anUnreachableRedisIsOneLineAndExitCode2() throws Exception {
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        java.io.PrintStream saved = System.err;
        int rc;
        try (java.net.ServerSocket closed = new java.net.ServerSocket(0)) {
            int port = closed.getLocalPort();
            closed.close();
            System.setErr(new java.io.PrintStream(err, true));
            rc = new CommandLine(new Main.Start()).execute("--port", "0", "--redis", "redis://127.0.0.1:" + port);
        } finally {
            System.setErr(saved);
        }
        assertEquals(2, rc);
        String printed = err.toString().strip();
        assertTrue(printed.startsWith("jgears: cannot start: Redis at 127.0.0.1:") && printed.contains("unreachable"), printed);
        assertEquals(1, printed.lines().count(), printed);
    }
}
