/**
 * Running code in a GraalPy context, as Redis' function engines do for functions.c: the host functions the
 * Python runtime calls ({@link io.jgears.engine.HostApi}), one script load's state
 * ({@link io.jgears.engine.ScriptRun}), key event lanes ({@link io.jgears.engine.Lanes}), whether a call may
 * run on a client's event loop ({@link io.jgears.engine.InlineGate}) and the heap guard
 * ({@link io.jgears.engine.MemoryGuard}).
 *
 * <p>The library ({@code io.jgears.gears}) drives these classes. The way back is visible: HostApi reaches
 * GearsEngine only through {@code GearsEngine.LibraryCalls}, and the few library methods it calls on
 * executions, registrations and sessions are public with a "Public: io.jgears.engine..." comment.
 */
package io.jgears.engine;
