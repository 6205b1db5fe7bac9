package io.jgears;

import io.jgears.redis.RedisCommandException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * RedisGears 1.2's async API as its own tests use it: where gearsFuture() may be created and what
 * happens to one that is not returned or never continued, futures in accumulating steps, coroutines where
 * they are refused, awaiting run(), isAsyncAllow(), RG.* commands inside MULTI and from execute().
 */
class CompatAsyncTest extends GearsTestBase {
    private final List<String> sessions = new ArrayList<>();

    /** Loads a script under its own session id, to unregister what it registered afterwards. */
    private void load(String id, String code) {
        sessions.add(id);
        assertEquals("OK", py(code, "ID", id));
    }

    @AfterEach
    void unregisterAll() {
        List<?> all = (List<?>) call("RG.DUMPREGISTRATIONS");
        for (Object o : all) {
            List<?> r = (List<?>) o;
            call("RG.UNREGISTER", String.valueOf(r.get(1)));
        }
        sessions.clear();
    }

    @Test
    void gearsFutureOnlyInsideStepsThatCanWait() {
        assertTrue(pyError("gearsFuture()").contains("Future object can only be created inside certain execution steps"));
        assertTrue(errors("GB('ShardsIDReader').repartition(lambda x: gearsFuture()).run()").toString()
                .contains("Step does not support async"));
        assertTrue(errors("GB('ShardsIDReader').batchgroupby(lambda x: x, lambda k, l: gearsFuture()).run()").toString()
                .contains("Step does not support async"));
        assertTrue(errors("def f(x):\n    gearsFuture()\n    gearsFuture()\n    return x\n"
                + "GB('ShardsIDReader').map(f).run()").toString()
                .contains("Can not create async record twice on the same step"));
        assertTrue(errors("def f(x):\n    g = gearsFuture()\n    g.continueRun(x)\n    return g\n"
                + "GB('ShardsIDReader').map(f).run()").toString()
                .contains("Can not handle future untill it returned from the callback"));
    }

    @Test
    void aFutureNotReturnedIsDroppedAndTheResultStands() {
        load("ca_drop", "held = []\n"
                + "def keep(r, *args):\n    held.append(gearsFuture())\n    return r\n"
                + "GB('CommandReader').map(keep).register(trigger='ca_drop_map', mode='async_local')\n"
                + "GB('CommandReader').accumulate(keep).register(trigger='ca_drop_acc', mode='async_local')\n"
                + "def again(r):\n"
                + "    try:\n        held.pop().continueRun(1)\n    except Exception as e:\n        return str(e)\n"
                + "GB('CommandReader').map(again).register(trigger='ca_drop_again', mode='async_local')");
        assertEquals(List.of("['ca_drop_map']"), call("RG.TRIGGER", "ca_drop_map"));
        assertEquals(List.of("None"), call("RG.TRIGGER", "ca_drop_acc"));
        assertEquals(List.of("Can not continue with the same future twice"), call("RG.TRIGGER", "ca_drop_again"));
    }

    @Test
    void aFutureNothingCanContinueEndsTheExecution() {
        load("ca_orphan", "def f(r):\n    return gearsFuture()\n"
                + "GB('CommandReader').map(f).register(trigger='ca_orphan', mode='async_local')");
        RedisCommandException e = assertThrows(RedisCommandException.class, () -> call("RG.TRIGGER", "ca_orphan"));
        assertTrue(e.getMessage().contains("Async record did not called continue"), e.getMessage());
    }

    @Test
    void futuresInAccumulateAndGroupbyAreContinuedFromAnotherTrigger() throws Exception {
        load("ca_acc", "pending = []\n"
                + "def hold(a, r):\n    f = gearsFuture()\n    pending.append((f, (a or 0) + int(r)))\n    return f\n"
                + "def holdk(k, a, r):\n    f = gearsFuture()\n    pending.append((f, (a or 0) + 1))\n    return f\n"
                + "GB('CommandReader').flatmap(lambda x: x[1:]).accumulate(hold).register(trigger='ca_acc', mode='async_local')\n"
                + "GB('CommandReader').flatmap(lambda x: [int(a) for a in x[1:]]).groupby(lambda x: x, holdk)"
                + ".map(lambda r: (r['key'], r['value'])).register(trigger='ca_grp', mode='async_local')\n"
                + "def release(r):\n"
                + "    n = 0\n    while pending:\n        f, v = pending.pop(0)\n"
                + "        if r[1:] == ['fail']:\n            f.continueFailed('released with an error')\n"
                + "        else:\n            f.continueRun(v)\n        n += 1\n    return n\n"
                + "GB('CommandReader').map(release).register(trigger='ca_rel', mode='async_local')");
        assertEquals(List.of("6"), whileReleasing(() -> call("RG.TRIGGER", "ca_acc", "1", "2", "3"), "ca_rel"));
        Object grouped = whileReleasing(() -> call("RG.TRIGGER", "ca_grp", "1", "1", "2"), "ca_rel");
        assertEquals(List.of("('1', 2)", "('2', 1)"), ((List<?>) grouped).stream().sorted().toList());
        Object failed = whileReleasing(() -> {
            try {
                return call("RG.TRIGGER", "ca_acc", "1");
            } catch (RedisCommandException e) {
                return e.getMessage();
            }
        }, "ca_rel", "fail");
        assertEquals("released with an error", failed);
    }

    /** Runs {@code blocked} on another connection and triggers the release until it answers. */
    private Object whileReleasing(java.util.function.Supplier<Object> blocked, String... release) throws Exception {
        CompletableFuture<Object> result = CompletableFuture.supplyAsync(blocked);
        long deadline = System.currentTimeMillis() + 120_000;
        String[] args = new String[release.length + 1];
        args[0] = "RG.TRIGGER";
        System.arraycopy(release, 0, args, 1, release.length);
        var other = TestServer.connectRaw();
        try {
            while (!result.isDone() && System.currentTimeMillis() < deadline) {
                TestServer.call(other, args);
                Thread.sleep(50);
            }
        } finally {
            other.close();
        }
        return result.get(60, TimeUnit.SECONDS);
    }

    @Test
    void coroutinesAreRefusedInExtractorsAndReducers() {
        assertTrue(errors("async def c(r):\n    return r\n"
                + "GB('ShardsIDReader').repartition(c).run()").toString().contains("coroutine are not allow on extractor"));
        assertTrue(errors("async def c(k, l):\n    return l\n"
                + "GB('ShardsIDReader').batchgroupby(lambda x: x, c).run()").toString().contains("coroutine are not allow on reduce"));
    }

    @Test
    void anAsyncStepAwaitsAnotherExecution() {
        assertEquals(List.of("[['1'], []]"), results("async def m(r):\n"
                + "    return repr(await GB('ShardsIDReader').map(lambda x: 1).run())\n"
                + "GB('ShardsIDReader').map(m).run()"));
        assertEquals(List.of("[[1], []]"), results("async def m(r):\n"
                + "    return repr(await GB('ShardsIDReader').map(lambda x: 1).run(convertToStr=False))\n"
                + "GB('ShardsIDReader').map(m).run()"));
    }

    @Test
    void isAsyncAllowAndAwaitInAtomic() {
        assertEquals(List.of("True"), results("GB('ShardsIDReader').map(lambda x: str(isAsyncAllow())).run()"));
        assertEquals(List.of("False"), results("async def m(x):\n    return str(isAsyncAllow())\n"
                + "GB('ShardsIDReader').map(m).run()"));
        assertEquals(List.of("await is not allow inside atomic block"), errors("import asyncio\n"
                + "async def m(x):\n    with atomic():\n        await asyncio.sleep(0.01)\n"
                + "GB('ShardsIDReader').map(m).run()"));
    }

    @Test
    void createFutureAndRunCoroutine() {
        assertEquals(List.of("done:x"), results("async def later(v):\n    return 'done:' + v\n"
                + "async def m(r):\n    f = createFuture()\n    setFutureResults(f, 'x')\n"
                + "    return await later(await f)\n"
                + "GB('ShardsIDReader').map(m).run()"));
        assertEquals(List.of("bad value"), errors("async def m(r):\n    f = createFuture()\n"
                + "    setFutureException(f, ValueError('bad value'))\n    return await f\n"
                + "GB('ShardsIDReader').map(m).run()"));
        load("ca_coro", "async def later(v):\n    return 'late:' + v\n"
                + "def m(r):\n    f = gearsFuture()\n    runCoroutine(later(r[1]), f, delay=0.05)\n    return f\n"
                + "GB('CommandReader').map(m).register(trigger='ca_coro', mode='async_local')");
        assertEquals(List.of("late:x"), call("RG.TRIGGER", "ca_coro", "x"));
    }

    /**
     * A gearsFuture continued and then no longer referenced by anyone, collected before its execution
     * gets a thread again (a busy machine): the execution goes on with the value, it is not abandoned.
     */
    @Test
    void aContinuedFutureCollectedBeforeTheExecutionResumesIsNotAbandoned() {
        load("ca_gc", "import gc\n"
                + "async def later(holder, tag):\n    f = holder.pop()\n    f.continueRun('kept:' + tag)\n    del f\n"
                + "    for _ in range(3):\n        gc.collect()\n"
                + "def m(r):\n    f = gearsFuture()\n    runCoroutine(later([f], r[1]), delay=0.05)\n    return f\n"
                + "GB('CommandReader').map(m).register(trigger='ca_gc', mode='async_local')");
        assertEquals(List.of("kept:x"), call("RG.TRIGGER", "ca_gc", "x"));
    }

    @Test
    void gearsCommandsInsideMulti() throws Exception {
        load("ca_multi", "def c(r):\n"
                + "    if isAsyncAllow():\n        async def f():\n            return 'no multi'\n        return f()\n"
                + "    return 'multi'\n"
                + "GB('CommandReader').map(c).register(trigger='ca_multi_sync', mode='sync')\n"
                + "GB('CommandReader').map(c).register(trigger='ca_multi_async')");
        assertEquals(List.of("no multi"), call("RG.TRIGGER", "ca_multi_sync"));
        // Raw RESP on a socket: the client library keeps transaction replies to itself.
        String reply = rawExchange(List.of(List.of("MULTI"), List.of("SET", "ca:multi", "1"),
                List.of("RG.TRIGGER", "ca_multi_sync"), List.of("RG.TRIGGER", "ca_multi_async"),
                List.of("RG.PYEXECUTE", "GB().run()"), List.of("GET", "ca:multi"), List.of("EXEC")), "$1\r\n1\r\n");
        assertEquals("+OK\r\n" + "+QUEUED\r\n".repeat(5) + "*5\r\n+OK\r\n*1\r\n$5\r\nmulti\r\n"
                + "-" + "ERR can not run a non-sync execution inside a MULTI/LUA (blocking is not allowed) or on loading.\r\n"
                + "-Can not run gears inside a multi exec, lua, or when blocking is not allowed\r\n$1\r\n1\r\n", reply);
        TestServer.redisDirect().del("ca:multi");
    }

    /** Sends the commands on a socket of its own and reads until the reply ends with {@code end}. */
    private static String rawExchange(List<List<String>> commands, String end) throws Exception {
        try (java.net.Socket socket = new java.net.Socket("127.0.0.1", TestServer.port())) {
            socket.setSoTimeout(30_000);
            StringBuilder out = new StringBuilder();
            for (List<String> c : commands) {
                out.append('*').append(c.size()).append("\r\n");
                for (String a : c) {
                    out.append('$').append(a.getBytes(java.nio.charset.StandardCharsets.UTF_8).length).append("\r\n").append(a).append("\r\n");
                }
            }
            socket.getOutputStream().write(out.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
            StringBuilder in = new StringBuilder();
            byte[] buf = new byte[4096];
            while (!in.toString().endsWith(end)) {
                int n = socket.getInputStream().read(buf);
                if (n < 0) {
                    break;
                }
                in.append(new String(buf, 0, n, java.nio.charset.StandardCharsets.UTF_8));
            }
            return in.toString();
        }
    }

    @Test
    void executeReachesGearsCommandsButNotPyExecute() {
        assertTrue(errors("GB('ShardsIDReader').map(lambda x: execute('RG.PYEXECUTE', 'GB().run()')).run()").toString()
                .contains("Can not run gears inside a multi exec, lua, or when blocking is not allowed"));
        assertEquals(List.of("no cluster mode"), results("GB('ShardsIDReader').map(lambda x: execute('RG.INFOCLUSTER')).run()"));
        load("ca_unreg", "async def f(x):\n"
                + "    for r in execute('RG.DUMPREGISTRATIONS'):\n"
                + "        if r[1] == ca_id[0]:\n            execute('RG.UNREGISTER', r[1], 'abortpending')\n"
                + "    return x\n"
                + "ca_id = [GB('CommandReader').map(f).register(trigger='ca_unreg')]");
        assertEquals(List.of("['ca_unreg']"), call("RG.TRIGGER", "ca_unreg"));
        RedisCommandException gone = assertThrows(RedisCommandException.class, () -> call("RG.TRIGGER", "ca_unreg"));
        assertTrue(gone.getMessage().contains("subcommand not found"), gone.getMessage());
    }

    @Test
    void callNextOutsideAHookInACoroutine() {
        assertTrue(errors("async def f(x):\n    return call_next()\nGB('ShardsIDReader').map(f).run()").toString()
                .contains("Can not get CommandHook ctx"));
    }
}
