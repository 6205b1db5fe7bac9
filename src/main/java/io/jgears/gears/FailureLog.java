package io.jgears.gears;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Log lines for failures in users' code (a registration execution that ended with errors, a time event
 * callback that raised, a session that failed to load): one line each, with the ids an operator needs,
 * the Python error's last line rather than a Java stack trace, and at most {@link #PER_SECOND} lines a
 * second, so that a registration failing on every event cannot flood the log. Lines over the limit are
 * counted and the count is reported on the next line that passes.
 */
final class FailureLog {
    private static final Logger log = LoggerFactory.getLogger("io.jgears.failures");
    static final int PER_SECOND = 10;

    private long windowStart;
    private int inWindow;
    private long suppressed;

    void warn(String format, Object... args) {
        long dropped;
        synchronized (this) {
            long now = System.nanoTime();
            if (now - windowStart > 1_000_000_000L) {
                windowStart = now;
                inWindow = 0;
            }
            if (++inWindow > PER_SECOND) {
                suppressed++;
                return;
            }
            dropped = suppressed;
            suppressed = 0;
        }
        if (dropped > 0) {
            log.warn("({} similar failure lines were not logged in the last second)", dropped);
        }
        log.warn(format, args);
    }

    /**
     * The part of a RedisGears-style error worth a log line: the exception line of a Python traceback
     * (its text is str() of the traceback's lines), or the message itself, on one line.
     */
    static String summary(String error) {
        if (error == null) {
            return "";
        }
        String s = error.strip();
        String where = null;
        if (s.startsWith("['Traceback") || s.startsWith("[\"Traceback")) {
            // The innermost frame of the user's code says where: the traceback's last "File ..., line n, in f".
            java.util.regex.Matcher frame = FRAME.matcher(s);
            while (frame.find()) {
                where = frame.group(1);
            }
            int end = s.lastIndexOf("'") > s.lastIndexOf('"') ? s.lastIndexOf("'") : s.lastIndexOf('"');
            int start = Math.max(s.lastIndexOf(", '", end - 1), s.lastIndexOf(", \"", end - 1));
            if (start > 0 && end > start) {
                s = s.substring(start + 3, end);
            }
        }
        s = s.replace("\\n", " ").replace('\n', ' ').strip();
        s = s.length() > 300 ? s.substring(0, 300) + "..." : s;
        return where == null ? s : s + " (at " + where + ")";
    }

    private static final java.util.regex.Pattern FRAME = java.util.regex.Pattern.compile("File (\"[^\"]{0,200}\", line \\d+, in [^\\\\'\"]{1,100})");
}
