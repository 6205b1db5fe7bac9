package io.jgears.server;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.redis.FixedRedisMessagePool;
import io.netty.handler.codec.redis.RedisArrayAggregator;
import io.netty.handler.codec.redis.RedisBulkStringAggregator;
import io.netty.handler.codec.redis.RedisDecoder;
import io.netty.handler.codec.redis.RedisEncoder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.net.InetSocketAddress;

/** The RESP endpoint clients connect to: {@code redis-cli -p 6380} and every Redis client library. */
public final class RespServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(RespServer.class);

    private final ServerOptions options;
    private final LocalCommands local;
    private EventLoopGroup boss;
    private EventLoopGroup workers;
    private Channel channel;

    public RespServer(ServerOptions options, LocalCommands local) {
        this.options = options;
        this.local = local;
    }

    public RespServer start() throws InterruptedException {
        Transport transport = Transport.CURRENT;
        boss = new MultiThreadIoEventLoopGroup(1, transport.ioHandlers());
        workers = new MultiThreadIoEventLoopGroup(transport.ioHandlers());
        ServerBootstrap b = new ServerBootstrap()
                .group(boss, workers)
                .channel(transport.serverChannel())
                .option(ChannelOption.SO_BACKLOG, 511)
                .childOption(ChannelOption.TCP_NODELAY, true)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        ch.pipeline().addLast(
                                new CommandSplitter(options, local),
                                new RedisDecoder(options.maxInlineLength(), FixedRedisMessagePool.INSTANCE, true),
                                new InputLimits(options),
                                new RedisBulkStringAggregator(),
                                new RedisArrayAggregator(),
                                new RedisEncoder(),
                                new ClientHandler(options, local, String.valueOf(ch.remoteAddress())));
                    }
                });
        try {
            channel = b.bind(options.bind(), options.port()).sync().channel();
        } catch (InterruptedException e) {
            throw e;
        } catch (Exception e) {
            // Netty rethrows the bind failure unchecked (BindException, epoll's NativeIoException): say which port.
            close();
            throw new java.io.UncheckedIOException(new java.io.IOException("cannot listen on " + options.bind() + ":"
                    + options.port() + ": " + e.getMessage(), e));
        }
        log.info("jgears listening on {}:{} ({}), forwarding to Redis at {}:{}", options.bind(), port(),
                transport.name().toLowerCase(java.util.Locale.ROOT), options.redisHost(), options.redisPort());
        return this;
    }

    public int port() {
        return ((InetSocketAddress) channel.localAddress()).getPort();
    }

    @Override
    public void close() {
        if (channel != null) {
            channel.close().syncUninterruptibly();
        }
        if (boss != null) {
            boss.shutdownGracefully(0, 2, java.util.concurrent.TimeUnit.SECONDS);
            workers.shutdownGracefully(0, 2, java.util.concurrent.TimeUnit.SECONDS).syncUninterruptibly();
        }
    }
}
