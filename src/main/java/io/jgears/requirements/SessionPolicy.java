package io.jgears.requirements;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What a session's sandbox allows beyond the default (no network, no threads): network access to every
 * host, or to a list of host:port, and threads. The default policy is the plain sandbox, whose contexts
 * come from the warm pool; any other policy gets a context built for it.
 *
 * @param network {@code none}, {@code all}, or a list of {@code host:port} (see {@link #allowed()})
 */
public record SessionPolicy(String network, List<String> allowed, boolean threads) {
    public static final SessionPolicy DEFAULT = new SessionPolicy("none", List.of(), false);

    public boolean isDefault() {
        return network.equals("none") && !threads;
    }

    /** Whether the context needs host socket access (the list itself is checked inside Python). */
    public boolean socketAccess() {
        return !network.equals("none");
    }

    /**
     * Parses a network setting as the config and {@code ALLOW network=...} take it: {@code none},
     * {@code all}, or {@code host:port[,host:port...]}.
     *
     * @throws IllegalArgumentException with a user-facing text
     */
    public static SessionPolicy parseNetwork(String value, boolean threads) {
        String v = value == null ? "" : value.trim();
        if (v.isEmpty() || v.equalsIgnoreCase("none")) {
            return new SessionPolicy("none", List.of(), threads);
        }
        if (v.equalsIgnoreCase("all")) {
            return new SessionPolicy("all", List.of(), threads);
        }
        List<String> list = new ArrayList<>();
        for (String part : v.split(",")) {
            String p = part.trim();
            int colon = p.lastIndexOf(':');
            if (colon <= 0 || !p.substring(colon + 1).matches("\\d{1,5}") || Integer.parseInt(p.substring(colon + 1)) > 65535) {
                throw new IllegalArgumentException("network access must be none, all or a list of host:port, not '" + p + "'");
            }
            list.add(p.substring(0, colon).toLowerCase(Locale.ROOT) + ":" + p.substring(colon + 1));
        }
        return new SessionPolicy("list", List.copyOf(list), threads);
    }

    /** The form stored with a session and shown to users: {@code none}, {@code all} or the list, comma separated. */
    public String networkText() {
        return network.equals("list") ? String.join(",", allowed) : network;
    }

    public SessionPolicy withThreads(boolean t) {
        return new SessionPolicy(network, allowed, t);
    }
}
