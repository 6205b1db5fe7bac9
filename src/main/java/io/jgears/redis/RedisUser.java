package io.jgears.redis;

/**
 * The Redis ACL user a session runs its commands as: the one its client authenticated as. A session
 * restored after a restart knows only the name (passwords are never stored): its commands are checked
 * with {@code ACL DRYRUN} and run on jgears' own connection.
 */
public record RedisUser(String name, String password) {
    public boolean passwordKnown() {
        return password != null;
    }

    @Override
    public String toString() {
        return name;  // never the password
    }
}
