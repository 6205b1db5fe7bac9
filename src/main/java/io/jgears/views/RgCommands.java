package io.jgears.views;

import java.util.List;
import java.util.Locale;

/**
 * The RG.* commands as COMMAND shows them: names in lower case, arity -1, flags {@code readonly} and
 * {@code module} (RG.TRIGGER also {@code movablekeys}), no keys except RG.TRIGGERONKEY's second argument:
 * what RedisGears 1.2.13 registers, for the commands jgears serves.
 */
final class RgCommands {
    record Spec(String name, String summary, boolean keyed, boolean movable) {
        List<Object> info() {
            // Flags are status replies, as Redis sends them (redis-cli and client libraries check the type).
            List<Object> flags = movable ? List.of(status("readonly"), status("module"), status("movablekeys"))
                    : List.of(status("readonly"), status("module"));
            List<Object> keySpecs = keyed
                    ? List.of(List.of("flags", List.of(status("RW"), status("UPDATE")),
                    "begin_search", List.of("type", "index", "spec", List.of("index", 2L)),
                    "find_keys", List.of("type", "range", "spec", List.of("lastkey", 0L, "keystep", 1L, "limit", 0L))))
                    : List.of();
            return List.of(name, -1L, flags, keyed ? 2L : 0L, keyed ? 2L : 0L, keyed ? 1L : 0L,
                    List.of(), List.of(), keySpecs, List.of());
        }

        private static Object status(String text) {
            return new io.jgears.redis.GenericOutput.Status(text);
        }

        List<Object> docs() {
            return List.of("summary", summary, "group", "module", "module", "rg");
        }

        List<String> keys(List<String> command) {
            return keyed && command.size() > 2 ? List.of(command.get(2)) : List.of();
        }

        /** COMMAND LIST's filters: none, FILTERBY MODULE rg, FILTERBY PATTERN glob, FILTERBY ACLCAT (none). */
        boolean matchesListFilter(List<byte[]> filter) {
            if (filter.size() < 3) {
                return true;
            }
            String by = new String(filter.get(1)).toUpperCase(Locale.ROOT);
            String value = new String(filter.get(2));
            return switch (by) {
                case "MODULE" -> value.equals("rg");
                case "PATTERN" -> io.jgears.readers.Glob.matches(value.toLowerCase(Locale.ROOT), name);
                default -> false;
            };
        }
    }

    static final List<Spec> ALL = List.of(
            new Spec("rg.pyexecute", "Runs a Python script (a batch run, or registrations of its functions)", false, false),
            new Spec("rg.trigger", "Triggers a CommandReader registration", false, true),
            new Spec("rg.triggeronkey", "Triggers a CommandReader registration on the shard that owns the key", true, false),
            new Spec("rg.getresults", "The results and errors of a stored execution", false, false),
            new Spec("rg.getresultsblocking", "Waits for a stored execution and returns its results", false, false),
            new Spec("rg.getexecution", "The plan and state of an execution", false, false),
            new Spec("rg.dumpexecutions", "The stored executions", false, false),
            new Spec("rg.dropexecution", "Drops a stored execution", false, false),
            new Spec("rg.abortexecution", "Aborts a running execution", false, false),
            new Spec("rg.dumpregistrations", "The registrations and their statistics", false, false),
            new Spec("rg.unregister", "Removes a registration", false, false),
            new Spec("rg.pauseregistrations", "Pauses registrations", false, false),
            new Spec("rg.unpauseregistrations", "Resumes paused registrations", false, false),
            new Spec("rg.clearregistrationsstats", "Resets the registrations' statistics", false, false),
            new Spec("rg.pydumpsessions", "The live sessions (sub-interpreters)", false, false),
            new Spec("rg.pystats", "Python memory statistics", false, false),
            new Spec("rg.pydumpreqs", "The installed requirements", false, false),
            new Spec("rg.pyexportreq", "Exports an installed requirement's wheels as RESP data", false, false),
            new Spec("rg.pyimportreq", "Installs a requirement from RG.PYEXPORTREQ data", false, false),
            new Spec("rg.pyprofile", "Profiles a session's executions", false, false),
            new Spec("rg.configget", "Reads configuration values", false, false),
            new Spec("rg.configset", "Sets configuration values", false, false),
            new Spec("rg.infocluster", "The cluster topology", false, false),
            new Spec("rg.refreshcluster", "Reloads the cluster topology", false, false),
            new Spec("rg.dumptimeevents", "jgears: the time events", false, false),
            new Spec("rg.unregisterte", "jgears: ends a time event", false, false));

    static Spec find(String name) {
        String lower = name.toLowerCase(Locale.ROOT);
        for (Spec s : ALL) {
            if (s.name().equals(lower)) {
                return s;
            }
        }
        return null;
    }

    private RgCommands() {
    }
}
