package io.jgears.server;

/**
 * Network-facing limits and addresses of the RESP server.
 *
 * @param maxBulkLength   largest bulk string a client may send (Redis' proto-max-bulk-len)
 * @param maxArrayLength  most elements in one command array; guards against a header announcing billions
 * @param maxInlineLength longest inline (telnet-style) command line
 * @param authRequired    Redis refuses unauthenticated clients, so jgears refuses its own commands to them too
 */
public record ServerOptions(String bind, int port, String redisHost, int redisPort,
                            int maxBulkLength, int maxArrayLength, int maxInlineLength, boolean authRequired) {
    public static final int DEFAULT_MAX_BULK = 512 * 1024 * 1024;
    public static final int DEFAULT_MAX_ARRAY = 1024 * 1024;
    public static final int DEFAULT_MAX_INLINE = 64 * 1024;
}
