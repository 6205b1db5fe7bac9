package io.jgears.server;

/**
 * What a local command may know about the connection it came from, including who it authenticated
 * as (jgears sees the client's AUTH go to Redis and its reply come back).
 */
public final class ClientInfo {
    private final long id;
    private final String remoteAddress;
    private volatile boolean authenticated;
    private volatile String user;
    private volatile String password;
    private volatile int protocol = 2;

    public ClientInfo(long id, String remoteAddress, boolean authenticated) {
        this.id = id;
        this.remoteAddress = remoteAddress;
        this.authenticated = authenticated;
    }

    public long id() {
        return id;
    }

    public String remoteAddress() {
        return remoteAddress;
    }

    /** True when Redis needs no AUTH, or after an AUTH (or HELLO ... AUTH) that Redis accepted. */
    public boolean authenticated() {
        return authenticated;
    }

    /** The ACL user the client authenticated as, or null when it never did. */
    public String user() {
        return user;
    }

    public String password() {
        return password;
    }

    /** The RESP version the client chose with HELLO (2 until it does; RESET goes back to 2). */
    public int protocol() {
        return protocol;
    }

    void protocol(int version) {
        protocol = version;
    }

    void authenticate(String user, String password) {
        this.user = user;
        this.password = password;
        this.authenticated = true;
    }
}
