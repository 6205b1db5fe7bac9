package io.jgears.gears;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * A copy of the stored sessions on disk, next to the data ({@code <data>/jgears-sessions.dat}): when the
 * state database is found empty at start-up (a FLUSHALL sent directly to Redis while jgears was stopped,
 * or a Redis that lost its data), jgears restores its registrations from this copy, as RedisGears'
 * registrations survive FLUSHALL. The file names the Redis it belongs to ({@code redisIdentity}), so that a
 * jgears pointed at another Redis with the same data directory does not bring foreign sessions into it.
 * Written whole (temporary file, then an atomic rename), so a crash never leaves half a file.
 */
final class SessionsFile {
    private static final Logger log = LoggerFactory.getLogger(SessionsFile.class);
    private static final String MAGIC = "jgears-sessions 3";
    /** Before cluster id blocks. */
    private static final String MAGIC_2 = "jgears-sessions 2";
    /** Version 1 had no requirements or capability policy. */
    private static final String MAGIC_1 = "jgears-sessions 1";

    private final Path file;
    private final String redisIdentity;

    SessionsFile(Path file, String redisIdentity) {
        this.file = file;
        this.redisIdentity = redisIdentity;
    }

    Path path() {
        return file;
    }

    void write(List<SessionStore.Stored> sessions) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.writeUTF(MAGIC);
            writeString(out, redisIdentity);
            out.writeInt(sessions.size());
            for (SessionStore.Stored s : sessions) {
                writeString(out, s.id());
                writeString(out, s.code());
                writeString(out, s.description());
                writeString(out, s.user());
                out.writeBoolean(s.shared());
                writeString(out, String.join("\n", s.requirements()));
                writeString(out, s.network());
                out.writeBoolean(s.threads());
                writeString(out, s.clusterIds());
            }
        }
        Files.createDirectories(file.toAbsolutePath().getParent());
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.write(tmp, bytes.toByteArray());
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** The sessions in the file, oldest first; empty when there is no file or it belongs to another Redis. */
    List<SessionStore.Stored> read() {
        byte[] content;
        try {
            content = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            return List.of();
        } catch (IOException e) {
            log.warn("cannot read {}: {}", file, e.getMessage());
            return List.of();
        }
        try (DataInputStream in = new DataInputStream(new java.io.ByteArrayInputStream(content))) {
            String magic = in.readUTF();
            boolean v1 = MAGIC_1.equals(magic);
            boolean v3 = MAGIC.equals(magic);
            if (!v1 && !v3 && !MAGIC_2.equals(magic)) {
                log.warn("{} is not a jgears sessions file; ignored", file);
                return List.of();
            }
            String identity = readString(in);
            if (!redisIdentity.equals(identity)) {
                log.info("{} belongs to the Redis at {}, not {}; ignored", file, identity, redisIdentity);
                return List.of();
            }
            int n = in.readInt();
            List<SessionStore.Stored> out = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                String id = readString(in), code = readString(in), description = readString(in), user = readString(in);
                boolean shared = in.readBoolean();
                List<String> requirements = List.of();
                String network = "none";
                boolean threads = false;
                if (!v1) {
                    String reqs = readString(in);
                    requirements = reqs == null || reqs.isEmpty() ? List.of() : List.of(reqs.split("\n"));
                    network = readString(in);
                    threads = in.readBoolean();
                }
                String clusterIds = v3 ? readString(in) : null;
                out.add(new SessionStore.Stored(id, code, description, user, shared, requirements, network, threads, clusterIds));
            }
            return out;
        } catch (IOException | RuntimeException e) {
            log.warn("{} is damaged ({}); ignored", file, e.toString());
            return List.of();
        }
    }

    private static void writeString(DataOutputStream out, String s) throws IOException {
        if (s == null) {
            out.writeInt(-1);
            return;
        }
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        out.writeInt(b.length);
        out.write(b);
    }

    private static String readString(DataInputStream in) throws IOException {
        int n = in.readInt();
        if (n < 0) {
            return null;
        }
        return new String(in.readNBytes(n), StandardCharsets.UTF_8);
    }
}
