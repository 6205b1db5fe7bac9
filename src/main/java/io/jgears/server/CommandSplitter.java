package io.jgears.server;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * The fast path of forwarding: cuts a client's byte stream into whole command frames and lets those that
 * jgears only forwards go to Redis as they arrived, as one {@link Raw} slice each, with no decoding into
 * messages and encoding back. Everything else (RG.* commands, hooked commands, commands whose replies or
 * arguments jgears watches, {jgears}: keys) goes down the pipeline as bytes to the full RESP decoder, in
 * order. Anything unusual (inline commands, non-bulk arguments, sizes over the limits) switches the
 * connection to the full decoder for good, which then answers as it always did.
 */
final class CommandSplitter extends ByteToMessageDecoder {
    /** A whole command frame to forward untouched. */
    record Raw(ByteBuf frame) {
    }

    /** Commands whose replies or arguments ClientHandler must see (auth, reply modes, subscriptions). */
    private static final Set<String> WATCHED = Set.of("QUIT", "AUTH", "HELLO", "CLIENT", "RESET", "SUBSCRIBE",
            "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR", "MULTI", "EXEC", "DISCARD");
    private static final ByteBuf RESERVED = Unpooled.unreleasableBuffer(
            Unpooled.wrappedBuffer("{jgears}:".getBytes(StandardCharsets.US_ASCII)));
    private static final int INCOMPLETE = -1;
    private static final int MALFORMED = -2;

    private final ServerOptions options;
    private final LocalCommands local;
    private boolean fullDecoderOnly;
    /** End of the number parsed by {@link #number}: the index after its CRLF. */
    private int numberEnd;

    CommandSplitter(ServerOptions options, LocalCommands local) {
        this.options = options;
        this.local = local;
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        while (in.isReadable()) {
            if (fullDecoderOnly) {
                out.add(in.readRetainedSlice(in.readableBytes()));
                return;
            }
            int start = in.readerIndex();
            if (in.getByte(start) != '*') {
                fullDecoderOnly = true;
                continue;
            }
            long count = number(in, start + 1);
            if (count == INCOMPLETE) {
                return;
            }
            if (count <= 0 || count > options.maxArrayLength()) {
                fullDecoderOnly = true;
                continue;
            }
            int pos = numberEnd;
            int nameStart = -1;
            int nameLength = 0;
            boolean unusual = false;
            for (long i = 0; i < count; i++) {
                if (pos >= in.writerIndex()) {
                    return;
                }
                if (in.getByte(pos) != '$') {
                    unusual = true;
                    break;
                }
                long length = number(in, pos + 1);
                if (length == INCOMPLETE) {
                    return;
                }
                if (length < 0 || length > options.maxBulkLength()) {
                    unusual = true;
                    break;
                }
                int data = numberEnd;
                if ((long) data + length + 2 > in.writerIndex()) {
                    return;  // the rest of the frame has not arrived yet
                }
                int end = data + (int) length;
                if (in.getByte(end) != '\r' || in.getByte(end + 1) != '\n') {
                    unusual = true;
                    break;
                }
                if (i == 0) {
                    nameStart = data;
                    nameLength = (int) length;
                }
                pos = end + 2;
            }
            if (unusual) {
                fullDecoderOnly = true;
                continue;
            }
            ByteBuf frame = in.retainedSlice(start, pos - start);
            in.readerIndex(pos);
            out.add(forwardsUntouched(in, nameStart, nameLength, frame) ? new Raw(frame) : frame);
        }
    }

    private boolean forwardsUntouched(ByteBuf in, int nameStart, int nameLength, ByteBuf frame) {
        if (nameLength == 0 || nameLength > 32) {
            return false;
        }
        String name = in.toString(nameStart, nameLength, StandardCharsets.US_ASCII).toUpperCase(Locale.ROOT);
        return !WATCHED.contains(name) && !local.handles(name) && !local.hooks(name)
                && ByteBufUtil.indexOf(RESERVED, frame) < 0;
    }

    /** The decimal number at {@code at} up to CRLF, or INCOMPLETE / MALFORMED; sets {@link #numberEnd}. */
    private long number(ByteBuf in, int at) {
        int limit = Math.min(in.writerIndex(), at + 21);
        long value = 0;
        boolean negative = false;
        for (int i = at; i < limit; i++) {
            byte b = in.getByte(i);
            if (b == '\r') {
                if (i + 1 >= in.writerIndex()) {
                    return INCOMPLETE;
                }
                if (in.getByte(i + 1) != '\n' || i == at) {
                    return MALFORMED;
                }
                numberEnd = i + 2;
                return negative ? -value : value;
            }
            if (b == '-' && i == at) {
                negative = true;
            } else if (b >= '0' && b <= '9') {
                value = value * 10 + (b - '0');
            } else {
                return MALFORMED;
            }
        }
        return limit == in.writerIndex() ? INCOMPLETE : MALFORMED;
    }
}
