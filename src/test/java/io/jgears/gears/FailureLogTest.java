package io.jgears.gears;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Failure log lines: the Python exception line of a RedisGears-style traceback, on one line. */
class FailureLogTest {

    @Test
    void aTracebackBecomesItsExceptionLine() {
        String traceback = "['Traceback (most recent call last):\\n', '  File \"<string>\", line 1, in <lambda>\\n', "
                + "'ZeroDivisionError: division by zero\\n']";
        assertEquals("ZeroDivisionError: division by zero (at \"<string>\", line 1, in <lambda>)", FailureLog.summary(traceback));
        assertEquals("Execution timed out", FailureLog.summary("Execution timed out\n"));
        assertEquals(303, FailureLog.summary("x".repeat(1000)).length());
    }
}
