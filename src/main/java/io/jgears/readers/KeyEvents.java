package io.jgears.readers;

import io.jgears.redis.RedisBackend;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisConnectionStateListener;
import io.lettuce.core.RedisURI;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.protocol.ProtocolVersion;
import io.lettuce.core.pubsub.RedisPubSubAdapter;
import io.lettuce.core.pubsub.StatefulRedisPubSubConnection;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Key events from Redis keyspace notifications, so that writes made directly to Redis trigger too. jgears
 * subscribes to {@code __keyspace@0__:<prefix>} for each prefix its registrations use, so Redis matches
 * the keys and sends only the events some registration wants: a script's own writes to other keys (an
 * INCR per event, say) cost neither Redis nor jgears a notification. Each event arrives once per prefix
 * it matches, tagged with that prefix. jgears turns on the notification classes it needs ({@code K} plus
 * {@code A} and {@code m}) and keeps those the operator set. Notifications sent while jgears is disconnected are lost (pub/sub keeps
 * no history): on reconnect the gap is reported to the listener. A dedicated Lettuce client owns the
 * subscription, so its connection events are this subscription's alone.
 */
public final class KeyEvents implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(KeyEvents.class);
    private static final String CHANNEL = "__keyspace@0__:";
    private static final int PREFIX = CHANNEL.length();

    /** Receives events on Lettuce's I/O thread: must not block. */
    public interface Listener {
        /** {@code key} had {@code event}; {@code prefix} is the subscribed prefix it matched. */
        void onKeyEvent(String prefix, String event, byte[] key);

        /** Notifications between {@code from} and {@code to} were lost. */
        void onGap(Instant from, Instant to);
    }

    private final RedisBackend redis;
    private final RedisClient client;
    private final StatefulRedisPubSubConnection<byte[], byte[]> connection;
    /**
     * Barriers are markers PUBLISHed on a channel of this subscription's own, not PINGs on it: a PING reply
     * on a RESP2 subscribed connection is an array like a pub/sub message, and a notification arriving
     * while the PING was in flight could be taken for its reply (the barrier then released a sync writer's
     * reply before its event was seen: RegistrationsTest and KeyEventLanesTest failed that way).
     */
    private final byte[] barrierChannel = ("__jgears__:barrier:" + java.util.UUID.randomUUID()).getBytes(StandardCharsets.US_ASCII);
    private final io.lettuce.core.api.StatefulRedisConnection<byte[], byte[]> publisher;
    private final java.util.concurrent.atomic.AtomicLong barrierSeq = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.ConcurrentSkipListMap<Long, CompletableFuture<Void>> barriers =
            new java.util.concurrent.ConcurrentSkipListMap<>();
    private final ExecutorService control = Executors.newSingleThreadExecutor(
            r -> Thread.ofPlatform().name("jgears-keyevents").daemon().unstarted(r));
    private volatile Instant disconnectedAt;
    private volatile boolean closing;
    /** The prefixes subscribed to (guarded by this). */
    private final java.util.Set<String> subscribed = new java.util.HashSet<>();

    public KeyEvents(RedisBackend redis, Listener listener) {
        this.redis = redis;
        RedisURI uri = redis.uri();
        this.client = RedisClient.create(uri);
        client.setOptions(ClientOptions.builder().protocolVersion(ProtocolVersion.RESP2).autoReconnect(true).build());
        client.addListener(new RedisConnectionStateListener() {
            @Override
            public void onRedisDisconnected(io.lettuce.core.RedisChannelHandler<?, ?> connection) {
                if (disconnectedAt == null && !closing) {
                    disconnectedAt = Instant.now();
                    log.warn("key event notifications: disconnected from Redis; events until the reconnect are lost");
                }
            }

            @Override
            public void onRedisConnected(io.lettuce.core.RedisChannelHandler<?, ?> connection, SocketAddress address) {
                Instant from = disconnectedAt;
                if (from == null) {
                    return;
                }
                disconnectedAt = null;
                Instant to = Instant.now();
                // Redis may have restarted with its notification flags reset: set them again, off the I/O thread.
                control.execute(KeyEvents.this::enableNotificationsUntilDone);
                log.warn("key event notifications: reconnected; events from {} to {} were lost", from, to);
                listener.onGap(from, to);
            }
        });
        enableNotifications();
        this.connection = client.connectPubSub(ByteArrayCodec.INSTANCE);
        connection.addListener(new RedisPubSubAdapter<>() {
            @Override
            public void message(byte[] pattern, byte[] channel, byte[] message) {
                listener.onKeyEvent(Glob.prefixOfPattern(new String(pattern, PREFIX, pattern.length - PREFIX, StandardCharsets.UTF_8)),
                        new String(message, StandardCharsets.US_ASCII), java.util.Arrays.copyOfRange(channel, PREFIX, channel.length));
            }

            @Override
            public void message(byte[] channel, byte[] message) {
                if (java.util.Arrays.equals(channel, barrierChannel)) {
                    // Markers arrive in the order Redis ran their PUBLISH: this one and every earlier one are through.
                    releaseBarriers(Long.parseLong(new String(message, StandardCharsets.US_ASCII)));
                }
            }
        });
        // Lettuce subscribes again after a reconnect.
        connection.sync().subscribe(barrierChannel);
        this.publisher = client.connect(ByteArrayCodec.INSTANCE);
    }

    /**
     * Subscribes to the events of keys matching these prefixes (Redis glob patterns) and unsubscribes from
     * the others. Waits briefly for Redis to confirm, so that a registration sees the writes made after it
     * became active; while Redis is away the change is sent when the connection is back.
     */
    public synchronized void subscribe(java.util.Set<String> prefixes) {
        java.util.Set<String> added = new java.util.HashSet<>(prefixes);
        added.removeAll(subscribed);
        java.util.Set<String> removed = new java.util.HashSet<>(subscribed);
        removed.removeAll(prefixes);
        List<CompletableFuture<Void>> pending = new java.util.ArrayList<>();
        if (!added.isEmpty()) {
            pending.add(connection.async().psubscribe(channels(added)).toCompletableFuture());
        }
        if (!removed.isEmpty()) {
            pending.add(connection.async().punsubscribe(channels(removed)).toCompletableFuture());
        }
        subscribed.clear();
        subscribed.addAll(prefixes);
        try {
            CompletableFuture.allOf(pending.toArray(CompletableFuture[]::new)).get(5, java.util.concurrent.TimeUnit.SECONDS);
            if (!added.isEmpty() || !removed.isEmpty()) {
                log.info("key event notifications: subscribed to prefixes {}", prefixes);
            }
        } catch (Exception e) {
            log.warn("key event notifications: Redis did not confirm the subscription to {} yet: {}", added, RedisBackend.rootMessage(e));
        }
    }

    private static byte[][] channels(java.util.Set<String> prefixes) {
        // RedisGears matches a registration's prefix literally (a trailing * for "starts with"): escaped,
        // Redis' glob matches the same keys.
        return prefixes.stream().map(p -> (CHANNEL + Glob.prefixPattern(p)).getBytes(StandardCharsets.UTF_8)).toArray(byte[][]::new);
    }

    /** After a reconnect jgears' command connection may still be reconnecting: retry until it takes. */
    private void enableNotificationsUntilDone() {
        for (int attempt = 1; !control.isShutdown(); attempt++) {
            try {
                enableNotifications();
                return;
            } catch (RuntimeException e) {
                if (attempt == 1 || attempt % 20 == 0) {
                    log.warn("could not re-enable keyspace notifications yet (attempt {}): {}", attempt, e.getMessage());
                }
                try {
                    Thread.sleep(250);
                } catch (InterruptedException ie) {
                    return;
                }
            }
        }
    }

    private void enableNotifications() {
        List<?> current = (List<?>) redis.execute(List.of("CONFIG".getBytes(), "GET".getBytes(), "notify-keyspace-events".getBytes()));
        String flags = current.size() > 1 ? String.valueOf(current.get(1)) : "";
        StringBuilder wanted = new StringBuilder(flags);
        // m: keymiss (reads of missing keys), which A leaves out; KeysReader registrations take it as RedisGears' do.
        for (char c : new char[]{'K', 'A', 'm'}) {
            if (flags.indexOf(c) < 0) {
                wanted.append(c);
            }
        }
        raisePubSubBufferLimit();
        if (!wanted.toString().equals(flags)) {
            redis.execute(List.of("CONFIG".getBytes(), "SET".getBytes(), "notify-keyspace-events".getBytes(),
                    wanted.toString().getBytes(StandardCharsets.US_ASCII)));
            log.info("enabled keyspace notifications: notify-keyspace-events '{}' -> '{}' (jgears needs K, A and m for "
                    + "KeysReader and StreamReader registrations)", flags, wanted);
        }
    }

    /** 256 MB hard, 64 MB for 60 s: what jgears sets for pub/sub clients when the limit is lower. */
    private static final long PUBSUB_HARD = 256L << 20;
    private static final long PUBSUB_SOFT = 64L << 20;

    /**
     * Redis disconnects a subscriber whose output buffer passes its pub/sub limit (default 32 MB, or 8 MB
     * for 60 s): a burst of writes (100k SETs pipelined) produces notifications faster than a busy jgears
     * drains them, and the lost connection loses events. jgears raises the limit for pub/sub clients when
     * it is lower, and says so.
     */
    private void raisePubSubBufferLimit() {
        List<?> current = (List<?>) redis.execute(List.of("CONFIG".getBytes(), "GET".getBytes(), "client-output-buffer-limit".getBytes()));
        String limits = current.size() > 1 ? String.valueOf(current.get(1)) : "";
        String[] f = limits.split(" ");
        for (int i = 0; i + 3 < f.length; i += 4) {
            if (f[i].equals("pubsub")) {
                long hard = Long.parseLong(f[i + 1]);
                long soft = Long.parseLong(f[i + 2]);
                if ((hard != 0 && hard < PUBSUB_HARD) || (soft != 0 && soft < PUBSUB_SOFT)) {
                    String wanted = "pubsub " + PUBSUB_HARD + " " + PUBSUB_SOFT + " 60";
                    redis.execute(List.of("CONFIG".getBytes(), "SET".getBytes(), "client-output-buffer-limit".getBytes(),
                            wanted.getBytes(StandardCharsets.US_ASCII)));
                    log.info("raised Redis' pub/sub output buffer limit ({} {} {} -> {}) so that bursts of key events do "
                            + "not disconnect jgears' subscription", f[i + 1], f[i + 2], f[i + 3], wanted);
                }
            }
        }
    }

    /**
     * Completes once every notification Redis queued for this subscription before now has been handed to
     * the listener: a marker PUBLISHed now reaches this subscription after them (one socket, in order).
     */
    public CompletableFuture<Void> barrier() {
        long seq = barrierSeq.incrementAndGet();
        CompletableFuture<Void> marker = new CompletableFuture<>();
        barriers.put(seq, marker);
        publisher.async().publish(barrierChannel, Long.toString(seq).getBytes(StandardCharsets.US_ASCII)).whenComplete((receivers, error) -> {
            if (error != null || receivers == 0) {
                // Not subscribed right now (reconnecting; the events meanwhile are reported as a gap) or Redis is
                // away: nothing more can be waited for.
                log.warn("key-event barrier could not be sent ({}); releasing waiting replies",
                        error != null ? RedisBackend.rootMessage(error) : "the subscription is not active");
                releaseBarriers(seq);
            }
        });
        // The timeout only guards against a subscription that is gone for good; on a busy machine a marker
        // answered late is normal, and releasing a sync writer's reply before its events were seen is a bug.
        return marker.orTimeout(120, java.util.concurrent.TimeUnit.SECONDS)
                .handle((x, error) -> {
                    if (error != null) {
                        barriers.remove(seq);
                        log.warn("key-event barrier not seen after 120 s: {}; releasing waiting replies", RedisBackend.rootMessage(error));
                    }
                    return null;
                });
    }

    private void releaseBarriers(long upTo) {
        var through = barriers.headMap(upTo, true);
        while (!through.isEmpty()) {
            var first = through.pollFirstEntry();
            if (first != null) {
                first.getValue().complete(null);
            }
        }
    }

    @Override
    public void close() {
        closing = true;
        control.shutdownNow();
        publisher.close();
        connection.close();
        client.shutdown(Duration.ZERO, Duration.ofSeconds(1));
    }
}
