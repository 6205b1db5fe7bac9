package io.jgears.redis;

/** Redis answered with an error, or could not be reached; the message is Redis' own where there is one. */
public final class RedisCommandException extends RuntimeException {
    public RedisCommandException(String message) {
        super(message, null, false, false);
    }
}
