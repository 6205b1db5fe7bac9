package io.jgears.redis;

/** An error reply from Redis, kept as a value where it sits inside an array (EXEC results). */
public record RedisError(String message) {
    @Override
    public String toString() {
        return message;
    }
}
