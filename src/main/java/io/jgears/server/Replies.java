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

    /**
     * A reply jgears writes as RESP3 bytes itself, for a client that chose RESP3 with HELLO 3 where Redis
     * answers it with RESP3 types (maps): Netty's encoder knows RESP2 only. ClientHandler writes the bytes.
     */
    public record Raw(io.netty.buffer.ByteBuf content) implements RedisMessage {
    }

    /**
     * Plain values as RESP3: Map a map, List an array, String a bulk string, Long or Integer an integer,
     * null a null, a RESP2-built RedisMessage as RESP2 would write it (errors, simple strings).
     */
    public static RedisMessage resp3(Object value) {
        io.netty.buffer.ByteBuf out = Unpooled.buffer();
        writeResp3(out, value);
        return new Raw(out);
    }

    private static void writeResp3(io.netty.buffer.ByteBuf out, Object value) {
        switch (value) {
            case null -> out.writeBytes("_\r\n".getBytes(StandardCharsets.US_ASCII));
            case Map<?, ?> map -> {
                header(out, '%', map.size());
                for (Map.Entry<?, ?> e : map.entrySet()) {
                    writeResp3(out, String.valueOf(e.getKey()));
                    writeResp3(out, e.getValue());
                }
            }
            case List<?> list -> {
                header(out, '*', list.size());
                list.forEach(x -> writeResp3(out, x));
            }
            case Long l -> header(out, ':', l);
            case Integer i -> header(out, ':', i);
            case io.jgears.redis.GenericOutput.Status st -> {
                out.writeByte('+').writeBytes(st.text().getBytes(StandardCharsets.UTF_8)).writeBytes(CRLF);
            }
            case byte[] bytes -> {
                header(out, '$', bytes.length);
                out.writeBytes(bytes).writeBytes(CRLF);
            }
            default -> {
                byte[] bytes = value.toString().getBytes(StandardCharsets.UTF_8);
                header(out, '$', bytes.length);
                out.writeBytes(bytes).writeBytes(CRLF);
            }
        }
    }

    private static final byte[] CRLF = {'\r', '\n'};

    private static void header(io.netty.buffer.ByteBuf out, char type, long n) {
        out.writeByte(type).writeBytes(Long.toString(n).getBytes(StandardCharsets.US_ASCII)).writeBytes(CRLF);
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
