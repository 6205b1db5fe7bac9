package io.jgears.readers;

/** Redis' glob patterns (as in KEYS, SCAN MATCH and PSUBSCRIBE): {@code * ? [abc] [^a] [a-z] \x}. */
public final class Glob {
    private Glob() {
    }

    public static boolean matches(String pattern, String s) {
        return match(pattern, 0, s, 0);
    }

    /**
     * RedisGears' rule for register(prefix=): no glob, a trailing {@code *} matches by prefix, otherwise
     * the whole key (or stream name) must be the prefix. ({@code run(pattern)} is a real glob: SCAN MATCH.)
     */
    public static boolean prefixMatches(String prefix, String key) {
        if (prefix.endsWith("*")) {
            return key.startsWith(prefix.substring(0, prefix.length() - 1));
        }
        return key.equals(prefix);
    }

    /** That rule as a glob (for PSUBSCRIBE): every glob character escaped but a trailing {@code *}. */
    public static String prefixPattern(String prefix) {
        boolean open = prefix.endsWith("*");
        String body = open ? prefix.substring(0, prefix.length() - 1) : prefix;
        StringBuilder out = new StringBuilder(body.length() + 4);
        for (int i = 0; i < body.length(); i++) {
            char c = body.charAt(i);
            if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
                out.append('\\');
            }
            out.append(c);
        }
        return open ? out.append('*').toString() : out.toString();
    }

    /** The prefix a {@link #prefixPattern} was made from. */
    public static String prefixOfPattern(String pattern) {
        StringBuilder out = new StringBuilder(pattern.length());
        for (int i = 0; i < pattern.length(); i++) {
            char c = pattern.charAt(i);
            if (c == '\\' && i + 1 < pattern.length()) {
                c = pattern.charAt(++i);
            }
            out.append(c);
        }
        return out.toString();
    }

    private static boolean match(String p, int pi, String s, int si) {
        while (pi < p.length()) {
            char c = p.charAt(pi);
            switch (c) {
                case '*' -> {
                    while (pi + 1 < p.length() && p.charAt(pi + 1) == '*') {
                        pi++;
                    }
                    if (pi + 1 == p.length()) {
                        return true;
                    }
                    for (int k = si; k <= s.length(); k++) {
                        if (match(p, pi + 1, s, k)) {
                            return true;
                        }
                    }
                    return false;
                }
                case '?' -> {
                    if (si >= s.length()) {
                        return false;
                    }
                    si++;
                    pi++;
                }
                case '[' -> {
                    if (si >= s.length()) {
                        return false;
                    }
                    int end = p.indexOf(']', pi + 1);
                    if (end < 0) {
                        return false;
                    }
                    boolean negate = pi + 1 < end && p.charAt(pi + 1) == '^';
                    boolean found = false;
                    char ch = s.charAt(si);
                    for (int k = pi + (negate ? 2 : 1); k < end; k++) {
                        char a = p.charAt(k);
                        if (a == '\\' && k + 1 < end) {
                            found |= p.charAt(++k) == ch;
                        } else if (k + 2 < end && p.charAt(k + 1) == '-') {
                            char b = p.charAt(k + 2);
                            found |= ch >= Math.min(a, b) && ch <= Math.max(a, b);
                            k += 2;
                        } else {
                            found |= a == ch;
                        }
                    }
                    if (found == negate) {
                        return false;
                    }
                    si++;
                    pi = end + 1;
                }
                case '\\' -> {
                    if (pi + 1 < p.length()) {
                        pi++;
                    }
                    if (si >= s.length() || s.charAt(si) != p.charAt(pi)) {
                        return false;
                    }
                    si++;
                    pi++;
                }
                default -> {
                    if (si >= s.length() || s.charAt(si) != c) {
                        return false;
                    }
                    si++;
                    pi++;
                }
            }
        }
        return si == s.length();
    }
}
