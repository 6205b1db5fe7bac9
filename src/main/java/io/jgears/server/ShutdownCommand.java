package io.jgears.server;

import io.jgears.redis.RedisBackend;
import io.lettuce.core.RedisURI;
import io.netty.handler.codec.redis.RedisMessage;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * SHUTDOWN through jgears behaves as on Redis and stops jgears with it: a jgears whose Redis is gone
 * serves nothing. The command runs on Redis as the client's ACL user, with its arguments (NOSAVE, SAVE,
 * NOW, FORCE, ABORT) as given; Redis' error reply (refused by ACL, a failed save) goes back to the client
 * and nothing stops. With an external Redis (--redis) that is that Redis' shutdown too, as it is for a
 * module inside it. Every other command goes to the wrapped {@link LocalCommands}.
 */
public final class ShutdownCommand extends DelegatingLocalCommands {
    private final RedisBackend redis;
    private final Runnable stopJgears;

    /** Told true before a SHUTDOWN goes to Redis, false when Redis refused it (the embedded Redis' supervisor). */
    private final java.util.function.Consumer<Boolean> redisExitExpected;

    public ShutdownCommand(LocalCommands next, RedisBackend redis, Runnable stopJgears,
                           java.util.function.Consumer<Boolean> redisExitExpected) {
        super(next);
        this.redis = redis;
        this.stopJgears = stopJgears;
        this.redisExitExpected = redisExitExpected;
    }

    @Override
    public boolean handles(String upperName) {
        return upperName.equals("SHUTDOWN") || next.handles(upperName);
    }

    @Override
    public CompletableFuture<RedisMessage> execute(ClientInfo client, List<byte[]> args) {
        if (!new String(args.getFirst(), StandardCharsets.UTF_8).equalsIgnoreCase("SHUTDOWN")) {
            return next.execute(client, args);
        }
        CompletableFuture<RedisMessage> reply = new CompletableFuture<>();
        // Off the event loop: SHUTDOWN SAVE waits for Redis to write its data.
        Thread.startVirtualThread(() -> {
            String answer;
            // The supervisor of an embedded Redis must not start it again while it shuts down.
            redisExitExpected.accept(true);
            try {
                answer = sendToRedis(client, args);
            } catch (IOException e) {
                redisExitExpected.accept(false);
                reply.complete(Replies.error("ERR jgears could not reach Redis: " + e.getMessage()));
                return;
            }
            if (answer != null) {
                redisExitExpected.accept(false);
            }
            if (answer == null) {
                // Redis closed the connection without a reply: it is going down, and so does jgears (the
                // client's connection closes as it would on Redis; no reply is sent).
                Thread.ofPlatform().name("jgears-shutdown-command").start(stopJgears);
            } else if (answer.startsWith("-")) {
                reply.complete(Replies.error(answer.substring(1)));  // refused: Redis and jgears keep running
            } else {
                reply.complete(Replies.simple(answer.substring(1)));  // SHUTDOWN ABORT: OK
            }
        });
        return reply;
    }

    /**
     * Sends the command on a connection of its own, authenticated as the client (or as jgears), and
     * returns the first reply line, or null when Redis closed the connection instead of answering.
     * A plain socket, not Lettuce: a client library would reconnect and send the SHUTDOWN again.
     */
    private String sendToRedis(ClientInfo client, List<byte[]> args) throws IOException {
        RedisURI uri = redis.uri();
        try (Socket socket = new Socket(uri.getHost(), uri.getPort())) {
            socket.setSoTimeout((int) Math.min(Integer.MAX_VALUE, redis.commandTimeout().toMillis() * 10));
            OutputStream out = socket.getOutputStream();
            BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
            String user = client.user();
            String password = client.password();
            if (user == null) {
                user = redis.ownUser().name();
                password = redis.ownUser().password();
            }
            if (user != null && password != null) {
                out.write(frame(List.of("AUTH".getBytes(StandardCharsets.UTF_8), user.getBytes(StandardCharsets.UTF_8),
                        password.getBytes(StandardCharsets.UTF_8))));
                String auth = in.readLine();
                if (auth == null || auth.startsWith("-")) {
                    return auth == null ? "-ERR Redis closed the connection" : auth;
                }
            }
            out.write(frame(args));
            out.flush();
            try {
                return in.readLine();
            } catch (SocketException e) {
                return null;  // reset by a Redis that is exiting
            }
        }
    }

    private static byte[] frame(List<byte[]> args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(("*" + args.size() + "\r\n").getBytes(StandardCharsets.US_ASCII));
        for (byte[] a : args) {
            out.writeBytes(("$" + a.length + "\r\n").getBytes(StandardCharsets.US_ASCII));
            out.writeBytes(a);
            out.writeBytes("\r\n".getBytes(StandardCharsets.US_ASCII));
        }
        return out.toByteArray();
    }



}
