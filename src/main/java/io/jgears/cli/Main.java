package io.jgears.cli;

import io.jgears.JGears;
import io.jgears.server.ServerOptions;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Callable;

/** The jgears command line. */
@Command(name = "jgears", mixinStandardHelpOptions = true, version = "jgears 0.1.0",
        subcommands = {Main.Start.class},
        description = "RedisGears-style Python functions for Redis, on GraalPy sub-interpreters.")
public final class Main implements Runnable {
    @Override
    public void run() {
        CommandLine.usage(this, System.out);
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /**
     * The command line: a bad option or value is one line on stderr and exit code 2 (with a pointer to
     * --help), like every other start-up error, rather than the usage text.
     */
    static CommandLine commandLine() {
        return new CommandLine(new Main()).setParameterExceptionHandler((e, args) -> {
            String help = e.getCommandLine().getCommandName();
            e.getCommandLine().getErr().println("jgears: " + e.getMessage().lines().findFirst().orElse("bad arguments")
                    + " (see: jgears " + (help.equals("jgears") ? "" : help + " ") + "--help)");
            return 2;
        });
    }

    @Command(name = "start", mixinStandardHelpOptions = true,
            description = "Start jgears in the foreground (Ctrl-C or SIGTERM stops it, and its embedded Redis).")
    static final class Start implements Callable<Integer> {
        @Option(names = "--bind", defaultValue = "127.0.0.1", description = "Address to listen on (default ${DEFAULT-VALUE}).")
        String bind;

        @Option(names = {"-p", "--port"}, defaultValue = "6380", description = "RESP port (default ${DEFAULT-VALUE}).")
        int port;

        @Option(names = "--redis", description = "Use this Redis (redis://[user:password@]host:port) instead of starting one.")
        String redis;

        @Option(names = "--cluster", description = "The --redis is a Redis Cluster node: run as that node's jgears (see ./jgears cluster).")
        boolean cluster;

        @Option(names = "--announce", paramLabel = "HOST[:PORT]", description = "With --cluster: the address other jgears "
                + "nodes and cluster clients reach this one at (behind NAT or in a container; default: --bind and --port).")
        String announce;

        @Option(names = "--data", defaultValue = "data", description = "Data directory of the embedded Redis (default ${DEFAULT-VALUE}).")
        Path data;

        @Option(names = "--no-appendonly", description = "Embedded Redis without the append-only file.")
        boolean noAppendOnly;

        @Option(names = "--pool-size", description = "Warm sub-interpreters kept ready (config PoolSize).")
        Integer poolSize;

        @Option(names = "--execution-threads", description = "Threads running Python (config ExecutionThreads).")
        Integer executionThreads;

        @Option(names = "--config", description = "A properties file of RedisGears/jgears config keys (Key=value).")
        Path configFile;

        @Option(names = "--set", description = "A config key, Key=value; may repeat.")
        Map<String, String> set = new LinkedHashMap<>();

        @Option(names = "--max-bulk", defaultValue = "" + ServerOptions.DEFAULT_MAX_BULK,
                description = "Largest bulk string a client may send, in bytes (default ${DEFAULT-VALUE}).")
        int maxBulk;

        @Option(names = "--metrics-port", description = "Serve Prometheus metrics on http://BIND:PORT/metrics (off by default).")
        Integer metricsPort;

        @Option(names = "--max-array", defaultValue = "" + ServerOptions.DEFAULT_MAX_ARRAY,
                description = "Most arguments one command may have (default ${DEFAULT-VALUE}).")
        int maxArray;

        /** The config keys from the file, then --set, then the dedicated flags (later ones win), validated. */
        Map<String, String> config() throws IOException {
            Map<String, String> config = new LinkedHashMap<>();
            if (configFile != null) {
                Properties p = new Properties();
                try (Reader r = Files.newBufferedReader(configFile)) {
                    p.load(r);
                }
                p.stringPropertyNames().forEach(k -> config.put(k, p.getProperty(k).trim()));
            }
            config.putAll(set);
            if (poolSize != null) {
                config.put("PoolSize", poolSize.toString());
            }
            if (executionThreads != null) {
                config.put("ExecutionThreads", executionThreads.toString());
            }
            io.jgears.gears.GearsConfig check = new io.jgears.gears.GearsConfig();
            config.forEach(check::setInitial);
            return config;
        }

        @Override
        public Integer call() throws Exception {
            Map<String, String> config;
            try {
                config = config();
            } catch (IOException | IllegalArgumentException e) {
                System.err.println("jgears: bad configuration: " + e.getMessage());
                return 2;
            }
            if (cluster && redis == null) {
                System.err.println("jgears: --cluster needs --redis redis://host:port, the cluster node this jgears runs beside");
                return 2;
            }
            if (announce != null) {
                if (!cluster) {
                    System.err.println("jgears: --announce is for a cluster node (--cluster)");
                    return 2;
                }
                try {
                    JGears.parseAnnounce(announce, port);
                } catch (IllegalArgumentException e) {
                    System.err.println("jgears: " + e.getMessage());
                    return 2;
                }
            }
            JGears jgears = new JGears();
            // Registered before anything starts: Ctrl-C during start-up still stops the embedded Redis.
            Runtime.getRuntime().addShutdownHook(new Thread(jgears::close, "jgears-shutdown"));
            // The metrics endpoint starts as soon as jgears listens, not after the warm pool is full.
            java.util.concurrent.atomic.AtomicReference<io.jgears.metrics.MetricsEndpoint> metricsRef =
                    new java.util.concurrent.atomic.AtomicReference<>();
            if (metricsPort != null) {
                jgears.onListening(engine -> {
                    try {
                        metricsRef.set(io.jgears.metrics.MetricsEndpoint.start(engine, bind, metricsPort));
                    } catch (IOException e) {
                        throw new IOException("metrics port " + metricsPort + ": " + oneLine(e), e);
                    }
                });
            }
            try {
                jgears.startParts(new JGears.Options(bind, port, redis, data, !noAppendOnly, config,
                        maxBulk, maxArray, cluster, announce));
            } catch (IOException | RuntimeException e) {
                System.err.println("jgears: cannot start: " + oneLine(e));
                if (metricsRef.get() != null) {
                    metricsRef.get().close();
                }
                return 2;
            }
            io.jgears.metrics.MetricsEndpoint metrics = metricsRef.get();
            // Until SIGTERM/Ctrl-C, a SHUTDOWN command, or an embedded Redis that could not be kept running.
            int exitCode = jgears.stopped().get();
            if (metrics != null) {
                metrics.close();
            }
            return exitCode;
        }
    }

    /** A start-up failure as one line: the error and, where it says more, its root cause (no stack trace). */
    static String oneLine(Throwable e) {
        if (e instanceof java.io.UncheckedIOException u) {
            e = u.getCause();
        }
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String top = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        if (root == e || root.getMessage() == null || top.contains(root.getMessage())) {
            return top;
        }
        return top + ": " + root.getMessage();
    }
}
