package io.jgears.redis;

import org.graalvm.polyglot.HostAccess;

/**
 * A reply string that is not valid UTF-8, as execute() hands it to Python: RedisGears gives such a
 * string as a bytearray (a str would have lost its bytes to replacement characters).
 */
public record BinaryString(byte[] bytes) {
    /** The bytes one char each (ISO-8859-1), for Python's {@code bytearray(s, 'latin-1')}: one crossing. */
    @HostAccess.Export
    public String latin1() {
        return new String(bytes, java.nio.charset.StandardCharsets.ISO_8859_1);
    }

    /** The bytes read as UTF-8, with replacement characters where they are not (for logs and messages). */
    @Override
    public String toString() {
        return new String(bytes, java.nio.charset.StandardCharsets.UTF_8);
    }
}
