package io.jgears.requirements;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;

/**
 * The requirement store under {@code RequirementsDir}: what {@code RG.PYEXECUTE ... REQUIREMENTS} installs.
 * pip (a CPython with pip, {@code PythonPip}) resolves a requirement and its dependencies and downloads
 * their wheels; jgears keeps only pure-Python wheels and unpacks each into a directory of its own,
 * {@code <dist>-<version>/}, that sessions read through their import hook (never written by them).
 * <p>
 * Layout: {@code wheels/} the downloaded wheel files (kept for RG.PYEXPORTREQ), {@code <dist>-<version>/}
 * the unpacked wheels, {@code reqs/<name>.req} one file per requirement (its version and wheel names).
 * Installs run one at a time on a thread of their own, never on a client's event loop.
 */
public final class Requirements implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Requirements.class);
    /** The Python version GraalPy implements: pip resolves for it, not for the CPython that runs pip. */
    static final String GRAALPY_PYTHON_VERSION = "3.12";
    static final String EXPORT_MAGIC = "JGEARSREQ1";
    /** name-version(-build)?-python-abi-platform.whl */
    private static final Pattern WHEEL = Pattern.compile("([^-]+)-([^-]+)(?:-[0-9][^-]*)?-([^-]+)-([^-]+)-([^-]+)\\.whl");

    /** Where pip comes from and where it looks; read at each install, so RG.CONFIGSET applies to the next. */
    public record PipSettings(String python, String indexUrl, String findLinks, long timeoutSeconds) {
    }

    /** One requirement as RG.PYDUMPREQS shows it. */
    public record Requirement(String name, long version, List<String> wheels, boolean downloaded, boolean installed) {
    }

    /** A requirement that could not be installed; the message is the client's error text. */
    public static final class InstallException extends RuntimeException {
        public InstallException(String message) {
            super(message, null, false, false);
        }
    }

    private final Path root;
    private final Supplier<PipSettings> settings;
    private final Map<String, Requirement> byName = new ConcurrentHashMap<>();
    private final ExecutorService installer = Executors.newSingleThreadExecutor(
            r -> Thread.ofPlatform().name("jgears-requirements").daemon().unstarted(r));
    private final String compiledOs;

    public Requirements(Path root, Supplier<PipSettings> settings) {
        this.root = root.toAbsolutePath().normalize();
        this.settings = settings;
        this.compiledOs = detectOs();
        load();
    }

    public Path root() {
        return root;
    }

    public String compiledOs() {
        return compiledOs;
    }

    private void load() {
        Path reqs = root.resolve("reqs");
        if (!Files.isDirectory(reqs)) {
            return;
        }
        try (DirectoryStream<Path> files = Files.newDirectoryStream(reqs, "*.req")) {
            for (Path f : files) {
                List<String> lines = Files.readAllLines(f, StandardCharsets.UTF_8);
                if (lines.size() < 2) {
                    continue;
                }
                String name = lines.get(0);
                long version = Long.parseLong(lines.get(1));
                List<String> wheels = List.copyOf(lines.subList(2, lines.size()));
                byName.put(key(name), new Requirement(name, version, wheels, true, installedDirsExist(wheels)));
            }
        } catch (IOException | RuntimeException e) {
            log.warn("could not read the requirement store {}: {}", reqs, e.toString());
        }
        if (!byName.isEmpty()) {
            log.info("requirement store {}: {} requirements", root, byName.size());
        }
    }

    /** Requirements are named as given; pip's own names are case-insensitive, and so is the store. */
    private static String key(String name) {
        return name.trim().toLowerCase(Locale.ROOT);
    }

    public Requirement find(String name) {
        return byName.get(key(name));
    }

    public List<Requirement> all() {
        List<Requirement> out = new ArrayList<>(byName.values());
        out.sort(Comparator.comparing(Requirement::name));
        return out;
    }

    /** Whether every named requirement is installed already (no pip run needed). */
    public boolean allInstalled(List<String> names) {
        for (String n : names) {
            Requirement r = find(n);
            if (r == null || !r.installed()) {
                return false;
            }
        }
        return true;
    }

    /**
     * Installs the requirements not installed yet (all of them with {@code force}), one after the other on
     * the installer thread. Completes with them, or exceptionally with an {@link InstallException}.
     */
    public CompletableFuture<List<Requirement>> ensure(List<String> names, boolean force) {
        for (String n : names) {
            checkName(n);
        }
        if (!force && allInstalled(names)) {
            return CompletableFuture.completedFuture(names.stream().map(this::find).toList());
        }
        return CompletableFuture.supplyAsync(() -> {
            List<Requirement> out = new ArrayList<>();
            for (String n : names) {
                Requirement r = find(n);
                out.add(!force && r != null && r.installed() ? r : install(n, force));
            }
            return out;
        }, installer);
    }

    /** A pip requirement string, never an option (pip reads arguments starting with '-' as options). */
    static void checkName(String name) {
        String n = name.trim();
        if (n.isEmpty() || n.startsWith("-") || n.length() > 512 || n.chars().anyMatch(c -> c < 0x20)) {
            throw new InstallException("Could not satisfy requirements: '" + name + "' is not a requirement (a pip requirement such as pkg or pkg==1.2)");
        }
    }

    private Requirement install(String name, boolean force) {
        long start = System.nanoTime();
        Path tmp;
        try {
            Files.createDirectories(root.resolve("reqs"));
            Files.createDirectories(root.resolve("wheels"));
            tmp = Files.createTempDirectory(root, ".download-");
        } catch (IOException e) {
            throw new InstallException("Could not satisfy requirements: cannot write the requirement store " + root + " (" + e.getMessage() + ")");
        }
        try {
            runPip(name, tmp);
            List<Path> wheels = new ArrayList<>();
            try (Stream<Path> files = Files.list(tmp)) {
                files.sorted().forEach(wheels::add);
            }
            for (Path w : wheels) {
                checkPure(name, w.getFileName().toString());
            }
            Requirement r = store(name, wheels, force);
            log.info("requirement '{}' installed in {} ms: {}", name, (System.nanoTime() - start) / 1_000_000, r.wheels());
            return r;
        } catch (IOException e) {
            throw new InstallException("Could not satisfy requirements: " + name + ": " + e.getMessage());
        } finally {
            deleteTree(tmp);
        }
    }

    /** Refuses a file that is not a pure-Python wheel (its abi 'none' and platform 'any'), naming the package. */
    static void checkPure(String requirement, String file) {
        Matcher m = WHEEL.matcher(file);
        if (!m.matches()) {
            throw new InstallException("Could not satisfy requirements: " + requirement + ": " + file
                    + " is not a wheel (only pure-Python wheels can be installed)");
        }
        if (!m.group(4).equals("none") || !m.group(5).equals("any")) {
            throw new InstallException("Could not satisfy requirements: " + requirement + ": package " + m.group(1)
                    + " needs native code (" + file + "); only pure-Python wheels run in jgears' sandbox");
        }
    }

    /** Moves the wheels into the store, unpacks each (once per dist and version) and records the requirement. */
    private Requirement store(String name, List<Path> wheels, boolean force) throws IOException {
        List<String> names = new ArrayList<>();
        for (Path w : wheels) {
            String file = w.getFileName().toString();
            Path kept = root.resolve("wheels").resolve(file);
            Files.copy(w, kept, StandardCopyOption.REPLACE_EXISTING);
            Path dir = installDir(file);
            if (force && Files.isDirectory(dir)) {
                // Sessions importing from it now read the new files; none writes there.
                deleteTree(dir);
            }
            if (!Files.isDirectory(dir)) {
                unpack(kept, dir);
            }
            names.add(file);
        }
        Requirement old = find(name);
        Requirement r = new Requirement(name.trim(), old == null ? 1 : old.version() + 1, List.copyOf(names), true, true);
        List<String> lines = new ArrayList<>();
        lines.add(r.name());
        lines.add(String.valueOf(r.version()));
        lines.addAll(r.wheels());
        Path file = root.resolve("reqs").resolve(java.net.URLEncoder.encode(key(name), StandardCharsets.UTF_8) + ".req");
        Path part = file.resolveSibling(file.getFileName() + ".part");
        Files.write(part, lines, StandardCharsets.UTF_8);
        move(part, file);
        byName.put(key(name), r);
        return r;
    }

    /** {@code <dist>-<version>} of a wheel file name. */
    Path installDir(String wheelFile) {
        Matcher m = WHEEL.matcher(wheelFile);
        if (!m.matches()) {
            throw new InstallException("not a wheel: " + wheelFile);
        }
        return root.resolve(m.group(1) + "-" + m.group(2));
    }

    private boolean installedDirsExist(List<String> wheels) {
        for (String w : wheels) {
            if (!WHEEL.matcher(w).matches() || !Files.isDirectory(installDir(w))) {
                return false;
            }
        }
        return true;
    }

    /** The directories a session with these requirements imports from, in requirement order. */
    public List<Path> importRoots(List<String> names) {
        List<Path> out = new ArrayList<>();
        for (String n : names) {
            Requirement r = find(n);
            if (r == null) {
                continue;
            }
            for (String w : r.wheels()) {
                Path dir = installDir(w);
                if (!out.contains(dir)) {
                    out.add(dir);
                }
            }
        }
        return out;
    }

    /**
     * A wheel's files into {@code dir}: its purelib/platlib data go to the top, as pip installs them; scripts
     * and headers are left out (nothing runs them). Unpacked next to it first, then renamed in place.
     */
    private void unpack(Path wheel, Path dir) throws IOException {
        Path part = Files.createTempDirectory(root, ".unpack-");
        try (ZipInputStream zip = new ZipInputStream(Files.newInputStream(wheel))) {
            for (ZipEntry e; (e = zip.getNextEntry()) != null; ) {
                String name = e.getName();
                Matcher data = Pattern.compile("[^/]+\\.data/(purelib|platlib)/(.*)").matcher(name);
                if (data.matches()) {
                    name = data.group(2);
                } else if (name.matches("[^/]+\\.data/.*")) {
                    continue;
                }
                Path target = part.resolve(name).normalize();
                if (!target.startsWith(part)) {
                    throw new IOException("wheel " + wheel.getFileName() + " has an entry outside its directory: " + e.getName());
                }
                if (e.isDirectory()) {
                    Files.createDirectories(target);
                } else {
                    Files.createDirectories(target.getParent());
                    Files.copy(zip, target, StandardCopyOption.REPLACE_EXISTING);
                }
            }
            move(part, dir);
        } catch (IOException | RuntimeException e) {
            deleteTree(part);
            throw e;
        }
    }

    private static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** pip resolves the requirement with its dependencies and downloads their wheels into {@code dest}. */
    private void runPip(String name, Path dest) throws IOException {
        PipSettings s = settings.get();
        List<String> cmd = new ArrayList<>(List.of(s.python(), "-m", "pip", "download", "--dest", dest.toString(),
                "--only-binary=:all:", "--python-version", GRAALPY_PYTHON_VERSION, "--disable-pip-version-check",
                "--no-input", "--progress-bar", "off", "--timeout", "15", "--retries", "1"));
        if (s.indexUrl() != null && !s.indexUrl().isBlank()) {
            cmd.addAll(List.of("--index-url", s.indexUrl().trim()));
        } else if (s.findLinks() != null && !s.findLinks().isBlank()) {
            cmd.add("--no-index");  // a local folder alone: offline
        }
        if (s.findLinks() != null && !s.findLinks().isBlank()) {
            for (String dir : s.findLinks().split(",")) {
                cmd.addAll(List.of("--find-links", dir.trim()));
            }
        }
        cmd.add(name.trim());
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("PIP_DISABLE_PIP_VERSION_CHECK", "1");
        pb.environment().put("PIP_NO_INPUT", "1");
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new InstallException("Could not satisfy requirements: cannot run pip with PythonPip '" + s.python()
                    + "' (" + e.getMessage() + "); install python3 and python3-pip or set PythonPip");
        }
        p.getOutputStream().close();
        CompletableFuture<String> output = CompletableFuture.supplyAsync(() -> {
            try (InputStream in = p.getInputStream()) {
                return new String(in.readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }, Executors.newVirtualThreadPerTaskExecutor());
        try {
            if (!p.waitFor(s.timeoutSeconds(), TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new InstallException("Could not satisfy requirements: " + name + ": pip did not finish within "
                        + s.timeoutSeconds() + " s");
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new InstallException("Could not satisfy requirements: " + name + ": interrupted");
        }
        String out = output.join();
        if (p.exitValue() != 0) {
            log.warn("pip failed for requirement '{}' (exit {}):\n{}", name, p.exitValue(), out.strip());
            throw new InstallException("Could not satisfy requirements: " + name + ": " + pipError(out));
        }
        log.debug("pip output for '{}':\n{}", name, out);
    }

    /** pip's ERROR lines, the reason for the client (the whole output goes to the log). */
    static String pipError(String output) {
        StringBuilder b = new StringBuilder();
        for (String line : output.split("\n")) {
            if (line.startsWith("ERROR:")) {
                b.append(b.isEmpty() ? "" : " ").append(line.substring(6).trim());
            }
        }
        if (b.isEmpty()) {
            String[] lines = output.strip().split("\n");
            b.append(lines.length == 0 ? "pip failed" : lines[lines.length - 1].trim());
        }
        return b.length() > 600 ? b.substring(0, 600) + "..." : b.toString();
    }

    // ------------------------------------------------------------------ export / import

    /** RG.PYEXPORTREQ: [magic, name, wheel file, wheel bytes, ...]; null when no such requirement. */
    public List<byte[]> export(String name) throws IOException {
        Requirement r = find(name);
        if (r == null || !r.installed()) {
            return null;
        }
        List<byte[]> out = new ArrayList<>();
        out.add(EXPORT_MAGIC.getBytes(StandardCharsets.UTF_8));
        out.add(r.name().getBytes(StandardCharsets.UTF_8));
        for (String w : r.wheels()) {
            out.add(w.getBytes(StandardCharsets.UTF_8));
            out.add(Files.readAllBytes(root.resolve("wheels").resolve(w)));
        }
        return out;
    }

    /** RG.PYIMPORTREQ: the parts RG.PYEXPORTREQ gave, installed here without pip (the wheels are all there). */
    public CompletableFuture<Requirement> importData(List<byte[]> parts) {
        if (parts.size() < 2 || !EXPORT_MAGIC.equals(new String(parts.getFirst(), StandardCharsets.UTF_8))) {
            throw new InstallException("Bad serialization format on reading requirement name");
        }
        if (parts.size() % 2 != 0) {
            throw new InstallException("Bad serialization format on reading requirement wheels");
        }
        String name = new String(parts.get(1), StandardCharsets.UTF_8);
        checkName(name);
        for (int i = 2; i < parts.size(); i += 2) {
            String file = new String(parts.get(i), StandardCharsets.UTF_8);
            if (file.contains("/") || file.contains("\\") || file.startsWith(".")) {
                throw new InstallException("Bad serialization format: bad wheel name " + file);
            }
            checkPure(name, file);
        }
        return CompletableFuture.supplyAsync(() -> {
            Path tmp = null;
            try {
                Files.createDirectories(root.resolve("reqs"));
                Files.createDirectories(root.resolve("wheels"));
                tmp = Files.createTempDirectory(root, ".import-");
                List<Path> wheels = new ArrayList<>();
                for (int i = 2; i < parts.size(); i += 2) {
                    Path w = tmp.resolve(new String(parts.get(i), StandardCharsets.UTF_8));
                    Files.write(w, parts.get(i + 1));
                    wheels.add(w);
                }
                return store(name, wheels, false);
            } catch (IOException e) {
                throw new InstallException("Could not import requirement " + name + ": " + e.getMessage());
            } finally {
                if (tmp != null) {
                    deleteTree(tmp);
                }
            }
        }, installer);
    }

    // ------------------------------------------------------------------ reading modules for sessions

    private static final Pattern MODULE_NAME = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*");

    /**
     * Finds module {@code fullname} in the given roots (a session's requirements): {@code [kind, origin,
     * source]} with kind {@code package}, {@code module} or {@code namespace} (origin then the directories,
     * separated by newlines, and no source), or null.
     */
    public static String[] findModule(List<Path> roots, String fullname) {
        if (roots.isEmpty() || !MODULE_NAME.matcher(fullname).matches()) {
            return null;
        }
        String rel = fullname.replace('.', '/');
        List<String> namespace = new ArrayList<>();
        try {
            for (Path r : roots) {
                Path pkg = r.resolve(rel);
                Path init = pkg.resolve("__init__.py");
                if (Files.isRegularFile(init)) {
                    return new String[]{"package", init.toString(), Files.readString(init, StandardCharsets.UTF_8)};
                }
                Path mod = r.resolve(rel + ".py");
                if (Files.isRegularFile(mod)) {
                    return new String[]{"module", mod.toString(), Files.readString(mod, StandardCharsets.UTF_8)};
                }
                if (Files.isDirectory(pkg)) {
                    namespace.add(pkg.toString());
                }
            }
        } catch (IOException e) {
            return null;
        }
        return namespace.isEmpty() ? null : new String[]{"namespace", String.join("\n", namespace), ""};
    }

    private static String detectOs() {
        String codename = "unknown";
        try {
            for (String line : Files.readAllLines(Path.of("/etc/os-release"))) {
                if (line.startsWith("VERSION_CODENAME=")) {
                    codename = line.substring(17).replace("\"", "");
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, or no os-release: 'unknown'
        }
        String arch = System.getProperty("os.arch", "").equals("amd64") ? "x64" : System.getProperty("os.arch", "");
        return System.getProperty("os.name", "").toLowerCase(Locale.ROOT).replace(' ', '_') + "-" + codename + "-" + arch;
    }

    private static void deleteTree(Path dir) {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    // left behind: a temporary directory, harmless
                }
            });
        } catch (IOException e) {
            // as above
        }
    }

    @Override
    public void close() {
        installer.shutdownNow();
    }
}
