package io.jgears;

/** The whole Python API suite again, with every session in the shared context (ISOLATION shared). */
class SharedModeApiTest extends GearsApiTest {
    /**
     * Shared sessions run one at a time in one context, so a blocking command blocks every shared session
     * (as RedisGears 1.2's one interpreter does); only the refusal part of the original test applies.
     */
    @Override
    @org.junit.jupiter.api.Test
    void executeRefusesConnectionStateAndIsolatesBlockingCommands() {
        org.junit.jupiter.api.Assertions.assertEquals(java.util.List.of("refused"), results("def f(x):\n  try:\n"
                + "    execute('SELECT', '2')\n  except Exception as e:\n"
                + "    return 'refused' if 'not allowed in execute()' in str(e) else str(e)\nGB('ShardsIDReader').map(f).run()"));
    }

    @Override
    protected Object py(String code, String... options) {
        String[] withMode = java.util.Arrays.copyOf(options, options.length + 2);
        withMode[options.length] = "ISOLATION";
        withMode[options.length + 1] = "shared";
        return super.py(code, withMode);
    }
}
