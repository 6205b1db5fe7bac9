package io.jgears.server;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.codec.redis.ArrayHeaderRedisMessage;
import io.netty.handler.codec.redis.BulkStringHeaderRedisMessage;
import io.netty.util.ReferenceCountUtil;

/**
 * Refuses oversized headers before the aggregators act on them: an array header announcing two
 * billion elements would otherwise make the aggregator allocate for all of them up front.
 */
final class InputLimits extends ChannelInboundHandlerAdapter {
    private final ServerOptions options;

    InputLimits(ServerOptions options) {
        this.options = options;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (msg instanceof ArrayHeaderRedisMessage header && header.length() > options.maxArrayLength()) {
            ReferenceCountUtil.release(msg);
            throw new DecoderException("invalid multibulk length " + header.length()
                    + " (limit " + options.maxArrayLength() + ")");
        }
        if (msg instanceof BulkStringHeaderRedisMessage header && header.bulkStringLength() > options.maxBulkLength()) {
            ReferenceCountUtil.release(msg);
            throw new DecoderException("invalid bulk length " + header.bulkStringLength()
                    + " (limit " + options.maxBulkLength() + ")");
        }
        ctx.fireChannelRead(msg);
    }
}
