package io.jgears;

import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.output.ArrayOutput;
import io.lettuce.core.output.StatusOutput;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.ProtocolKeyword;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * REQUIREMENTS installed by pip from a local wheel folder (offline), the requirement commands, and the
 * capability policy: sockets and threads refused as PermissionError by default, network allowed per session
 * (all, or a list of host:port). Restoring requirements after a restart is in WriteBehindTest.
 */
class RequirementsTest extends GearsTestBase {
    @BeforeEach
    void localWheels() throws Exception {
        call("RG.CONFIGSET", "PythonFindLinks", TestWheels.folder().toString(), "PythonIndexUrl", "");
    }

    private List<?> requirement(String name) {
        for (Object r : (List<?>) call("RG.PYDUMPREQS")) {
            List<?> entry = (List<?>) r;
            if (entry.get(3).equals(name)) {
                return entry;
            }
        }
        return null;
    }

    @Test
    void installsFromALocalFolderWithDependenciesThenFromTheStoreAndAgainWhenForced() {
        String code = "import jgtest_a\nGB('ShardsIDReader').map(lambda x: jgtest_a.VALUE + ' ' + jgtest_a.sub.hello() + ' '"
                + " + str(__import__('jgtest_dep').DEP)).run()";
        long t0 = System.nanoTime();
        assertEquals(List.of(List.of("a hello from a 2"), List.of()), py(code, "REQUIREMENTS", "jgtest_a"));
        long cold = System.nanoTime() - t0;
        t0 = System.nanoTime();
        assertEquals(List.of(List.of("a hello from a 2"), List.of()), py(code, "REQUIREMENTS", "jgtest_a"));
        long cached = System.nanoTime() - t0;
        System.out.printf("requirement jgtest_a (2 wheels): cold install + run %d ms, cached %d ms%n", cold / 1_000_000, cached / 1_000_000);
        List<?> entry = requirement("jgtest_a");
        assertEquals(List.of("GearReqVersion", 1L, "Name", "jgtest_a", "IsDownloaded", "yes", "IsInstalled", "yes", "CompiledOs"),
                entry.subList(0, 9));
        assertTrue(String.valueOf(entry.get(9)).startsWith("linux-"), String.valueOf(entry.get(9)));
        assertEquals(List.of("Wheels", List.of("jgtest_a-1.0-py3-none-any.whl", "jgtest_dep-2.0-py3-none-any.whl")), entry.subList(10, 12));

        assertEquals(List.of(List.of("a hello from a 2"), List.of()), py(code, "FORCE_REINSTALL_REQUIREMENTS", "REQUIREMENTS", "jgtest_a"));
        assertEquals(2L, requirement("jgtest_a").get(1), "reinstalled: a new GearReqVersion");
    }

    @Test
    void aSessionSeesExactlyItsOwnRequirements() {
        py("import jgtest_b", "REQUIREMENTS", "jgtest_b");
        assertTrue(pyError("import jgtest_b").contains("ModuleNotFoundError: No module named 'jgtest_b'"), "not without REQUIREMENTS");
        assertTrue(pyError("import jgtest_a", "REQUIREMENTS", "jgtest_b").contains("No module named 'jgtest_a'"),
                "not another session's requirement");
        assertTrue(pyError("import jgtest_b\nopen(jgtest_b.__file__, 'w')", "REQUIREMENTS", "jgtest_b").contains("Error"),
                "its files are not writable (no file system in the sandbox)");
    }

    @Test
    void badOrNativeRequirementsGetClearErrors() {
        String bad = pyError("x = 1", "REQUIREMENTS", "jgtest-no-such-package");
        assertTrue(bad.startsWith("Could not satisfy requirements: jgtest-no-such-package"), bad);
        assertTrue(bad.contains("No matching distribution"), bad);
        String nativeCode = pyError("x = 1", "REQUIREMENTS", "jgtest_native");
        assertTrue(nativeCode.contains("package jgtest_native needs native code"), nativeCode);
        assertTrue(pyError("x = 1", "REQUIREMENTS", "-e", ".").contains("is not a requirement"));
        for (String e : List.of(bad, nativeCode)) {
            assertFalse(e.contains("java.") || e.contains("Exception"), e);
        }
        assertEquals(null, requirement("jgtest_native"), "nothing recorded");
    }

    private static ProtocolKeyword command(String name) {
        return new ProtocolKeyword() {
            @Override
            public byte[] getBytes() {
                return name.getBytes(StandardCharsets.UTF_8);
            }

            @Override
            public String toString() {
                return name;
            }
        };
    }

    @Test
    void exportAndImportMoveARequirementAsRespData() {
        py("import jgtest_b", "REQUIREMENTS", "jgtest_b");
        List<Object> parts = conn.sync().dispatch(command("RG.PYEXPORTREQ"), new ArrayOutput<>(ByteArrayCodec.INSTANCE),
                new CommandArgs<>(ByteArrayCodec.INSTANCE).add("jgtest_b".getBytes()));
        assertEquals(4, parts.size(), "magic, name, then the one wheel's name and bytes");
        assertEquals("jgtest_b", new String((byte[]) parts.get(1), StandardCharsets.UTF_8));
        assertEquals("jgtest_b-1.0-py3-none-any.whl", new String((byte[]) parts.get(2), StandardCharsets.UTF_8));
        byte[] wheel = (byte[]) parts.get(3);
        assertTrue(wheel[0] == 'P' && wheel[1] == 'K', "a zip file");
        // Imported again under this server (as another server would): installed, version moves on.
        long before = (Long) requirement("jgtest_b").get(1);
        CommandArgs<byte[], byte[]> args = new CommandArgs<>(ByteArrayCodec.INSTANCE);
        parts.forEach(p -> args.add((byte[]) p));
        assertEquals("OK", conn.sync().dispatch(command("RG.PYIMPORTREQ"), new StatusOutput<>(ByteArrayCodec.INSTANCE), args));
        assertEquals(before + 1, requirement("jgtest_b").get(1));
        assertEquals("requirement does not exists", error("RG.PYEXPORTREQ", "nosuch"));
        assertEquals("Bad serialization format on reading requirement name", error("RG.PYIMPORTREQ", "garbage"));
    }

    @Test
    void sessionsListTheirRequirements() {
        py("import jgtest_b\nGB('CommandReader').map(lambda x: jgtest_b.VALUE).register(trigger='reqs_b')", "ID", "reqs-b",
                "REQUIREMENTS", "jgtest_b");
        try {
            assertEquals(List.of("b"), call("RG.TRIGGER", "reqs_b"));
            List<?> entry = (List<?>) ((List<?>) call("RG.PYDUMPSESSIONS", "SESSIONS", "reqs-b")).getFirst();
            assertEquals(List.of("requirementInstallationNeeded", 0L, "requirements", List.of("jgtest_b")), entry.subList(10, 14));
            List<?> verbose = (List<?>) ((List<?>) call("RG.PYDUMPSESSIONS", "VERBOSE", "SESSIONS", "reqs-b")).getFirst();
            List<?> full = (List<?>) ((List<?>) verbose.get(13)).getFirst();
            assertEquals(List.of("GearReqVersion"), full.subList(0, 1));
            assertEquals("jgtest_b", full.get(3));
        } finally {
            for (Object r : (List<?>) call("RG.DUMPREGISTRATIONS")) {
                List<?> reg = (List<?>) r;
                if (String.valueOf(reg.get(reg.size() - 1)).contains("reqs-b")) {
                    call("RG.UNREGISTER", String.valueOf(reg.get(1)));
                }
            }
        }
    }

    @Test
    void socketsAndThreadsAreRefusedAsPermissionErrorUnlessAllowed() {
        String refused = pyError("import socket\nsocket.socket()");
        assertTrue(refused.contains("PermissionError") && refused.contains("network access is not allowed"), refused);
        assertFalse(refused.contains("java") || refused.contains("oracle"), refused);
        String caught = String.valueOf(py("import socket\ntry:\n    socket.create_connection(('127.0.0.1', 1))\n"
                + "except OSError as e:\n    log(repr(e))\nGB('ShardsIDReader').map(lambda x: 'caught').run()"));
        assertTrue(caught.contains("caught"), "an ordinary exception: " + caught);
        String threads = pyError("import threading\nthreading.Thread(target=print).start()");
        assertTrue(threads.contains("PermissionError") && threads.contains("threads are not allowed"), threads);

        int port = TestServer.port();
        // select.select() on the socket, object and fileno(): jgears checks what it is given before GraalPy sees it.
        String ping = "import socket, select\ndef ping(x):\n    s = socket.create_connection(('127.0.0.1', %d), timeout=30)\n"
                + "    s.sendall(b'PING\\r\\n')\n    select.select([s], [], [], 30)\n    select.select([s.fileno()], [], [], 30)\n"
                + "    r = s.recv(16)\n    s.close()\n    return r.decode().strip().lstrip('+')\n"
                + "GB('ShardsIDReader').map(ping).run()";
        assertEquals(List.of(List.of("PONG"), List.of()), py(ping.formatted(port), "ALLOW", "network"));
        assertEquals(List.of(List.of("PONG"), List.of()), py(ping.formatted(port), "ALLOW", "network=127.0.0.1:" + port));
        List<?> other = (List<?>) ((List<?>) py(ping.formatted(port), "ALLOW", "network=127.0.0.1:1")).get(1);
        assertTrue(String.valueOf(other).contains("PermissionError") && String.valueOf(other).contains("127.0.0.1:" + port + " is not allowed"),
                String.valueOf(other));
        assertTrue(error("RG.PYEXECUTE", "x = 1", "ALLOW", "network=nohost").contains("host:port"));
        assertTrue(error("RG.PYEXECUTE", "x = 1", "ALLOW", "threads").contains("PythonAllowThreads"));
        assertTrue(error("RG.PYEXECUTE", "x = 1", "ALLOW", "files").contains("ALLOW takes"));
    }
}
