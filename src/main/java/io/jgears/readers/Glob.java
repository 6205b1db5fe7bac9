package io.jgears.readers;

/** Redis' glob patterns (as in KEYS, SCAN MATCH and PSUBSCRIBE): {@code * ? [abc] [^a] [a-z] \x}. */
public final class Glob {
    private Glob() {
    }

    public static boolean matches(String pattern, String s) {
        return match(pattern, 0, s, 0);
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
