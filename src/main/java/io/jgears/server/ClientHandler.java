package io.jgears.server;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.codec.redis.ArrayRedisMessage;
import io.netty.handler.codec.redis.FullBulkStringRedisMessage;
import io.netty.handler.codec.redis.InlineCommandRedisMessage;
import io.netty.handler.codec.redis.RedisEncoder;
import io.netty.handler.codec.redis.RedisMessage;
import io.netty.util.ReferenceCountUtil;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One client connection. Commands jgears owns are answered locally; all others go, as they are, over
 * this client's own upstream connection to Redis, so connection state (SELECT, MULTI, WATCH, blocking
 * commands, pub/sub, CLIENT REPLY) behaves as on Redis. Replies leave in command order whatever answers
 * first: each command takes a slot in {@link #queue}, and slots are written from the head once filled.
 * All state is touched only on this channel's event loop (the upstream channel shares it).
 */
final class ClientHandler extends ChannelInboundHandlerAdapter {
    private static final Logger log = LoggerFactory.getLogger(ClientHandler.class);
    private static final AtomicLong IDS = new AtomicLong();

    /** A reply position in the client's stream; {@code reply} is a RedisMessage or a raw ByteBuf frame. */
    private static final class Slot {
        Object reply;
        boolean closeAfter;
        /** Sees Redis' reply frame before it is written (AUTH: did it succeed?). */
        java.util.function.Consumer<ByteBuf> onReply;
        /** A KeysReader commands=[...] hook: runs once Redis has answered; a reply replacing Redis' one, or null. */
        java.util.function.Supplier<CompletableFuture<RedisMessage>> replyHook;
        /** EXEC: the transaction's commands in order, null for those Redis ran, the ones jgears runs after. */
        List<Queued> transaction;
    }

    /**
     * Inside MULTI: the commands of the transaction so far, null for those forwarded to Redis, the
     * arguments of the RG.* ones (queued here, run when EXEC succeeds, their replies put in place).
     */
    private List<Queued> transaction;

    /** A command of a transaction that jgears runs after Redis' EXEC: an RG.* command, or a hooked one. */
    private record Queued(boolean hooked, List<byte[]> args) {
    }

    private final ServerOptions options;
    private final LocalCommands local;
    private final ClientInfo info;
    private final ArrayDeque<Slot> queue = new ArrayDeque<>();
    /** Slots of forwarded commands still waiting for Redis, oldest first. */
    private final ArrayDeque<Slot> awaiting = new ArrayDeque<>();
    /** Commands (RedisMessages or raw frames) waiting for the upstream connection. */
    private final List<Object> unsent = new ArrayList<>();

    private ChannelHandlerContext ctx;
    private Channel upstream;
    private boolean connecting;
    /** Subscribed or MONITOR: upstream frames are not replies to single commands; pass them through. */
    private boolean passThrough;
    /** CLIENT REPLY OFF: forwarded commands get no reply. */
    private boolean repliesOff;
    private boolean skipNextReply;
    private boolean closing;

    ClientHandler(ServerOptions options, LocalCommands local, String remote) {
        this.options = options;
        this.local = local;
        this.info = new ClientInfo(IDS.incrementAndGet(), remote, !options.authRequired());
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        this.ctx = ctx;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (closing) {
            ReferenceCountUtil.release(msg instanceof CommandSplitter.Raw raw ? raw.frame() : msg);
            return;
        }
        if (msg instanceof CommandSplitter.Raw raw) {
            // Forwarded as it arrived (see CommandSplitter): only its reply slot is jgears' business.
            if (transaction != null) {
                transaction.add(null);
            }
            if (expectsReply()) {
                Slot slot = new Slot();
                queue.add(slot);
                awaiting.add(slot);
            }
            send(raw.frame());
            return;
        }
        ArrayRedisMessage command;
        if (msg instanceof InlineCommandRedisMessage inline) {
            command = fromInline(inline.content());
            if (command == null) {
                return;
            }
        } else if (msg instanceof ArrayRedisMessage array) {
            command = array;
        } else {
            ReferenceCountUtil.release(msg);
            reply(Replies.error("ERR Protocol error: expected a command array"));
            return;
        }
        List<RedisMessage> children = command.children();
        if (children.isEmpty()) {
            command.release();
            return;
        }
        for (RedisMessage child : children) {
            if (!(child instanceof FullBulkStringRedisMessage bulk) || bulk.isNull()) {
                command.release();
                reply(Replies.error("ERR Protocol error: command arguments must be bulk strings"));
                return;
            }
        }
        String name = ((FullBulkStringRedisMessage) children.getFirst()).content()
                .toString(StandardCharsets.UTF_8).toUpperCase(Locale.ROOT);
        if (name.equals("QUIT")) {
            command.release();
            Slot slot = reply(Replies.OK);
            slot.closeAfter = true;
            drain(true);
        } else if (local.handles(name)) {
            List<byte[]> args = argsOf(command);
            command.release();
            if (!info.authenticated()) {
                reply(Replies.error("NOAUTH Authentication required."));
                return;
            }
            if (transaction != null) {
                // As RedisGears' commands are in a transaction: queued now, run at EXEC.
                transaction.add(new Queued(false, args));
                reply(Replies.simple("QUEUED"));
                return;
            }
            runLocal(() -> local.execute(info, args));
        } else if (info.authenticated() && transaction != null && local.hooks(name)) {
            // A hooked command in MULTI: jgears runs it after Redis' EXEC, at its place in EXEC's reply.
            transaction.add(new Queued(true, argsOf(command)));
            command.release();
            reply(Replies.simple("QUEUED"));
        } else if (info.authenticated() && local.hooks(name)) {
            // A command hook registration may answer this command instead of Redis.
            List<byte[]> args = argsOf(command);
            CompletableFuture<RedisMessage> hooked = local.hook(info, args);
            if (hooked == null) {
                forward(command, name, local.watchKeys(info, args));
            } else {
                command.release();
                runLocal(() -> hooked);
            }
        } else {
            forward(command, name);
        }
    }

    private static List<byte[]> argsOf(ArrayRedisMessage command) {
        List<byte[]> args = new ArrayList<>(command.children().size());
        for (RedisMessage child : command.children()) {
            args.add(ByteBufUtil.getBytes(((FullBulkStringRedisMessage) child).content()));
        }
        return args;
    }

    private void runLocal(java.util.function.Supplier<CompletableFuture<RedisMessage>> call) {
        Slot slot = new Slot();
        queue.add(slot);
        try {
            call.get().whenComplete((reply, error) -> ctx.executor().execute(() -> {
                slot.reply = error == null ? reply : Replies.error("ERR " + rootMessage(error));
                drain(true);
            }));
        } catch (RuntimeException e) {
            slot.reply = Replies.error("ERR " + rootMessage(e));
            drain(true);
        }
    }

    private void forward(ArrayRedisMessage command, String name) {
        forward(command, name, null);
    }

    private void forward(ArrayRedisMessage command, String name,
                         java.util.function.Supplier<CompletableFuture<RedisMessage>> replyHook) {
        switch (name) {
            case "MULTI" -> {
                if (transaction == null) {
                    transaction = new ArrayList<>();
                    forwardOnly(command, name, null);
                    return;
                }
            }
            case "EXEC" -> {
                List<Queued> queued = transaction;
                transaction = null;
                if (queued != null && queued.stream().anyMatch(java.util.Objects::nonNull) && expectsReply(name, command)) {
                    Slot slot = new Slot();
                    slot.transaction = queued;
                    queue.add(slot);
                    awaiting.add(slot);
                    send(command);
                    return;
                }
            }
            case "DISCARD", "RESET" -> transaction = null;
            default -> {
                if (transaction != null) {
                    transaction.add(null);
                }
            }
        }
        forwardOnly(command, name, replyHook);
    }

    private void forwardOnly(ArrayRedisMessage command, String name,
                             java.util.function.Supplier<CompletableFuture<RedisMessage>> replyHook) {
        if (expectsReply(name, command)) {
            Slot slot = new Slot();
            slot.replyHook = replyHook;
            slot.onReply = name.equals("FLUSHALL") ? flushWatcher() : authWatcher(name, command);
            queue.add(slot);
            awaiting.add(slot);
        } else if (replyHook != null) {
            replyHook.get();  // no reply to replace (CLIENT REPLY OFF), but its executions still run
        }
        send(command);
    }

    /** Writes a command (a RedisMessage or a raw frame) upstream, connecting first if need be. */
    private void send(Object command) {
        if (upstream != null && upstream.isActive()) {
            upstream.write(command);
            return;
        }
        unsent.add(command);
        if (!connecting) {
            connectUpstream();
        }
    }

    /** FLUSHALL: once Redis has done it (not just queued it in MULTI), jgears stores its state again. */
    private java.util.function.Consumer<ByteBuf> flushWatcher() {
        return frame -> {
            if (frame.readableBytes() == 5 && frame.toString(StandardCharsets.US_ASCII).equals("+OK\r\n")) {
                local.afterFlushAll();
            }
        };
    }

    /**
     * For AUTH and HELLO ... AUTH: remembers the credentials once Redis accepts them, so that jgears'
     * own commands are allowed and the client's sessions run as that ACL user. For HELLO protover and
     * RESET: remembers the RESP version Redis now answers this client in (jgears' own replies that differ
     * between RESP2 and RESP3 follow it).
     */
    private java.util.function.Consumer<ByteBuf> authWatcher(String name, ArrayRedisMessage command) {
        int n = command.children().size();
        String user = null;
        String password = null;
        int protocol = 0;
        if (name.equals("AUTH") && (n == 2 || n == 3)) {
            user = n == 2 ? "default" : arg(command, 1);
            password = arg(command, n - 1);
        } else if (name.equals("HELLO")) {
            if (n >= 2) {
                protocol = "3".equals(arg(command, 1)) ? 3 : "2".equals(arg(command, 1)) ? 2 : 0;
            }
            for (int i = 2; i + 2 < n; i++) {
                if (arg(command, i).equalsIgnoreCase("AUTH")) {
                    user = arg(command, i + 1);
                    password = arg(command, i + 2);
                    break;
                }
            }
        } else if (name.equals("RESET")) {
            protocol = 2;
        }
        if (user == null && protocol == 0) {
            return null;
        }
        String u = user;
        String p = password;
        int version = protocol;
        return frame -> {
            byte first = frame.getByte(frame.readerIndex());
            if (first != '-' && first != '!') {
                if (u != null) {
                    info.authenticate(u, p);
                }
                if (version != 0) {
                    info.protocol(version);
                }
            }
        };
    }

    /**
     * Whether Redis will answer this forwarded command with exactly one reply frame. Subscriptions and
     * MONITOR switch to pass-through (frames are written as they come); CLIENT REPLY OFF/SKIP silence replies.
     */
    private boolean expectsReply(String name, ArrayRedisMessage command) {
        boolean expects;
        if (name.equals("CLIENT") && command.children().size() == 3 && arg(command, 1).equalsIgnoreCase("REPLY")) {
            switch (arg(command, 2).toUpperCase(Locale.ROOT)) {
                case "OFF" -> { repliesOff = true; skipNextReply = false; expects = false; }
                case "ON" -> { repliesOff = false; skipNextReply = false; expects = true; }
                case "SKIP" -> { skipNextReply = !repliesOff; expects = false; }
                default -> expects = !repliesOff;
            }
        } else {
            expects = expectsReply();
        }
        switch (name) {
            case "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR" -> passThrough = true;
            default -> { }
        }
        return expects && !passThrough;
    }

    /** The reply rule of a command that changes no reply mode: CLIENT REPLY SKIP/OFF and pass-through. */
    private boolean expectsReply() {
        if (skipNextReply) {
            skipNextReply = false;
            return false;
        }
        return !repliesOff && !passThrough;
    }

    private static String arg(ArrayRedisMessage command, int i) {
        return ((FullBulkStringRedisMessage) command.children().get(i)).content().toString(StandardCharsets.UTF_8);
    }

    private void connectUpstream() {
        connecting = true;
        Bootstrap b = new Bootstrap()
                .group(ctx.channel().eventLoop())
                .channel(Transport.CURRENT.socketChannel())
                .option(ChannelOption.TCP_NODELAY, true)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, 5000)
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        ch.pipeline().addLast(new RedisEncoder(), new RespFrameDecoder(), new UpstreamHandler());
                    }
                });
        b.connect(options.redisHost(), options.redisPort()).addListener((ChannelFutureListener) f -> {
            connecting = false;
            if (f.isSuccess()) {
                upstream = f.channel();
                for (Object m : unsent) {
                    upstream.write(m);
                }
                unsent.clear();
                upstream.flush();
            } else {
                String why = "ERR jgears cannot reach Redis at " + options.redisHost() + ":" + options.redisPort()
                        + ": " + rootMessage(f.cause());
                for (Object m : unsent) {
                    ReferenceCountUtil.release(m);
                }
                unsent.clear();
                failAwaiting(why);
                drain(true);
            }
        });
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        if (upstream != null) {
            upstream.flush();
        }
        ctx.flush();
    }

    /**
     * A MOVED/ASK error names a Redis node; on a cluster the client is sent to the jgears beside it instead
     * (see {@link LocalCommands#redirectTarget}). Any other error frame is returned as it is.
     */
    private ByteBuf redirected(ByteBuf frame) {
        byte second = frame.getByte(frame.readerIndex() + 1);
        if (second != 'M' && second != 'A') {
            return frame;
        }
        String text = frame.toString(StandardCharsets.UTF_8);
        if (!text.startsWith("-MOVED ") && !text.startsWith("-ASK ")) {
            return frame;
        }
        String[] parts = text.strip().split(" ");
        if (parts.length != 3) {
            return frame;
        }
        String target = local.redirectTarget(parts[2]);
        if (target == null) {
            return frame;
        }
        frame.release();
        return Unpooled.copiedBuffer(parts[0] + " " + parts[1] + " " + target + "\r\n", StandardCharsets.UTF_8);
    }

    /** Receives whole reply frames from Redis. */
    private final class UpstreamHandler extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext uctx, Object msg) {
            ByteBuf received = (ByteBuf) msg;
            if (closing) {
                received.release();
                return;
            }
            ByteBuf frame = received.readableBytes() > 6 && received.getByte(received.readerIndex()) == '-'
                    ? redirected(received) : received;
            boolean push = frame.getByte(frame.readerIndex()) == '>';
            Slot slot = push ? null : awaiting.poll();
            if (slot != null && slot.onReply != null) {
                slot.onReply.accept(frame);
            }
            if (slot != null && slot.transaction != null) {
                completeTransaction(slot, frame);
                return;
            }
            if (slot != null && slot.replyHook != null) {
                // A hooking registration runs the events this command caused, and may answer in its place.
                CompletableFuture<Void> barrier = local.afterForwardedReply();
                var hook = slot.replyHook;
                CompletableFuture<RedisMessage> hooked = barrier == null ? hook.get() : barrier.thenCompose(x -> hook.get());
                Slot held = slot;
                hooked.whenComplete((override, error) -> ctx.executor().execute(() -> {
                    if (closing) {
                        frame.release();
                        return;
                    }
                    if (override != null) {
                        frame.release();
                        held.reply = override;
                    } else {
                        held.reply = frame;
                    }
                    drain(true);
                }));
                return;
            }
            if (slot != null) {
                CompletableFuture<Void> barrier = local.afterForwardedReply();
                if (barrier != null && !barrier.isDone()) {
                    // A sync registration runs the events this command caused before the client sees the reply.
                    Slot held = slot;
                    barrier.whenComplete((x, error) -> ctx.executor().execute(() -> {
                        if (closing) {
                            frame.release();
                            return;
                        }
                        held.reply = frame;
                        drain(true);
                    }));
                    return;
                }
            }
            if (slot == null) {
                slot = new Slot();
                queue.add(slot);
                if (passThrough && endsPassThrough(frame)) {
                    passThrough = false;
                }
            }
            slot.reply = frame;
            drain(false);
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext uctx) {
            ctx.flush();
        }

        @Override
        public void channelWritabilityChanged(ChannelHandlerContext uctx) {
            ctx.channel().config().setAutoRead(uctx.channel().isWritable());
        }

        @Override
        public void channelInactive(ChannelHandlerContext uctx) {
            upstream = null;
            if (!awaiting.isEmpty() || passThrough) {
                failAwaiting("ERR jgears lost its connection to Redis; connection state is gone");
                drain(true);
                closeAfterDrain();
            } else if (!closing) {
                // Redis closed an idle connection (QUIT from elsewhere, timeout, CLIENT KILL): so do we.
                closeAfterDrain();
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext uctx, Throwable cause) {
            log.warn("upstream connection error for client {}: {}", info.id(), rootMessage(cause));
            uctx.close();
        }
    }

    /**
     * EXEC's reply: when Redis ran the transaction (an array), its RG.* commands run now, in order, and
     * their replies take their places among Redis' ones; otherwise (an error, WATCH) they do not run.
     */
    private void completeTransaction(Slot slot, ByteBuf frame) {
        int start = frame.readerIndex();
        if (frame.getByte(start) != '*' || frame.getByte(start + 1) == '-') {
            slot.reply = frame;
            drain(false);
            return;
        }
        List<ByteBuf> ran = new ArrayList<>();
        int lineEnd = frame.indexOf(start, frame.writerIndex(), (byte) '\n') + 1;
        int n = Integer.parseInt(frame.toString(start + 1, lineEnd - start - 3, StandardCharsets.US_ASCII));
        for (int i = 0, at = lineEnd; i < n; i++) {
            int end = endOfValue(frame, at);
            ran.add(frame.retainedSlice(at, end - at));
            at = end;
        }
        frame.release();
        CompletableFuture<List<RedisMessage>> locals = CompletableFuture.completedFuture(new ArrayList<>());
        for (Queued q : slot.transaction) {
            if (q != null) {
                locals = locals.thenCompose(done -> safely(() -> q.hooked() ? local.hookQueued(info, q.args())
                                : local.executeInTransaction(info, q.args()))
                        .thenApply(reply -> {
                            done.add(reply);
                            return done;
                        }));
            }
        }
        locals.whenComplete((replies, error) -> ctx.executor().execute(() -> {
            List<Object> parts = new ArrayList<>();
            parts.add(null);
            int r = 0;
            int l = 0;
            for (Queued q : slot.transaction) {
                if (q == null) {
                    if (r < ran.size()) {
                        parts.add(ran.get(r++));
                    }
                } else {
                    parts.add(replies != null && l < replies.size() ? replies.get(l++) : Replies.error("ERR " + rootMessage(error)));
                }
            }
            while (r < ran.size()) {
                parts.add(ran.get(r++));
            }
            parts.set(0, Unpooled.copiedBuffer("*" + (parts.size() - 1) + "\r\n", StandardCharsets.US_ASCII));
            if (closing) {
                parts.forEach(ReferenceCountUtil::release);
                return;
            }
            slot.reply = parts;
            drain(true);
        }));
    }

    private static CompletableFuture<RedisMessage> safely(java.util.function.Supplier<CompletableFuture<RedisMessage>> call) {
        try {
            return call.get().exceptionally(e -> Replies.error("ERR " + rootMessage(e)));
        } catch (RuntimeException e) {
            return CompletableFuture.completedFuture(Replies.error("ERR " + rootMessage(e)));
        }
    }

    /** Where the RESP value starting at {@code i} ends (the index after it). */
    private static int endOfValue(ByteBuf b, int i) {
        byte type = b.getByte(i);
        int lineEnd = b.indexOf(i, b.writerIndex(), (byte) '\n') + 1;
        switch (type) {
            case '$', '=', '!' -> {
                long len = Long.parseLong(b.toString(i + 1, lineEnd - i - 3, StandardCharsets.US_ASCII));
                return len < 0 ? lineEnd : lineEnd + (int) len + 2;
            }
            case '*', '~', '>', '%', '|' -> {
                long n = Long.parseLong(b.toString(i + 1, lineEnd - i - 3, StandardCharsets.US_ASCII));
                if (type == '%' || type == '|') {
                    n *= 2;
                }
                int at = lineEnd;
                for (long k = 0; k < n; k++) {
                    at = endOfValue(b, at);
                }
                return type == '|' ? endOfValue(b, at) : at;
            }
            default -> {
                return lineEnd;
            }
        }
    }

    /** An unsubscribe reply with no subscriptions left, or RESET: the connection is back to request/reply. */
    private static boolean endsPassThrough(ByteBuf frame) {
        if (frame.readableBytes() > 256) {
            return false;
        }
        String text = frame.toString(StandardCharsets.UTF_8);
        if (text.equals("+RESET\r\n")) {
            return true;
        }
        return text.contains("unsubscribe\r\n") && text.endsWith(":0\r\n");
    }

    private void failAwaiting(String why) {
        Slot slot;
        while ((slot = awaiting.poll()) != null) {
            slot.reply = Replies.error(why);
        }
    }

    private void closeAfterDrain() {
        Slot slot = new Slot();
        slot.reply = Unpooled.EMPTY_BUFFER;
        slot.closeAfter = true;
        queue.add(slot);
        drain(true);
    }

    private Slot reply(RedisMessage message) {
        Slot slot = new Slot();
        slot.reply = message;
        queue.add(slot);
        drain(true);
        return slot;
    }

    private void drain(boolean flush) {
        boolean wrote = false;
        while (!queue.isEmpty() && queue.peek().reply != null && !closing) {
            Slot slot = queue.poll();
            if (slot.reply instanceof List<?> parts) {
                parts.forEach(this::write);  // a transaction's reply: Redis' frames and jgears' replies
            } else {
                write(slot.reply);
            }
            wrote = true;
            if (slot.closeAfter) {
                closing = true;
                ctx.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
                return;
            }
        }
        if (wrote && flush) {
            ctx.flush();
        }
    }

    /** A reply: a frame of Redis (as it came), one of jgears (encoded by Netty), or jgears' own RESP3 bytes. */
    private void write(Object reply) {
        ctx.write(reply instanceof Replies.Raw raw ? raw.content() : reply);
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
        if (upstream != null) {
            upstream.config().setAutoRead(ctx.channel().isWritable());
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        closing = true;
        if (upstream != null) {
            upstream.close();
        }
        for (Object m : unsent) {
            ReferenceCountUtil.release(m);
        }
        unsent.clear();
        for (Slot slot : queue) {
            if (slot.reply instanceof List<?> parts) {
                parts.forEach(ReferenceCountUtil::release);
            } else {
                ReferenceCountUtil.release(slot.reply);
            }
        }
        queue.clear();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        if (cause instanceof DecoderException) {
            // Like Redis: a protocol error gets one error reply, then the connection is closed.
            Slot slot = new Slot();
            slot.reply = Replies.error("ERR Protocol error: " + rootMessage(cause));
            slot.closeAfter = true;
            queue.add(slot);
            drain(true);
        } else {
            log.debug("client {} error: {}", info.id(), rootMessage(cause));
            ctx.close();
        }
    }

    private static ArrayRedisMessage fromInline(String line) {
        String[] words = line.trim().split("\\s+");
        if (words.length == 0 || words[0].isEmpty()) {
            return null;
        }
        List<RedisMessage> children = new ArrayList<>(words.length);
        for (String w : words) {
            children.add(new FullBulkStringRedisMessage(Unpooled.copiedBuffer(w, StandardCharsets.UTF_8)));
        }
        return new ArrayRedisMessage(children);
    }

    static String rootMessage(Throwable t) {
        Throwable c = t;
        while (c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
        }
        String m = c.getMessage();
        return m == null ? c.getClass().getSimpleName() : m;
    }
}
