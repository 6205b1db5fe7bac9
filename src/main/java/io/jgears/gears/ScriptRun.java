package io.jgears.gears;

import java.util.ArrayList;
import java.util.List;

/** One RG.PYEXECUTE invocation while its script loads: the executions its run() calls started. */
final class ScriptRun {
    private final boolean unblocking;
    private final List<Execution> started = new ArrayList<>();

    ScriptRun(boolean unblocking) {
        this.unblocking = unblocking;
    }

    boolean unblocking() {
        return unblocking;
    }

    void started(Execution execution) {
        started.add(execution);
    }

    List<Execution> started() {
        return started;
    }
}
