package io.jgears.gears;

import java.util.ArrayList;
import java.util.List;

/** One RG.PYEXECUTE invocation while its script loads: the executions its run() calls started. */
final class ScriptRun {
    private final boolean unblocking;
    private final boolean restoring;
    private final List<Execution> started = new ArrayList<>();

    ScriptRun(boolean unblocking, boolean restoring) {
        this.unblocking = unblocking;
        this.restoring = restoring;
    }

    /** Re-run at start-up from the stored code: run() does nothing, register()/registerTE() take effect. */
    boolean restoring() {
        return restoring;
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
