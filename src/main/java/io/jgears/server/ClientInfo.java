package io.jgears.server;

/** What a local command may know about the connection it came from. */
public record ClientInfo(long id, String remoteAddress) {
}
