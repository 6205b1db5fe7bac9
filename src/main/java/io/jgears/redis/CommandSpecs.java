package io.jgears.redis;


import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What Redis' COMMAND INFO says of a command a registration hooks: whether it exists, its flags (noscript,
 * movablekeys) and where its keys are (first, last, step). Asked once per command name and kept.
 */
public final class CommandSpecs {
    /** One command's COMMAND INFO; {@code lastKey} is negative when counted from the end. */
    public record Spec(String name, boolean noScript, boolean movableKeys, int firstKey, int lastKey, int step) {
        /** The keys of this command line (position 0 is the command name), by first/last/step. */
        public List<String> keys(List<byte[]> command) {
            List<String> keys = new ArrayList<>();
            if (firstKey <= 0 || step <= 0) {
                return keys;
            }
            int last = lastKey < 0 ? command.size() + lastKey : lastKey;
            for (int i = firstKey; i <= last && i < command.size(); i += step) {
                keys.add(new String(command.get(i), StandardCharsets.UTF_8));
            }
            return keys;
        }
    }

    private final RedisBackend redis;
    private final Map<String, Spec> known = new ConcurrentHashMap<>();

    public CommandSpecs(RedisBackend redis) {
        this.redis = redis;
    }

    /** The command's spec, or null when Redis has no such command. */
    public Spec get(String command) {
        String name = command.toLowerCase(Locale.ROOT);
        Spec spec = known.get(name);
        if (spec != null) {
            return spec;
        }
        Object reply = redis.execute(List.of("COMMAND".getBytes(), "INFO".getBytes(), name.getBytes(StandardCharsets.UTF_8)));
        if (!(reply instanceof List<?> list) || list.isEmpty() || !(list.getFirst() instanceof List<?> info) || info.size() < 6) {
            return null;
        }
        boolean noScript = false;
        boolean movable = false;
        if (info.get(2) instanceof List<?> flags) {
            for (Object f : flags) {
                noScript |= "noscript".equalsIgnoreCase(String.valueOf(f));
                movable |= "movablekeys".equalsIgnoreCase(String.valueOf(f));
            }
        }
        spec = new Spec(name, noScript, movable, intOf(info.get(3)), intOf(info.get(4)), intOf(info.get(5)));
        known.put(name, spec);
        return spec;
    }

    private static int intOf(Object o) {
        return o instanceof Number n ? n.intValue() : Integer.parseInt(String.valueOf(o));
    }

    /** RedisGears' refusal of a CommandReader hook= registration on this command, or null. */
    public String hookRefusal(String command, String keyPrefix) {
        Spec spec = get(command);
        if (spec == null) {
            return "Can not override an unexisting command";
        }
        if (spec.noScript()) {
            return "Can not override a command which are not allowed inside a script";
        }
        if (keyPrefix != null) {
            if (spec.movableKeys()) {
                return "Can not override a command with moveable keys by key prefix";
            }
            if (spec.firstKey() <= 0) {
                return "Can not override a command by key prefix with none positive first key";
            }
            if (spec.step() <= 0) {
                return "Can not override a command by key prefix with none positive jump";
            }
        }
        return null;
    }

    /** RedisGears' refusal of a KeysReader register(commands=[...]) entry (always by the key prefix), or null. */
    public String keysHookRefusal(String command, String prefix) {
        Spec spec = get(command);
        if (spec == null) {
            return "bad reply on COMMAND command";
        }
        if (spec.noScript()) {
            return "Can not hook a command which are not allowed inside a script";
        }
        if (spec.movableKeys()) {
            return "Can not hook a command with moveable keys by key prefix";
        }
        if (spec.firstKey() <= 0) {
            return "Can not hook a command by key prefix with none positive first key";
        }
        if (spec.step() <= 0) {
            return "Can not override a command by key prefix with none positive jump";
        }
        if (prefix.isEmpty()) {
            return "Empty perfix given to command hooker";
        }
        return null;
    }
}
