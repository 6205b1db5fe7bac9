package io.jgears.server;

import io.netty.buffer.Unpooled;
import io.netty.handler.codec.redis.ArrayRedisMessage;
import io.netty.handler.codec.redis.ErrorRedisMessage;
import io.netty.handler.codec.redis.FullBulkStringRedisMessage;
import io.netty.handler.codec.redis.IntegerRedisMessage;
import io.netty.handler.codec.redis.RedisMessage;
import io.netty.handler.codec.redis.SimpleStringRedisMessage;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Builders for RESP replies jgears composes itself. */
public final class Replies {
    public static final RedisMessage OK = new SimpleStringRedisMessage("OK");

    private Replies() {
    }

    /** An error reply; the text is made single-line because RESP errors cannot carry line breaks. */
    public static ErrorRedisMessage error(String text) {
        String clean = text == null ? "ERR unknown error" : text.replace("\r", "\\r").replace("\n", "\\n");
        return new ErrorRedisMessage(clean);
    }

    public static RedisMessage simple(String text) {
        return new SimpleStringRedisMessage(text);
    }

    public static RedisMessage bulk(String text) {
        if (text == null) {
            return FullBulkStringRedisMessage.NULL_INSTANCE;
        }
        return new FullBulkStringRedisMessage(Unpooled.wrappedBuffer(text.getBytes(StandardCharsets.UTF_8)));
    }

    public static RedisMessage integer(long value) {
        return new IntegerRedisMessage(value);
    }

    public static RedisMessage array(List<RedisMessage> children) {
        return new ArrayRedisMessage(children);
    }

    /**
     * A record of an execution as RedisGears replies with it: a string longer than one character that
     * starts with '+' or '-' is a status or error reply (without that character), a list an array of
     * records, anything else as {@link #of}.
     */
    public static RedisMessage record(Object value) {
        if (value instanceof String s && s.length() > 1) {
            if (s.charAt(0) == '+') {
                return simple(s.substring(1));
            }
            if (s.charAt(0) == '-') {
                return error(s.substring(1));
            }
        }
        if (value instanceof List<?> list) {
            List<RedisMessage> children = new ArrayList<>(list.size());
            for (Object o : list) {
                children.add(record(o));
            }
            return array(children);
        }
        return of(value);
    }

    /**
     * Converts plain Java values (String, Number, Boolean, List, Map, null, RedisMessage) into a reply:
     * strings are bulk strings, integers are integers, lists arrays, maps flat key/value arrays.
     */
    public static RedisMessage of(Object value) {
        return switch (value) {
            case null -> FullBulkStringRedisMessage.NULL_INSTANCE;
            case RedisMessage m -> m;
            case io.jgears.redis.GenericOutput.Status st -> simple(st.text());
            case String s -> bulk(s);
            case Long l -> integer(l);
            case Integer i -> integer(i);
            case Boolean b -> integer(b ? 1 : 0);
            case Number n -> bulk(n.toString());
            case byte[] bytes -> new FullBulkStringRedisMessage(Unpooled.wrappedBuffer(bytes));
            case List<?> list -> {
                List<RedisMessage> children = new ArrayList<>(list.size());
                for (Object o : list) {
                    children.add(of(o));
                }
                yield array(children);
            }
            case Map<?, ?> map -> {
                List<RedisMessage> children = new ArrayList<>(map.size() * 2);
                for (Map.Entry<?, ?> e : map.entrySet()) {
                    children.add(of(String.valueOf(e.getKey())));
                    children.add(of(e.getValue()));
                }
                yield array(children);
            }
            default -> bulk(value.toString());
        };
    }
}
