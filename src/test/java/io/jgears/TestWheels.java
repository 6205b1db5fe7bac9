package io.jgears;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * A local folder of wheels for the requirement tests, built once per run from Debian's installed python3-*
 * packages (pg8000, six, redis, packaging, distutils) and a few generated ones (see build_wheels.py): pip
 * installs from it with --find-links and no index, offline.
 */
final class TestWheels {
    private static Path folder;

    private TestWheels() {
    }

    /** The Debian python3 that sees the python3-* packages (dist-packages). */
    static final String DEBIAN_PYTHON = "/usr/bin/python3";

    static synchronized Path folder() throws IOException, InterruptedException {
        if (folder != null) {
            return folder;
        }
        Path dir = Files.createTempDirectory("jgears-wheels");
        Path script = dir.resolve("build_wheels.py");
        try (InputStream in = TestWheels.class.getResourceAsStream("build_wheels.py")) {
            Files.write(script, in.readAllBytes());
        }
        Path out = dir.resolve("wheels");
        Process p = new ProcessBuilder(DEBIAN_PYTHON, script.toString(), out.toString()).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IllegalStateException("building the test wheels failed (needs python3-pg8000, python3-six, python3-redis, "
                    + "python3-packaging; .ci/run installs them):\n" + output);
        }
        folder = out;
        return out;
    }
}
