package io.jgears.redis;

import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.output.CommandOutput;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * Decodes any reply into plain Java values: String (bulk and status, UTF-8), Long, Double, null,
 * List (arrays, nested), and {@link RedisError} for an error inside an array (as EXEC can return).
 * An error at the top level fails the command, as Lettuce does for its own outputs.
 */
public final class GenericOutput extends CommandOutput<byte[], byte[], Object> {
    private record Open(List<Object> list, int expected) {
    }

    /**
     * A status (simple string) to send on as one. Lettuce decodes status and bulk replies alike, so the
     * views that pass a Redis reply on mark the fields Redis sends as statuses (redis-cli checks the type).
     */
    public record Status(String text) {
        @Override
        public String toString() {
            return text;
        }
    }

    private final ArrayDeque<Open> stack = new ArrayDeque<>();
    /** execute()'s replies: a string that is not UTF-8 stays bytes ({@link BinaryString}). */
    private final java.nio.charset.CharsetDecoder strict;

    public GenericOutput() {
        this(false);
    }

    public GenericOutput(boolean keepBinary) {
        super(ByteArrayCodec.INSTANCE, null);
        this.strict = keepBinary ? StandardCharsets.UTF_8.newDecoder() : null;
    }

    private void add(Object value) {
        if (stack.isEmpty()) {
            output = value;
            return;
        }
        Open top = stack.peek();
        top.list.add(value);
        while (top != null && top.list.size() >= top.expected) {
            stack.pop();
            Open parent = stack.peek();
            if (parent == null) {
                output = top.list;
                return;
            }
            parent.list.add(top.list);
            top = parent;
        }
    }

    @Override
    public void set(ByteBuffer bytes) {
        if (bytes == null) {
            add(null);
        } else if (strict == null) {
            add(StandardCharsets.UTF_8.decode(bytes).toString());
        } else {
            add(decodeOrKeep(strict, bytes));
        }
    }

    /** The string, or a {@link BinaryString} of its bytes when they are not valid UTF-8. */
    static Object decodeOrKeep(java.nio.charset.CharsetDecoder strict, ByteBuffer bytes) {
        int start = bytes.position();
        try {
            return strict.reset().decode(bytes).toString();
        } catch (java.nio.charset.CharacterCodingException e) {
            byte[] raw = new byte[bytes.limit() - start];
            bytes.get(start, raw);
            return new BinaryString(raw);
        }
    }

    @Override
    public void setSingle(ByteBuffer bytes) {
        set(bytes);
    }

    @Override
    public void setBigNumber(ByteBuffer bytes) {
        set(bytes);
    }

    @Override
    public void set(long integer) {
        add(integer);
    }

    @Override
    public void set(double number) {
        add(number);
    }

    @Override
    public void set(boolean value) {
        add(value ? 1L : 0L);
    }

    @Override
    public void setError(ByteBuffer error) {
        if (stack.isEmpty()) {
            super.setError(error);
        } else {
            add(new RedisError(StandardCharsets.UTF_8.decode(error).toString()));
        }
    }

    @Override
    public void multi(int count) {
        if (count < 0) {
            add(null);
        } else if (count == 0) {
            add(new ArrayList<>());
        } else {
            stack.push(new Open(new ArrayList<>(Math.min(count, 4096)), count));
        }
    }

    @Override
    public void multiArray(int count) {
        multi(count);
    }

    @Override
    public void multiPush(int count) {
        multi(count);
    }

    @Override
    public void multiSet(int count) {
        multi(count);
    }

    @Override
    public void multiMap(int count) {
        multi(count < 0 ? count : count * 2);
    }

    /** A decoded reply as Python reads it: lists become arrays, errors inside arrays become their message. */
    public static Object toHost(Object reply) {
        if (reply instanceof List<?> list) {
            Object[] out = new Object[list.size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = toHost(list.get(i));
            }
            return out;
        }
        if (reply instanceof RedisError e) {
            return e.message();
        }
        return reply;
    }
}
