package io.jgears.server;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.codec.CorruptedFrameException;

import java.util.List;

/**
 * Splits the byte stream coming back from Redis into whole reply frames without decoding them, so
 * forwarded replies reach the client byte for byte (RESP2 and RESP3 alike). The scan is resumable:
 * a large reply arriving in many reads is walked once, not once per read.
 */
public final class RespFrameDecoder extends ByteToMessageDecoder {
    /** Offset, relative to the reader index, up to which the current frame has been scanned. */
    private int scanned;
    /** Elements still expected at each open aggregate level; depth 0 is the top frame. */
    private long[] pending = new long[8];
    private int depth;

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        while (true) {
            int start = in.readerIndex();
            if (!scanFrame(in, start)) {
                return;
            }
            out.add(in.readRetainedSlice(scanned));
            scanned = 0;
            depth = 0;
        }
    }

    /** Walks elements from the saved position; true when the frame starting at {@code start} is complete. */
    private boolean scanFrame(ByteBuf in, int start) {
        int limit = in.writerIndex();
        if (depth == 0 && scanned == 0) {
            pending[0] = 1;
            depth = 1;
        }
        while (depth > 0) {
            int pos = start + scanned;
            if (pos >= limit) {
                return false;
            }
            int eol = in.indexOf(pos, limit, (byte) '\n');
            if (eol < 0) {
                return false;
            }
            byte type = in.getByte(pos);
            int lineEnd = eol + 1;
            switch (type) {
                case '+', '-', ':', ',', '#', '_', '(' -> {
                    scanned = lineEnd - start;
                    elementDone();
                }
                case '$', '!', '=' -> {
                    long len = parseLength(in, pos + 1, eol);
                    if (len < 0) {
                        scanned = lineEnd - start;
                    } else {
                        long end = (long) lineEnd + len + 2;
                        if (end > limit) {
                            return false;
                        }
                        scanned = (int) end - start;
                    }
                    elementDone();
                }
                case '*', '~', '>', '%', '|' -> {
                    long n = parseLength(in, pos + 1, eol);
                    scanned = lineEnd - start;
                    if (type == '|') {
                        // An attribute is followed by the value it describes: one more element for the parent.
                        pending[depth - 1]++;
                    }
                    if (n <= 0) {
                        elementDone();
                    } else {
                        push(type == '%' || type == '|' ? n * 2 : n);
                    }
                }
                default -> throw new CorruptedFrameException("unexpected RESP type byte from Redis: " + (char) type);
            }
        }
        return true;
    }

    private void push(long elements) {
        if (depth == pending.length) {
            pending = java.util.Arrays.copyOf(pending, depth * 2);
        }
        pending[depth++] = elements;
    }

    private void elementDone() {
        while (depth > 0) {
            if (--pending[depth - 1] > 0) {
                return;
            }
            depth--;
        }
    }

    private static long parseLength(ByteBuf in, int from, int eol) {
        int end = eol > from && in.getByte(eol - 1) == '\r' ? eol - 1 : eol;
        long value = 0;
        boolean negative = false;
        for (int i = from; i < end; i++) {
            byte b = in.getByte(i);
            if (b == '-' && i == from) {
                negative = true;
            } else if (b >= '0' && b <= '9') {
                value = value * 10 + (b - '0');
            } else {
                throw new CorruptedFrameException("bad length in Redis reply");
            }
        }
        return negative ? -value : value;
    }
}
