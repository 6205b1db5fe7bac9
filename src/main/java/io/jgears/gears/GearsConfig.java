package io.jgears.gears;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * RedisGears configuration keys (same names and defaults) plus jgears' own. Unknown keys set with
 * RG.CONFIGSET are user configuration, readable from Python with configGet().
 */
public final class GearsConfig {
    public static final String MAX_EXECUTIONS = "MaxExecutions";
    public static final String MAX_EXECUTIONS_PER_REGISTRATION = "MaxExecutionsPerRegistration";
    public static final String PROFILE_EXECUTIONS = "ProfileExecutions";
    public static final String PYTHON_ATTEMPT_TRACEBACK = "PythonAttemptTraceback";
    public static final String EXECUTION_MAX_IDLE_TIME = "ExecutionMaxIdleTime";
    public static final String EXECUTION_THREADS = "ExecutionThreads";
    /** jgears: warm sub-interpreters kept ready. */
    public static final String POOL_SIZE = "PoolSize";
    /**
     * jgears: milliseconds one call into Python for an RG.PYEXECUTE script or its executions may run before
     * it is interrupted; 0 (default, as RedisGears has no such limit) is no limit.
     */
    public static final String EXECUTION_TIMEOUT = "ExecutionTimeout";
    /** jgears: the same limit for registration executions and time event callbacks; 0 (default) is no limit. */
    public static final String REGISTRATION_TIMEOUT = "RegistrationTimeout";
    /**
     * jgears: percent of the maximum heap above which (after a GC) the Python call that allocated the most
     * since it started is interrupted; 0 turns the guard off.
     */
    public static final String MEMORY_WATERMARK = "MemoryWatermark";
    /** jgears: largest script RG.PYEXECUTE accepts, in bytes. */
    public static final String MAX_SCRIPT_SIZE = "MaxScriptSize";

    /**
     * jgears: modules every pooled context imports ahead of time (comma separated), so that scripts
     * importing them pay nothing on the request path; each costs context-creation time (json ~170 ms).
     */
    public static final String PRE_IMPORTS = "PreImports";

    /** jgears: isolation of RG.PYEXECUTE sessions that do not say: 'interpreter' (default) or 'shared'. */
    public static final String DEFAULT_ISOLATION = "DefaultIsolation";

    /**
     * jgears: how many events of one async key registration may run at once (their execute() calls then
     * overlap their Redis round trips); events of one key always run in arrival order; 1 runs every event in
     * arrival order. Carrier lanes (the default, see io.jgears.engine.Lanes) pipeline the round trips: 128
     * measured best. Platform lanes (where carrier lanes are off) contend for the context's GIL: on 2 cores
     * 2-4 measured best, so their default is 4.
     */
    public static final String KEY_EVENT_CONCURRENCY = "KeyEventConcurrency";
    /** The most lanes KeyEventConcurrency may ask for (each is a virtual thread inside the context). */
    public static final int MAX_KEY_EVENT_CONCURRENCY = 256;
    /** Threads running Python: its frames are deep on the JVM stack while code is still interpreted; leave RecursionError room. */
    public static final long PYTHON_THREAD_STACK = 16L << 20;

    /**
     * jgears: a command registration (RG.TRIGGER) or shared-mode script whose recent calls each ran under this
     * many microseconds runs on the client's event loop thread instead of an execution thread, saving two
     * thread hand-offs; a longer inline call sends it back (see InlineGate). 0 turns this off.
     */
    public static final String INLINE_EXECUTION_MICROS = "InlineExecutionMicros";

    /**
     * jgears: the Redis database (SELECT index) where jgears keeps its own state, the stored sessions, out
     * of the keyspace clients use; it must differ from that one.
     */
    public static final String STATE_DATABASE = "StateDatabase";

    /** jgears: the CPython (with pip) that resolves and downloads requirements: a path or a name on PATH. */
    public static final String PYTHON_PIP = "PythonPip";
    /** jgears: the package index pip uses (pip's --index-url); empty is pip's default, PyPI, unless find-links alone is set. */
    public static final String PYTHON_INDEX_URL = "PythonIndexUrl";
    /** jgears: local folders of wheels (comma separated, pip's --find-links); alone, pip works offline (--no-index). */
    public static final String PYTHON_FIND_LINKS = "PythonFindLinks";
    /** jgears: where installed requirements are kept (start-up only; default DATA/requirements). */
    public static final String REQUIREMENTS_DIR = "RequirementsDir";
    /** jgears: seconds one pip run may take before it is killed and the install fails. */
    public static final String PYTHON_INSTALL_TIMEOUT = "PythonInstallTimeout";
    /** jgears: network access of sessions that do not say (ALLOW): none (default), all, or host:port,... */
    public static final String PYTHON_ALLOW_NETWORK = "PythonAllowNetwork";
    /** jgears: 1 lets sessions that ask for it (ALLOW threads) start threads; start-up only, default 0. */
    public static final String PYTHON_ALLOW_THREADS = "PythonAllowThreads";

    /** Keys only read at start-up; RG.CONFIGSET refuses them. */
    private static final java.util.Set<String> START_ONLY = java.util.Set.of(EXECUTION_THREADS, PRE_IMPORTS, STATE_DATABASE,
            REQUIREMENTS_DIR, PYTHON_ALLOW_THREADS);
    /**
     * RedisGears' Python plugin keys about installing Python and its packages: readable, never settable at
     * runtime (RedisGears refuses them with its own text). jgears installs nothing: their values are empty.
     */
    private static final java.util.Set<String> PLUGIN_READ_ONLY = java.util.Set.of("CreateVenv", "DownloadDeps",
            "ForeceDownloadDepsOnEnterprise", "DependenciesUrl", "DependenciesSha256", "PythonInstallationDir");

    private final Map<String, String> builtIn = new LinkedHashMap<>();
    private final Map<String, String> values = new ConcurrentHashMap<>();
    private final Map<String, String> canonical = new ConcurrentHashMap<>();

    public GearsConfig() {
        builtIn.put(MAX_EXECUTIONS, "1000");
        builtIn.put(MAX_EXECUTIONS_PER_REGISTRATION, "100");
        builtIn.put(PROFILE_EXECUTIONS, "0");
        builtIn.put(PYTHON_ATTEMPT_TRACEBACK, "1");
        builtIn.put(EXECUTION_MAX_IDLE_TIME, "5000");
        builtIn.put(EXECUTION_THREADS, "3");
        builtIn.put("PythonInstallReqMaxIdleTime", "30000");
        builtIn.put("CreateVenv", "0");
        builtIn.put("DownloadDeps", "0");
        builtIn.put("ForeceDownloadDepsOnEnterprise", "0");
        builtIn.put("DependenciesUrl", "");
        builtIn.put("DependenciesSha256", "");
        builtIn.put("PythonInstallationDir", "");
        builtIn.put(POOL_SIZE, "4");
        builtIn.put(EXECUTION_TIMEOUT, "0");
        builtIn.put(REGISTRATION_TIMEOUT, "0");
        builtIn.put(MEMORY_WATERMARK, "85");
        builtIn.put(DEFAULT_ISOLATION, "interpreter");
        builtIn.put(KEY_EVENT_CONCURRENCY, io.jgears.engine.Lanes.available() ? "128" : "4");
        builtIn.put(INLINE_EXECUTION_MICROS, "500");
        builtIn.put(MAX_SCRIPT_SIZE, String.valueOf(16 * 1024 * 1024));
        builtIn.put(PRE_IMPORTS, "json,re,math,random,itertools,functools,collections");
        builtIn.put(STATE_DATABASE, "15");
        builtIn.put(PYTHON_PIP, "python3");
        builtIn.put(PYTHON_INDEX_URL, "");
        builtIn.put(PYTHON_FIND_LINKS, "");
        builtIn.put(REQUIREMENTS_DIR, "data/requirements");
        builtIn.put(PYTHON_INSTALL_TIMEOUT, "300");
        builtIn.put(PYTHON_ALLOW_NETWORK, "none");
        builtIn.put(PYTHON_ALLOW_THREADS, "0");
        for (Map.Entry<String, String> e : builtIn.entrySet()) {
            values.put(e.getKey(), e.getValue());
            canonical.put(e.getKey().toLowerCase(Locale.ROOT), e.getKey());
        }
    }

    /**
     * Keys of RedisGears' own configuration (not its Python plugin's, which it keeps with the extra keys):
     * configGet() in a script reads only the extra keys there, so for these it answers None.
     */
    private static final java.util.Set<String> REDISGEARS_CORE = java.util.Set.of(MAX_EXECUTIONS,
            MAX_EXECUTIONS_PER_REGISTRATION, PROFILE_EXECUTIONS, EXECUTION_MAX_IDLE_TIME, EXECUTION_THREADS);

    /** What configGet() in a script reads: null for RedisGears' own keys, as there. */
    public String getForScript(String key) {
        String name = canonicalName(key);
        return REDISGEARS_CORE.contains(name) ? null : values.get(name);
    }

    /** A key as jgears keeps it: a built-in key in its own case, whatever case it was given in. */
    private String canonicalName(String key) {
        return canonical.getOrDefault(key.toLowerCase(Locale.ROOT), key);
    }

    public boolean isBuiltIn(String key) {
        return canonical.containsKey(key.toLowerCase(Locale.ROOT));
    }

    /** The value, or null when the key is neither built in nor set by a user. */
    public String get(String key) {
        String name = canonicalName(key);
        return values.get(name);
    }

    /**
     * Parsed once per value: the per-call paths (a trigger, a batch of key events) read several numeric keys
     * each time, and lower-casing, two map lookups and a parse per read showed in their profiles.
     */
    public long getLong(String key) {
        Long cached = longs.get(key);
        if (cached != null) {
            return cached;
        }
        synchronized (this) {  // with the writers: a value parsed here is never older than the last set
            return longs.computeIfAbsent(key, k -> Long.parseLong(get(k)));
        }
    }

    private final Map<String, Long> longs = new ConcurrentHashMap<>();

    private synchronized void put(String name, String value) {
        values.put(name, value);
        longs.clear();
    }

    /** Sets a key at start-up (flags, config file): start-only keys are allowed here. */
    public void setInitial(String key, String value) {
        String name = canonicalName(key);
        validate(name, value);
        put(name, value);
    }

    /**
     * RG.CONFIGSET: returns the reply text for this pair.
     *
     * @throws IllegalArgumentException for a bad value or a key that is only read at start-up
     */
    public String set(String key, String value) {
        String name = canonical.get(key.toLowerCase(Locale.ROOT));
        if (name == null) {
            put(key, value);
            return "OK - value was saved in extra config dictionary";
        }
        if (START_ONLY.contains(name)) {
            throw new IllegalArgumentException("Config value " + name + " not modifiable at runtime");
        }
        if (PLUGIN_READ_ONLY.contains(name)) {
            throw new IllegalArgumentException(name + " is not configurable at runtime");
        }
        if (name.equals(PYTHON_ATTEMPT_TRACEBACK)) {
            // RedisGears' Python plugin keeps this one with the extra keys: their reply, any number a switch.
            try {
                put(name, Long.parseLong(value) != 0 ? "1" : "0");
            } catch (NumberFormatException e) {
                throw new PluginValueRefused("Failed setting config value for key '" + name + "' with value '" + value + "'");
            }
            return "OK - value was saved in extra config dictionary";
        }
        validate(name, value);
        put(name, value);
        return "OK";
    }

    /** A value the Python plugin's keys refuse: RedisGears' error element has no "(error) " prefix for these. */
    public static final class PluginValueRefused extends IllegalArgumentException {
        PluginValueRefused(String message) {
            super(message);
        }
    }

    private void validate(String name, String value) {
        if (name.equals(DEFAULT_ISOLATION) && !value.equals("interpreter") && !value.equals("shared")) {
            throw new IllegalArgumentException("bad value for " + name + ": '" + value + "' (interpreter or shared)");
        }
        if (name.equals(PRE_IMPORTS) && !value.matches("\\s*([A-Za-z_][A-Za-z0-9_.]*\\s*(,\\s*[A-Za-z_][A-Za-z0-9_.]*\\s*)*)?")) {
            throw new IllegalArgumentException("bad value for " + name + ": '" + value + "' (module names, comma separated)");
        }
        if (name.equals(PYTHON_ALLOW_NETWORK)) {
            try {
                io.jgears.requirements.SessionPolicy.parseNetwork(value, false);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("bad value for " + name + ": " + e.getMessage());
            }
        }
        if (name.equals(PYTHON_ALLOW_THREADS) && !value.equals("0") && !value.equals("1")) {
            throw new IllegalArgumentException("bad value for " + name + ": '" + value + "' (0 or 1)");
        }
        if (name.equals(PYTHON_PIP) && value.isBlank()) {
            throw new IllegalArgumentException("bad value for " + name + ": a python3 with pip, as a path or a name on PATH");
        }
        if (name.equals(STATE_DATABASE) && !value.matches("\\d{1,5}")) {
            throw new IllegalArgumentException("bad value for " + name + ": '" + value + "' (a database index)");
        }
        if (name.equals(MEMORY_WATERMARK) && !value.matches("\\d{1,2}|0")) {
            throw new IllegalArgumentException("bad value for " + name + ": '" + value + "' (a percent of the heap, 0-99)");
        }
        if (name.equals(KEY_EVENT_CONCURRENCY)
                && !(value.matches("[1-9][0-9]{0,2}") && Integer.parseInt(value) <= MAX_KEY_EVENT_CONCURRENCY)) {
            throw new IllegalArgumentException("bad value for " + name + ": '" + value + "' (1 to " + MAX_KEY_EVENT_CONCURRENCY + ")");
        }
        if (builtIn.containsKey(name) && builtIn.get(name).matches("\\d+")) {
            try {
                if (Long.parseLong(value) < 0) {
                    throw new NumberFormatException();
                }
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("bad value for " + name + ": '" + value + "' (a non-negative integer)");
            }
        }
    }
}
