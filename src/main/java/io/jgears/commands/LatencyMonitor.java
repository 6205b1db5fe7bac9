package io.jgears.commands;

import io.jgears.redis.RedisBackend;
import io.jgears.server.Replies;
import io.netty.handler.codec.redis.RedisMessage;

import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.TreeMap;

/**
 * Redis' latency monitor records commands slower than {@code latency-monitor-threshold} ms as its
 * {@code command} event; a RedisGears command is one of them. jgears times its RG.* commands by that rule
 * (the threshold read with CONFIG GET, refreshed with the slow log's, 0 = off as in Redis) and merges its
 * samples into Redis' {@code command} event: LATENCY LATEST, LATENCY HISTORY command and LATENCY RESET.
 * As Redis, one sample per second (the highest), the last 160 kept. Other subcommands are Redis' own.
 */
final class LatencyMonitor {
    static final String EVENT = "command";
    private static final int HISTORY = 160;

    private record Sample(long unixSeconds, long millis) {
    }

    private final RedisBackend redis;
    private final ArrayDeque<Sample> samples = new ArrayDeque<>();
    private long maxMillis;
    private volatile long thresholdMillis;

    LatencyMonitor(RedisBackend redis) {
        this.redis = redis;
    }

    void refresh() {
        try {
            thresholdMillis = Long.parseLong(SlowLog.configGet(redis, "latency-monitor-threshold"));
        } catch (RuntimeException e) {
            // Redis away or CONFIG refused: keep the last value.
        }
    }

    void record(long micros) {
        long threshold = thresholdMillis;
        long millis = micros / 1000;
        if (threshold <= 0 || millis < threshold) {
            return;
        }
        long now = System.currentTimeMillis() / 1000;
        synchronized (this) {
            Sample last = samples.peekLast();
            if (last != null && last.unixSeconds == now) {
                samples.removeLast();
                millis = Math.max(millis, last.millis);
            }
            samples.addLast(new Sample(now, millis));
            while (samples.size() > HISTORY) {
                samples.removeFirst();
            }
            maxMillis = Math.max(maxMillis, millis);
        }
    }

    RedisMessage command(List<byte[]> args) {
        String sub = args.size() > 1 ? new String(args.get(1), StandardCharsets.UTF_8).toUpperCase(Locale.ROOT) : "";
        boolean resetsOurs = false;
        boolean redisHadCommand = false;
        if (sub.equals("RESET")) {
            resetsOurs = args.size() == 2;
            for (int i = 2; i < args.size(); i++) {
                resetsOurs |= EVENT.equalsIgnoreCase(new String(args.get(i), StandardCharsets.UTF_8));
            }
            if (resetsOurs) {
                // RESET answers how many events it reset: jgears' samples add one only when Redis had none.
                try {
                    redisHadCommand = ((List<?>) redis.execute(List.of("LATENCY".getBytes(), "LATEST".getBytes())))
                            .stream().anyMatch(r -> EVENT.equals(String.valueOf(((List<?>) r).get(0))));
                } catch (RuntimeException e) {
                    redisHadCommand = true;
                }
            }
        }
        Object reply;
        try {
            reply = redis.execute(args);
        } catch (RuntimeException e) {
            return Replies.error(e.getMessage());
        }
        switch (sub) {
            case "LATEST" -> {
                if (reply instanceof List<?> theirs) {
                    return Replies.of(latest(theirs));
                }
            }
            case "HISTORY" -> {
                if (reply instanceof List<?> theirs && args.size() == 3
                        && EVENT.equalsIgnoreCase(new String(args.get(2), StandardCharsets.UTF_8))) {
                    return Replies.of(history(theirs));
                }
            }
            case "RESET" -> {
                if (reply instanceof Long n && resetsOurs) {
                    boolean had;
                    synchronized (this) {
                        had = !samples.isEmpty();
                        samples.clear();
                        maxMillis = 0;
                    }
                    return Replies.integer(n + (had && !redisHadCommand ? 1 : 0));
                }
            }
            default -> { }
        }
        return Replies.of(reply);
    }

    /** Redis' LATEST rows with its command row merged with jgears' samples (or added). */
    private List<Object> latest(List<?> theirs) {
        List<Object> out = new ArrayList<>();
        Sample last;
        long max;
        synchronized (this) {
            last = samples.peekLast();
            max = maxMillis;
        }
        boolean merged = false;
        for (Object row : theirs) {
            List<?> r = (List<?>) row;
            if (last != null && EVENT.equals(String.valueOf(r.get(0)))) {
                long time = (Long) r.get(1);
                boolean oursNewer = last.unixSeconds >= time;
                out.add(List.of(EVENT, oursNewer ? last.unixSeconds : time, oursNewer ? last.millis : (Long) r.get(2),
                        Math.max(max, (Long) r.get(3))));
                merged = true;
            } else {
                out.add(row);
            }
        }
        if (last != null && !merged) {
            out.add(List.of(EVENT, last.unixSeconds, last.millis, max));
        }
        return out;
    }

    /** Redis' history of the command event and jgears', by time (the higher within a second), the last 160. */
    private List<Object> history(List<?> theirs) {
        TreeMap<Long, Long> bySecond = new TreeMap<>();
        for (Object row : theirs) {
            List<?> r = (List<?>) row;
            bySecond.merge((Long) r.get(0), (Long) r.get(1), Math::max);
        }
        synchronized (this) {
            for (Sample s : samples) {
                bySecond.merge(s.unixSeconds, s.millis, Math::max);
            }
        }
        List<Object> out = new ArrayList<>();
        bySecond.forEach((t, ms) -> out.add(List.of(t, ms)));
        return out.size() > HISTORY ? out.subList(out.size() - HISTORY, out.size()) : out;
    }
}
