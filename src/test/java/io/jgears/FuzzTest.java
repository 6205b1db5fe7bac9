package io.jgears;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Hostile input, bounded in count and time, loopback only: thousands of random and mutated RESP frames,
 * then RG.PYEXECUTE payloads built from hostile fragments. Afterwards jgears still answers, the data in
 * Redis is intact, and no session, registration, time event or context is left behind.
 */
class FuzzTest extends GearsTestBase {
    private static final int FRAMES = 4000;
    private static final int SCRIPTS = 60;
    private static final byte[][] TEMPLATES = {
            RawResp.command("SET", "fuzz:x", "v"), RawResp.command("GET", "fuzz:x"), RawResp.command("PING"),
            RawResp.command("HSET", "fuzz:h", "f", "v"), RawResp.command("RG.PYEXECUTE", "GB().run('fuzz:*')"),
            RawResp.command("RG.GETRESULTS", "x"), RawResp.command("RG.DUMPEXECUTIONS"),
            RawResp.command("RG.CONFIGGET", "MaxExecutions"), RawResp.command("MULTI"), RawResp.command("EXEC"),
            RawResp.command("SUBSCRIBE", "fuzz"), RawResp.command("RG.TRIGGER", "nosuch"),
            "*3\r\n$3\r\nSET\r\n$6\r\nfuzz:y\r\n$999999999\r\n".getBytes(StandardCharsets.US_ASCII),
            "*2147483647\r\n".getBytes(StandardCharsets.US_ASCII), "$-5\r\n".getBytes(StandardCharsets.US_ASCII),
            "PING fuzz\r\n".getBytes(StandardCharsets.US_ASCII), "*1\r\n:12\r\n".getBytes(StandardCharsets.US_ASCII),
    };
    private static final String[] FRAGMENTS = {
            "while True:\n    pass\n", "def f(n):\n    return f(n + 1)\nf(0)\n", "x = 'a' * 10**7\n", "raise SystemExit(1)\n",
            "import os\nos.close(3)\n", "import os\nos.listdir('/')\n", "open('/etc/passwd')\n", "import ctypes\n",
            "import java\n", "import sys\nsys.setrecursionlimit(10**9)\n", "GB().map(lambda r: 1/0).run('fuzz:*')\n",
            "GB('ShardsIDReader').run()\n", "GB('StreamReader').run('fuzz:nostream')\n", "execute('FLUSHALL', 'NOT-AN-OPTION')\n",
            "execute('SELECT', 3)\n", "execute('DEL', '{jgears}:sessions')\n", "registerTimer(-1, None)\n",
            "registerTimer(5, lambda: 1/0, oneshot=True)\n", "GB().register(prefix=None, mode='x')\n",
            "GB('CommandReader').register(trigger=3)\n", "import json\njson.dumps = None\n", "del __builtins__\n",
            "gearsFuture().continueRun(1)\n", "\u0000\u0001\u00ff", "é∂ƒ©˙∆˚¬\n", "(((((((((", "lambda: \n",
            "GB().register(prefix='fuzz:reg:*')\n", "import polyglot\npolyglot.import_value('jgears').finish('x', [], [], None)\n",
    };

    @Test
    void randomAndMutatedInputLeavesJgearsAndTheDataIntact() throws Exception {
        var direct = TestServer.redisDirect();
        for (int i = 0; i < 50; i++) {
            direct.set("sentinel:" + i, "value-" + i);
        }
        long sessions = stat("sessions");
        var engine = TestServer.get().engine();
        engine.pool().awaitFull(120, java.util.concurrent.TimeUnit.SECONDS);
        int contexts = engine.python().liveContexts();
        Set<String> registrationsBefore = new HashSet<>();
        engine.registrations().all().forEach(r -> registrationsBefore.add(r.id()));
        Set<String> timeEventsBefore = new HashSet<>();
        engine.timeEvents().all().forEach(t -> timeEventsBefore.add(t.id()));
        call("RG.CONFIGSET", "ExecutionTimeout", "500");
        Random random = new Random(20261125);
        try {
            Socket socket = null;
            for (int i = 0; i < FRAMES; i++) {
                if (socket == null || socket.isClosed()) {
                    socket = new Socket("127.0.0.1", TestServer.port());
                    socket.setSoTimeout(2);
                }
                try {
                    socket.getOutputStream().write(frame(random));
                    drain(socket.getInputStream());
                } catch (IOException e) {
                    socket.close();  // jgears closed it after a protocol error: a new connection next time
                }
            }
            if (socket != null) {
                socket.close();
            }
            for (int i = 0; i < SCRIPTS; i++) {
                StringBuilder code = new StringBuilder();
                int parts = 1 + random.nextInt(3);
                for (int p = 0; p < parts; p++) {
                    code.append(FRAGMENTS[random.nextInt(FRAGMENTS.length)]);
                }
                try (RawResp c = new RawResp(TestServer.port())) {
                    c.send("RG.PYEXECUTE", code.toString()).read();
                }
            }
        } finally {
            call("RG.CONFIGSET", "ExecutionTimeout", "0");
        }
        // What the fuzzed scripts registered goes away through the normal commands.
        engine.registrations().all().stream().filter(r -> !registrationsBefore.contains(r.id()))
                .forEach(r -> call("RG.UNREGISTER", r.id()));
        engine.timeEvents().all().stream().filter(t -> !timeEventsBefore.contains(t.id()))
                .forEach(t -> call("RG.UNREGISTERTE", t.id()));

        assertEquals("PONG", call("PING"));
        for (int i = 0; i < 50; i++) {
            assertEquals("value-" + i, direct.get("sentinel:" + i), "sentinel:" + i);
        }
        assertEquals(List.of("ok"), results("GB('ShardsIDReader').map(lambda x: 'ok').run()"));
        awaitSessions(sessions);
        engine.pool().awaitFull(120, java.util.concurrent.TimeUnit.SECONDS);
        long deadline = System.currentTimeMillis() + 120_000;
        while (engine.python().liveContexts() != contexts && System.currentTimeMillis() < deadline) {
            Thread.sleep(20);
        }
        assertEquals(contexts, engine.python().liveContexts(), "live contexts back to where they were (sessions and pool)");
    }

    /** A random frame: garbage, a template, or a template with bytes flipped, inserted, cut or repeated. */
    private static byte[] frame(Random random) {
        int kind = random.nextInt(10);
        if (kind == 0) {
            byte[] garbage = new byte[1 + random.nextInt(200)];
            random.nextBytes(garbage);
            return garbage;
        }
        byte[] t = TEMPLATES[random.nextInt(TEMPLATES.length)].clone();
        if (kind < 4) {
            return t;
        }
        int mutations = 1 + random.nextInt(4);
        for (int m = 0; m < mutations && t.length > 0; m++) {
            int at = random.nextInt(t.length);
            switch (random.nextInt(4)) {
                case 0 -> t[at] = (byte) random.nextInt(256);
                case 1 -> t = java.util.Arrays.copyOf(t, at + 1);
                case 2 -> {
                    byte[] longer = new byte[t.length + 1];
                    System.arraycopy(t, 0, longer, 0, at);
                    longer[at] = (byte) "\r\n*$:+-0123456789".charAt(random.nextInt(17));
                    System.arraycopy(t, at, longer, at + 1, t.length - at);
                    t = longer;
                }
                default -> {
                    byte[] twice = new byte[t.length * 2];
                    System.arraycopy(t, 0, twice, 0, t.length);
                    System.arraycopy(t, 0, twice, t.length, t.length);
                    t = twice;
                }
            }
        }
        return t;
    }

    private static void drain(InputStream in) throws IOException {
        byte[] buf = new byte[8192];
        try {
            while (in.read(buf) > 0) {
                // replies are not checked: only that jgears survives and stays correct
            }
            throw new IOException("closed by jgears");
        } catch (SocketTimeoutException e) {
            // nothing more for now
        }
    }
}
