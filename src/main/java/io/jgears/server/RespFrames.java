package io.jgears.server;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.codec.redis.ArrayRedisMessage;
import io.netty.handler.codec.redis.ErrorRedisMessage;
import io.netty.handler.codec.redis.FullBulkStringRedisMessage;
import io.netty.handler.codec.redis.IntegerRedisMessage;
import io.netty.handler.codec.redis.RedisMessage;
import io.netty.handler.codec.redis.SimpleStringRedisMessage;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Splices replies jgears made into an EXEC reply of Redis (hooked commands of a transaction): cuts a whole
 * RESP array frame into its elements' frames, and writes jgears' replies as frames.
 */
final class RespFrames {
    private RespFrames() {
    }

    /** The element frames of a top-level array frame (slices of it), or null when it is not an array. */
    static List<ByteBuf> arrayElements(ByteBuf frame) {
        int i = frame.readerIndex();
        if (frame.getByte(i) != '*') {
            return null;
        }
        int lineEnd = lineEnd(frame, i);
        long n = Long.parseLong(frame.toString(i + 1, lineEnd - i - 1, StandardCharsets.US_ASCII));
        if (n < 0) {
            return null;
        }
        List<ByteBuf> out = new ArrayList<>((int) n);
        int pos = lineEnd + 2;
        for (long k = 0; k < n; k++) {
            int end = skip(frame, pos);
            out.add(frame.slice(pos, end - pos));
            pos = end;
        }
        return out;
    }

    private static int lineEnd(ByteBuf b, int from) {
        int i = from;
        while (b.getByte(i) != '\r') {
            i++;
        }
        return i;
    }

    /** The index just after the value starting at {@code pos}. */
    private static int skip(ByteBuf b, int pos) {
        byte type = b.getByte(pos);
        int lineEnd = lineEnd(b, pos);
        int next = lineEnd + 2;
        return switch (type) {
            case '$', '!', '=' -> {
                long len = Long.parseLong(b.toString(pos + 1, lineEnd - pos - 1, StandardCharsets.US_ASCII));
                yield len < 0 ? next : next + (int) len + 2;
            }
            case '*', '~', '>', '%', '|' -> {
                long n = Long.parseLong(b.toString(pos + 1, lineEnd - pos - 1, StandardCharsets.US_ASCII));
                if (type == '%' || type == '|') {
                    n *= 2;
                }
                int p = next;
                for (long k = 0; k < n; k++) {
                    p = skip(b, p);
                }
                yield p;
            }
            default -> next;  // + - : _ , # ( : one line
        };
    }

    /** A reply jgears composed, as a RESP2 frame. */
    static void write(RedisMessage m, ByteBuf out) {
        switch (m) {
            case SimpleStringRedisMessage s -> line(out, '+', s.content());
            case ErrorRedisMessage e -> line(out, '-', e.content());
            case IntegerRedisMessage n -> line(out, ':', Long.toString(n.value()));
            case FullBulkStringRedisMessage bulk when bulk.isNull() -> out.writeBytes("$-1\r\n".getBytes(StandardCharsets.US_ASCII));
            case FullBulkStringRedisMessage bulk -> {
                line(out, '$', Integer.toString(bulk.content().readableBytes()));
                out.writeBytes(bulk.content(), bulk.content().readerIndex(), bulk.content().readableBytes());
                out.writeBytes(new byte[]{'\r', '\n'});
            }
            case ArrayRedisMessage array when array.isNull() -> out.writeBytes("*-1\r\n".getBytes(StandardCharsets.US_ASCII));
            case ArrayRedisMessage array -> {
                line(out, '*', Integer.toString(array.children().size()));
                array.children().forEach(c -> write(c, out));
            }
            default -> line(out, '-', "ERR jgears cannot encode this reply");
        }
    }

    private static void line(ByteBuf out, char type, String text) {
        out.writeByte(type);
        out.writeBytes(text.getBytes(StandardCharsets.UTF_8));
        out.writeBytes(new byte[]{'\r', '\n'});
    }

    /** The EXEC reply with {@code inserted} replies at their positions among Redis' elements. */
    static ByteBuf splice(ByteBufAllocator alloc, List<ByteBuf> elements, List<Integer> positions, List<RedisMessage> inserted) {
        ByteBuf out = alloc.buffer();
        int total = elements.size() + inserted.size();
        line(out, '*', Integer.toString(total));
        int fromRedis = 0;
        int fromJgears = 0;
        for (int i = 0; i < total; i++) {
            if (fromJgears < positions.size() && positions.get(fromJgears) == i) {
                write(inserted.get(fromJgears++), out);
            } else if (fromRedis < elements.size()) {
                ByteBuf e = elements.get(fromRedis++);
                out.writeBytes(e, e.readerIndex(), e.readableBytes());
            } else {
                write(inserted.get(fromJgears++), out);
            }
        }
        return out;
    }
}
