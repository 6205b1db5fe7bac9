# The Python side of jgears, loaded once into every sub-interpreter (GraalPy context) when the warm
# pool creates it. It gives scripts the RedisGears 1.2 API (GearsBuilder/GB, execute, log, ...) as
# builtins, and talks to jgears through one host object with a few batched calls.
#
# jgears evaluates this file as one cached Source shared by every context of the engine (so it is parsed
# once and its JIT-compiled code serves all contexts); that runs it in the context's __main__ module,
# which _become_module() at the end then hands over to sys.modules['_jgears'], giving scripts a fresh
# __main__. The name below makes everything defined here belong to module '_jgears'.
__name__ = '_jgears'

import _thread
import builtins
import sys
import time
import _weakref as weakref


class types:
    # The types the runtime checks, taken from objects rather than by importing types.py (14 ms of
    # CPU per context) or weakref.py (170 ms: it pulls in _weakrefset and collections.abc).
    FunctionType = (lambda: None).__class__

    async def _coroutine():
        pass

    _c = _coroutine()
    CoroutineType = _c.__class__
    _c.close()
    del _c, _coroutine
    GeneratorType = (x for x in ()).__class__

import polyglot

# traceback, copy and asyncio are imported on first use: importing them costs tens of milliseconds
# per context, paid by every session whether it needs them or not.

# The runtime's own view of the builtins, taken before any script runs: a script that patches
# builtins.len (of its own session) must not break jgears' code in that session.
for _k, _v in list(vars(builtins).items()):
    if not _k.startswith('_'):
        globals()[_k] = _v
del _k, _v


class GearsError(Exception):
    """RedisGears' gears.error: what its API raises for a bad argument or a refused call."""


# Named as RedisGears names it, so tracebacks and type() show 'gears.error'.
GearsError.__module__ = 'gears'
GearsError.__name__ = GearsError.__qualname__ = 'error'


def _host_message(e):
    """The plain message of a Java exception a host call threw, without the Java class name before it."""
    text = str(e)
    name, sep, message = text.partition(': ')
    if sep and '.' in name and ' ' not in name:  # 'java.lang.IllegalStateException: <message>'
        return message
    if '.' in text and ' ' not in text:  # a Java exception without a message
        return 'internal error in jgears (see its log)'
    return text


class _HostCalls(object):
    """jgears' host object, whose calls raise a Java exception as a GearsError with the plain message: a
    polyglot.ForeignException is a BaseException that `except Exception` does not catch, and its text names
    Java classes. The hot calls that answer errors as values (execute, the batched hand-overs) go straight
    to the host; every other method is wrapped once, on first use."""

    _DIRECT = frozenset(('executeArgs', 'execute', 'executeAsync', 'takeReplies', 'registrationActive',
                         'finishBatch', 'finish', 'resume', 'timer'))

    def __init__(self, raw):
        self._raw = raw

    def __getattr__(self, name):
        fn = getattr(self._raw, name)
        if name not in _HostCalls._DIRECT:
            fn = _raising_gears_errors(fn)
        setattr(self, name, fn)  # found as a plain attribute from now on
        return fn


def _raising_gears_errors(fn):
    def call(*args):
        try:
            return fn(*args)
        except polyglot.ForeignException as e:
            raise GearsError(_host_message(e)) from None
    return call


_host = _HostCalls(polyglot.import_value('jgears'))
SHARD_ID = '0000000000000000000000000000000000000000'
_READ_BATCH = 1000


def _to_py(v):
    """Host values (foreign arrays) to plain Python lists; strings, ints and None pass as they are. A reply
    string that is not UTF-8 (jgears' BinaryString) becomes a bytearray, as RedisGears gives it."""
    t = type(v)
    if t is str or t is int or t is float or v is None:
        return v
    if hasattr(v, 'latin1'):
        return bytearray(v.latin1(), 'latin-1')
    return [_to_py(x) for x in v]


def _format_exception(e):
    """RedisGears' error text: str() of the traceback's line list, without jgears' own frames; with
    PythonAttemptTraceback 0, its short form (as for a SyntaxError) instead."""
    if isinstance(e, _FlatError):
        return e.args[0]
    if _host.configGet('PythonAttemptTraceback') == '0':  # read per error: RG.CONFIGSET takes effect at once
        return 'Error type: %s, Value: %s' % (type(e), e)
    if isinstance(e, (AttributeError, NameError)) and getattr(e, 'name', None) is not None:
        # Python 3.7 (RedisGears') adds no "Did you mean" hint; working one out over an object's
        # attributes costs a second or more in a fresh context.
        e.name = None
    lines = _script_traceback(e)
    if lines is None:
        import traceback
        lines = traceback.format_exception(type(e), e, e.__traceback__)
    return str([line for line in lines if not line.startswith('  File "_jgears.py"')])


def _script_traceback(e):
    """The traceback lines of an exception raised in script code alone (frames of "<string>" and the
    runtime, no chained exception, no notes), as the traceback module writes them; None otherwise. The
    traceback module costs half a second or more on its first use in a fresh context (every interpreter-
    mode RG.PYEXECUTE), and most failing steps are plain exceptions in the script's own lambdas."""
    cls = type(e)
    if e.__cause__ is not None or (e.__context__ is not None and not e.__suppress_context__) \
            or isinstance(e, SyntaxError) or getattr(e, '__notes__', None) is not None:
        return None
    lines = []
    tb = e.__traceback__
    if tb is not None:
        lines.append('Traceback (most recent call last):\n')
    while tb is not None:
        code = tb.tb_frame.f_code
        name = code.co_filename
        if name != '<string>' and name != '_jgears.py':
            return None  # a library frame: the traceback module shows its source line
        lines.append('  File "%s", line %d, in %s\n' % (name, tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    kind = cls.__qualname__
    module = cls.__module__
    if module not in ('__main__', 'builtins'):
        kind = '%s.%s' % (module, kind)
    try:
        text = str(e)
    except Exception:
        return None
    lines.append('%s: %s\n' % (kind, text) if text else '%s\n' % kind)
    return lines


# ---------------------------------------------------------------- module functions

_NO_COMMAND = object()


def execute(command=_NO_COMMAND, *args):
    """Runs a Redis command; returns its reply as Python values and raises on an error reply."""
    argv = [command]
    plain = type(command) is str
    if not plain and not isinstance(command, str):
        if command is _NO_COMMAND:
            return []  # RedisGears: execute() with nothing to run answers an empty list
        raise GearsError('the given command must be a string')
    for a in args:
        t = type(a)
        if t is str:
            argv.append(a)
        elif t is bytes or t is bytearray:  # sent as they are, as RedisGears does; anything else as str()
            plain = False
            argv.append(bytes(a))
        else:
            argv.append(str(a))
    # All-str arguments cross as Java strings, and a scalar reply comes back as one: no foreign arrays
    # to walk. Each access to a host object lets other threads in this context take the GIL, which is
    # what several events of one registration running at once contend for.
    r = _host.executeArgs(*argv) if plain else _host.execute(argv)
    t = type(r)
    if t is str or t is int or r is None or t is float or t is bool:
        return r
    ok, value = r
    if not ok:
        raise GearsError(value)
    return _to_py(value)


def execute_async(command, *args):
    """Sends a Redis command without waiting for its reply and returns a gearsFuture for it, to await in
    an async step. The commands of many executions go out pipelined on one connection, so a registration
    keeps many events in flight on one thread; the thread that sent them collects the replies before its
    call into jgears returns (the future raises on an error reply)."""
    argv = [command] + list(args)
    for i in range(len(argv)):
        t = type(argv[i])
        if t is bytes:
            raise TypeError('execute_async() takes str arguments (use execute() for bytes)')
        if t is not str:
            argv[i] = str(argv[i])
    f = _Future()
    _async_futures[_host.executeAsync(*argv)] = f
    return f


_async_futures = {}


def _has_async_step(steps):
    """Whether a step's function is an async def: its events overlap on one thread (execute_async)."""
    for step in steps:
        for fn in step[1:]:
            code = getattr(fn, '__code__', None)
            if code is not None and code.co_flags & 0x80:  # CO_COROUTINE
                return True
    return False


def _collect_async(done=None):
    """Settles this thread's execute_async() futures as their replies arrive and resumes the executions
    waiting on them, on this thread; returns when no command it sent is left unanswered."""
    while True:
        batch = _host.takeReplies()
        if batch is None:
            return
        fids, kinds, blob, lens, others = batch
        values = _split_lens(blob, lens)
        waiting = []
        j = 0
        for i, fid in enumerate(fids.split(',')):
            f = _async_futures.pop(int(fid), None)
            if f is None:
                continue
            k = kinds[i]
            error = None
            if k == 's':
                value = values[i]
            elif k == 'i':
                value = int(values[i])
            elif k == 'n':
                value = None
            elif k == 'e':
                value, error = None, values[i]
            else:
                value = _to_py(others[j])
                j += 1
            f._done, f._value, f._error = True, value, error
            for w in f._waiters:
                if w.__class__ is str:
                    waiting.append(w)
                else:
                    _wake(w)
            f._waiters = []
        for eid in waiting:
            run = _runs.get(eid)
            if run is not None:
                run.done = done
                _drive(run)
                run.done = None


executeCommand = execute


_LOG_LEVELS = ('debug', 'verbose', 'notice', 'warning')


def log(*args, **kwargs):
    """RedisGears' log(msg, level='notice'). Two positional arguments are its older form, level first
    (logged as deprecated). The message must be a str and the level one of Redis' four, as there."""
    if len(args) < 1 or len(args) > 2:
        raise GearsError('log function must get a log message as input')
    level = kwargs.get('level')
    if len(args) == 2:
        _host.log('Specify log level as the first argument to log function is depricated, use key argument '
                  "'level' instead", 'warning')
        level, msg = args
    else:
        msg = args[0]
    if not isinstance(msg, str):
        raise GearsError('Log message must be a string')
    if level is None:
        level = 'notice'
    elif not isinstance(level, str):
        raise GearsError('Log level must be a sting (debug/verbose/notice/warning)')
    elif level not in _LOG_LEVELS:
        raise GearsError('Log level should be one of the following : debug,verbose,notice,warning')
    _host.log(msg, level)


def _deprecated(old, new, target):
    """RedisGears' old names (Log, ConfigGet, GearsConfigGet): a warning on every call, then the new one."""
    def call(*args, **kwargs):
        _host.log('%s is deprecated, use %s instead' % (old, new), 'warning')
        return target(*args, **kwargs)
    call.__name__ = old
    return call


def configGet(key):
    if not isinstance(key, str):
        raise GearsError('get_config key must be a string')
    return _host.configGet(key)


def gearsConfigGet(key, default=None):
    v = _host.configGet(str(key))
    return default if v is None else v


def hashtag():
    return _host.hashtag()


class atomic(object):
    """Runs the block's commands on one connection inside MULTI/EXEC: no other client's command can
    interleave with them. As in a Redis transaction, the commands are queued: execute() inside the block
    returns None, and the replies are in `results` after the block (a Redis error reply there is its
    message). An exception in the block discards the transaction; an EXEC-time error raises."""

    def __init__(self):
        self.results = None

    def __enter__(self):
        _host.atomicBegin()
        me = _thread.get_ident()
        _atomic_threads[me] = _atomic_threads.get(me, 0) + 1
        return self

    def __exit__(self, exc_type, exc, tb):
        me = _thread.get_ident()
        depth = _atomic_threads.pop(me, 1) - 1
        if depth > 0:
            _atomic_threads[me] = depth
        ok, value = _host.atomicEnd(exc_type is None)
        if exc_type is None:
            if not ok:
                raise Exception(value)
            self.results = _to_py(value)
        return False


# Threads inside an atomic() block, with its depth: a coroutine may not await there.
_atomic_threads = {}


# Execution id -> the future it waited on, settled, until the execution resumes (see _Future._complete).
_settled_futures = {}


class _Future(object):
    """An awaitable settled once, with a value or an error: what run() returns (settled with [results,
    errors] when its execution ends), createFuture() and execute_async() make, and the base of gearsFuture.
    A coroutine step awaiting one parks its execution until it settles. Waiters are execution ids (resumed
    through jgears) or callables (background coroutines, run on this context's loop)."""
    __slots__ = ('_done', '_value', '_error', '_waiters', '__weakref__')

    def __init__(self):
        self._done = False
        self._value = None
        self._error = None
        self._waiters = []

    def _complete(self, value, error):
        self._done = True
        self._value = value
        self._error = error
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if w.__class__ is str:
                # Held until the execution resumes: it refers to a gearsFuture only weakly, and one that was
                # continued must not look abandoned when a GC runs before the execution gets a thread.
                _settled_futures[w] = self
            _wake(w)

    def done(self):
        return self._done

    def result(self):
        if not self._done:
            raise GearsError('Result is not ready')
        if self._error is not None:
            raise _as_exception(self._error)
        return self._value

    def __repr__(self):
        return '<GearsFuture %s>' % ('finished' if self._done else 'pending',)

    def __await__(self):
        if not self._done:
            yield self
        if self._error is not None:
            raise _as_exception(self._error)
        return self._value

    __iter__ = __await__


def _as_exception(error):
    return error if isinstance(error, BaseException) else Exception(error)


def _error_text(error):
    return None if error is None else str(error)


def _wake(waiter):
    """Continues what waited on a settled future: an execution (by id) through jgears, or a callable on
    this context's loop, soon (jgears is asked to call in if nothing is queued yet)."""
    if waiter.__class__ is str:
        _host.resume(waiter)
        return
    if not _soon:
        _host.timer(0, 0)
    _soon.append(_Handle(waiter, ()))


class gearsFuture(_Future):
    """RedisGears' future of a step: created inside a step's function and returned by it, the record waits
    until continueRun(value) or continueFailed(error) is called, from any code of the session. A future the
    function does not return is dropped; one that nothing can continue any more (no reference left) ends its
    execution with an error."""
    __slots__ = ('_held',)  # 0: not returned yet, 1: returned (may be continued), 2: dropped

    def __init__(self, *args):
        if args:
            raise GearsError('Future gets no arguments')
        created = _step_scope(2)
        if created is None:
            raise GearsError('Future object can only be created inside certain execution steps')
        if created:
            raise GearsError('Can not create async record twice on the same step')
        if created is _NO_ASYNC_STEP:
            raise GearsError('Step does not support async')
        if _no_async_threads and _thread.get_ident() in _no_async_threads:
            raise GearsError('Creating async record is not allowed')
        _Future.__init__(self)
        self._held = 0
        created.append(self)

    def continueRun(self, record):
        if self._done or self._held == 2:
            raise GearsError('Can not continue with the same future twice')
        if self._held == 0:
            raise GearsError('Can not handle future untill it returned from the callback')
        self._complete(record, None)

    def continueFailed(self, error):
        if self._done or self._held == 2:
            raise GearsError('Can not continue with the same future twice')
        self._complete(None, str(error))


def createFuture():
    """A future an async step can await, settled by setFutureResults() or setFutureException()."""
    return _Future()


def setFutureResults(f, res):
    if not f._done:
        f._complete(res, None)


def setFutureException(f, exception):
    if not f._done:
        f._complete(None, exception if isinstance(exception, Exception) else Exception(str(exception)))


def runCoroutine(cr, f=None, delay=0, s=None):
    """Runs a coroutine in the background of this session (after `delay` seconds), then continues the
    gearsFuture f, if given, with its result, or fails it with its error."""
    task = _Task(cr, f)
    if delay:
        _event_loop().call_later(delay, task.step)
    else:
        _wake(task.step)


class _Task(object):
    """A coroutine runCoroutine() runs outside any execution, stepped on this context's loop."""
    __slots__ = ('coro', 'future')

    def __init__(self, coro, future):
        self.coro = coro
        self.future = future

    def step(self, *ignored):
        w = _Wait(self.coro)
        if not _advance(self.coro, w, self.step):
            return
        f = self.future
        if f is None:
            return
        try:
            if w.error is not None:
                f.continueFailed(w.error)
            else:
                f.continueRun(w.value)
        except Exception as e:
            _host.log(str(e), 'warning')


def isAsyncAllow():
    """True in a step's function that may return a coroutine or a gearsFuture; False at the top level of a
    script, inside a coroutine, and in an execution run from MULTI."""
    created = _step_scope(1)
    if created is None or created is _NO_ASYNC_STEP:
        return False
    return not (_no_async_threads and _thread.get_ident() in _no_async_threads)


# ---------------------------------------------------------------- time events

_time_events = {}


class _FlatError(Exception):
    """flat_error(): its text is the error as it is, without a traceback."""


def flat_error(*args):
    """Fails the current step with exactly `msg` as the error (RedisGears: a StreamReader step failing
    with a text that starts with 'PAUSE' pauses its registration)."""
    if not args:
        raise GearsError('not enough arguments for time flat error')  # RedisGears' text
    raise _FlatError(str(args[0]))


def registerTE(*args):
    """RedisGears' registerTE(period_seconds, callback, keyName=None): calls callback() every period in
    this session. With a str keyName the event lives in that Redis key: False (and nothing registered)
    when the key exists; deleting the key stops the event. A callback that raises stops the event.
    jgears' millisecond timers with ids are registerTimer()."""
    if len(args) < 2 or len(args) > 3:
        raise GearsError('not enough arguments for time event')
    period, callback = args[0], args[1]
    _check_time_event_args(period, callback)
    key = args[2] if len(args) == 3 and type(args[2]) is str else None
    tid = _host.registerKeyedTimeEvent(int(period) * 1000, key)
    if tid is None:
        return False
    if tid == '':
        return True  # on a cluster it lives on another shard: its key's, or the one the script was sent to
    _time_events[tid] = callback
    return True


def registerTimer(interval, callback, desc=None, oneshot=False):
    """jgears' timer: calls callback() every `interval` ms (once with oneshot=True) in this session; returns
    its id for unregisterTE(). It holds a reference on the session until unregisterTE(id) or the one shot
    fired; a callback that raises is counted (RG.DUMPTIMEEVENTS) and the timer goes on."""
    if not callable(callback):
        raise TypeError('registerTimer: callback must be callable')
    if type(interval) not in (int, float) or interval <= 0:
        raise ValueError('registerTimer: interval must be a positive number of milliseconds')
    tid = _host.registerTimeEvent(int(max(1, interval)), None if desc is None else str(desc), bool(oneshot))
    _time_events[tid] = callback
    return tid


def _check_time_event_args(interval, callback):
    """registerTE()'s argument types as RedisGears checks them (a function, then a whole number)."""
    if not isinstance(callback, types.FunctionType):
        raise GearsError('callback must be a function')
    if not isinstance(interval, int):
        raise GearsError('time argument must be a long')


def unregisterTE(tid):
    """Ends a time event of this session; False when there is no such time event."""
    tid = str(tid)
    if tid not in _time_events:
        return False
    del _time_events[tid]
    return bool(_host.unregisterTimeEvent(tid))


def _fire_te(tid, oneshot):
    cb = _time_events.pop(tid, None) if oneshot else _time_events.get(tid)
    if cb is None:
        return None
    try:
        cb()
        _collect_async()
    except Exception as e:
        return _format_exception(e)
    finally:
        _drain_soon()
    return None


def _forget_te(tid):
    _time_events.pop(tid, None)


# ---------------------------------------------------------------- readers

def _keys_records(pattern, no_scan, read_value, keys_only, count=_READ_BATCH):
    with_values = read_value and not keys_only
    batches = _host.keyBatches(pattern, count, with_values, no_scan)
    next_batch = _reader_call(batches.next)
    while True:
        batch = next_batch()
        if batch is None:
            return
        keys, key_lens, types, values, value_lens = batch
        ks = _split_lens(keys, key_lens)
        if keys_only:
            ts = types.split(',')
            for i in range(len(ks)):
                if ts[i] != 'none':  # noScan on a missing key: RedisGears checks EXISTS first
                    yield ks[i]
        elif not read_value:
            # RedisGears' records without the value have no type either.
            for key in ks:
                yield {'event': None, 'key': key}
        else:
            ts = types.split(',')
            vs = _split_lens(values, value_lens) if value_lens is not None else [_to_py(v) for v in values]
            for i in range(len(ks)):
                t = ts[i]
                yield {'event': None, 'key': ks[i], 'type': _rg_type(t), 'value': _value_of(t, vs[i])}


class _ReaderError(Exception):
    """A failure of a reader RedisGears implements in C (KeysReader, StreamReader): its error record is
    the plain message, without a traceback."""


def _reader_call(fn):
    """A host call of a reader, failing with a _ReaderError."""
    def call(*args):
        try:
            return fn(*args)
        except polyglot.ForeignException as e:
            raise _ReaderError(_host_message(e)) from None
    return call


def _reader_errors_plain(records):
    try:
        for r in records:
            yield r
    except Exception as e:
        raise _ReaderError(str(e)) from None


def _keys_only_records(pattern, kwargs):
    """KeysOnlyReader's run(pattern, count=1000, noScan=False, patternGenerator=None), as RedisGears'
    reader takes them: patternGenerator() gives (pattern, noScan) at read time; count is SCAN's COUNT."""
    no_scan = kwargs.get('noScan', False)
    generator = kwargs.get('patternGenerator')
    if generator is not None:
        pattern, no_scan = generator()
    count = kwargs.get('count', _READ_BATCH)
    if type(count) is not int:
        # RedisGears passes str(count) on to SCAN: Redis judges it.
        return _scanned_keys(str(pattern), str(count))
    return _keys_records(str(pattern), bool(no_scan), False, True, count)


def _scanned_keys(pattern, count):
    cursor = '0'
    while True:
        cursor, keys = execute('SCAN', cursor, 'MATCH', pattern, 'COUNT', count)
        for k in keys:
            yield k
        if cursor == '0':
            return


def _value_of(t, raw):
    """A KeysReader record's value, as RedisGears reads it: only strings, hashes and lists have one."""
    if t == 'string' or raw is None:
        return raw
    if t == 'hash':
        it = iter(raw)
        return dict(zip(it, it))
    if t == 'list':
        return [x for x in raw]
    return None


# Redis' TYPE names as RedisGears' KeysReader reports them: a missing key is 'empty', a stream 'unknown',
# any module type 'module'.
_RG_TYPES = {'string': 'string', 'hash': 'hash', 'list': 'list', 'set': 'set', 'zset': 'zset',
             'none': 'empty', 'stream': 'unknown', 'denied': 'denied'}


def _rg_type(t):
    return _RG_TYPES.get(t, 'module')


def _stream_records(stream, from_id):
    """The entries after from_id (exclusive, as RedisGears' XREAD-based reader), oldest first."""
    start, exclusive = from_id, True
    while True:
        batch = execute('XRANGE', stream, ('(' + start) if exclusive else start, '+', 'COUNT', _READ_BATCH)
        for entry in batch:
            it = iter(entry[1])
            yield {'key': stream, 'id': entry[0], 'value': dict(zip(it, it))}
        if len(batch) < _READ_BATCH:
            return
        start, exclusive = batch[-1][0], True


# ---------------------------------------------------------------- the builder

class GearsBuilder(object):
    """Builds a pipeline of steps over the records of a reader; run() executes it, register() comes later."""

    def __init__(self, reader='KeysReader', defaultArg='*', desc=None, *args, **kwargs):
        _check_builder_args(reader, desc)
        self.reader = reader
        self.defaultArg = defaultArg
        self.desc = desc
        self.steps = []

    def _add(self, kind, *fns):
        self.steps.append((kind,) + fns)
        return self

    # per-record operations
    def map(self, *args):
        return self._add('map', *_step_functions('map', args))

    def flatmap(self, *args):
        return self._add('flatmap', *_step_functions('flatmap', args))

    def foreach(self, *args):
        return self._add('foreach', *_step_functions('foreach', args))

    def filter(self, *args):
        return self._add('filter', *_step_functions('filter', args))

    # whole-set operations
    def accumulate(self, *args):
        return self._add('accumulate', *_step_functions('accumulate', args))

    def localgroupby(self, *args):
        return self._add('groupby', *_step_functions('groupby', args, _EXTRACTOR_REDUCER))

    def groupby(self, *args):
        # One shard: repartition is the identity, so groupby is localgroupby. On a cluster it is a repartition
        # then a localgroupby, as in RedisGears (the marker says so; see _cluster_expand).
        return self._add('groupby', *(_step_functions('groupby', args, _EXTRACTOR_REDUCER) + ('global',)))

    def batchgroupby(self, *args):
        return self._add('batchgroupby', *_step_functions('batchgroupby', args, _EXTRACTOR_REDUCER))

    def aggregate(self, zero, seqOp, combOp):
        return self._add('aggregate', zero, seqOp, combOp)

    def aggregateby(self, extractor, zero, seqOp, combOp):
        return self._add('aggregateby', extractor, zero, seqOp, combOp)

    def __localAggregateby__(self, extractor, zero, aggregator):
        # RedisGears' building block of aggregateby: group and aggregate on this shard, no combine step.
        return self._add('aggregateby', extractor, zero, aggregator, None, 'local')

    def repartition(self, *args):
        return self._add('repartition', *_step_functions('repartition', args))

    def collect(self, *args):
        return self._add('collect', *_step_functions('collect', args, ()))

    def limit(self, *args):
        length, start = _limit_args(args)
        return self._add('limit', length, start)

    def sort(self, reverse=True):
        # RedisGears 1.2 quirk, kept for compatibility: sort() and sort(True) ascend, sort(False) descends.
        return self._add('sort', not reverse)

    def distinct(self):
        return self._add('distinct')

    def count(self):
        return self._add('count')

    def countby(self, extractor=lambda r: r):
        return self._add('countby', extractor)

    def avg(self, extractor=lambda r: float(r)):
        # RedisGears' avg() maps with the extractor first, so a bad one is a bad map argument.
        return self._add('avg', *_step_functions('map', (extractor,)))

    # actions
    def run(self, arg=None, convertToStr=True, collect=True, **kwargs):
        reader = self.reader
        if arg is None:
            arg = self.defaultArg
        _check_run_args(reader, arg, kwargs)
        steps = list(self.steps)
        # From inside an execution (a step, a coroutine) the new one runs after the current call, on its
        # own, as in RedisGears; an async step awaits the future run() returns for its [results, errors].
        nested = _inside_execution()
        role = 'none' if nested else str(_host.clusterRole())
        eid, run_now, profile = _host.newExecution(reader, self.desc, _describe(reader, arg, steps), nested)
        if eid is None:
            return None  # jgears is restoring this session after a restart: only register() takes effect
        if role != 'none':
            steps = _cluster_steps(steps, role, collect, eid)
        future = _RunFuture()
        _run_futures[eid] = future
        plan = (reader, arg, kwargs, steps, convertToStr, profile)
        if run_now:
            _run_plan(eid, plan)
        else:
            _pending[eid] = plan
        return future

    def register(self, prefix='*', convertToStr=True, collect=True, mode='async', onRegistered=None,
                 onFailedPolicy='continue', onFailedRetryInterval=1, batch=1, duration=0, trimStream=True,
                 eventTypes=None, keyTypes=None, readValue=True, trigger=None, hook=None, keyprefix=None,
                 **kwargs):
        """Runs the pipeline on every event of the reader (key events, stream entries, RG.TRIGGER or a
        hooked command) until RG.UNREGISTER; returns the registration id. The registration holds a
        reference on this session, and so does each execution it triggers."""
        prefix = _check_register_args(self.reader, locals())
        reader = self.reader
        if mode not in ('async', 'async_local', 'sync'):
            raise ValueError("register: mode must be 'async', 'async_local' or 'sync'")
        if reader in ('KeysReader', 'KeysOnlyReader'):
            args = ['prefix', str(prefix), 'eventTypes', _str_list(eventTypes, 'eventTypes'),
                    'keyTypes', _str_list(keyTypes, 'keyTypes'), 'readValue', bool(readValue),
                    'asyncSteps', _has_async_step(self.steps),
                    'commands', _str_list(kwargs.get('commands'), 'commands')]
        elif reader == 'StreamReader':
            if onFailedPolicy not in ('continue', 'abort', 'retry'):
                raise ValueError("register: onFailedPolicy must be 'continue', 'abort' or 'retry'")
            if mode == 'sync' and onFailedPolicy != 'continue':
                raise GearsError('ExecutionMode sync can only be combined with OnFailedPolicy Continue')
            if type(batch) is not int or batch < 1:
                raise ValueError('register: batch must be a positive int')
            if type(duration) is not int or duration < 0:
                raise ValueError('register: duration must be a non-negative int (ms)')
            if type(onFailedRetryInterval) not in (int, float) or onFailedRetryInterval < 0:
                raise ValueError('register: onFailedRetryInterval must be a non-negative number of seconds')
            args = ['prefix', str(prefix), 'batch', batch, 'duration', duration,
                    'onFailedPolicy', onFailedPolicy, 'onFailedRetryInterval', int(onFailedRetryInterval * 1000),
                    'trimStream', bool(trimStream)]
        elif reader == 'CommandReader':
            if (trigger is None) == (hook is None):
                raise ValueError('register: CommandReader needs exactly one of trigger= or hook=')
            args = ['trigger', None if trigger is None else str(trigger),
                    'hook', None if hook is None else str(hook),
                    'keyprefix', None if keyprefix is None else str(keyprefix),
                    'inorder', kwargs.get('inorder') is True]
        else:
            raise Exception('%s can not be used with register()' % (reader,))
        if onRegistered is not None and not callable(onRegistered):
            raise TypeError('register: onRegistered must be callable')
        refused = _host.registerRefusal(reader, mode, args)
        if refused is not None:
            raise GearsError(refused)
        rid = _host.register(reader, None if self.desc is None else str(self.desc), mode, args, _describe(reader, prefix, self.steps))
        steps = list(self.steps)
        if mode == 'async' and str(_host.shardId()) != SHARD_ID:
            steps = _forwarding_steps(steps, rid)
        _registrations[rid] = (reader, steps, convertToStr)
        if onRegistered is not None:
            onRegistered()
        return rid


GB = GearsBuilder


def shardReaderCallback():
    """The PythonReader generator behind ShardsIDReader; RedisGears gives it to scripts as a global too."""
    yield str(_host.shardId())


builtins.shardReaderCallback = shardReaderCallback
_pending = {}


class _RunFuture(_Future):
    """What run() returns: settled with [results, errors] when the execution ends. A plain step that
    returns one returns it as a value (as RedisGears does); an async step awaits it."""
    __slots__ = ()


_run_futures = {}


def _inside_execution():
    f = sys._getframe(2)
    while f is not None:
        c = f.f_code
        if c.co_name == '_drive' and c.co_filename == _RUNTIME_FILE:
            return True
        f = f.f_back
    return False
_registrations = {}


_READERS = ('KeysReader', 'KeysOnlyReader', 'StreamReader', 'CommandReader', 'ShardsIDReader', 'PythonReader')
_EXTRACTOR_REDUCER = ('extractor', 'reducer')


def _check_builder_args(reader, desc):
    """GB(reader, defaultArg, desc) as RedisGears checks it."""
    if not isinstance(reader, str):
        raise GearsError('reader argument must be a string')
    if desc is not None and not isinstance(desc, str):
        raise GearsError('desc argument must be a string')
    if reader not in _READERS:
        raise GearsError('The given reader does not exists')


def _step_functions(name, args, roles=('',)):
    """A step's arguments as RedisGears checks them: one Python function per role; returns them."""
    if len(args) != len(roles):
        raise GearsError('wrong number of args to %s function' % (name,))
    for role, f in zip(roles, args):
        if not isinstance(f, types.FunctionType):
            raise GearsError('%s %sargument must be a function' % (name, role + ' ' if role else ''))
    return args


def _limit_args(args):
    """limit(length[, start]) as RedisGears checks it; returns (length, start)."""
    if not 1 <= len(args) <= 2:
        raise GearsError('wrong number of args to limit function')
    for n in args:
        if not isinstance(n, int):
            raise GearsError('limit argument must be a number')
    return args[0], args[1] if len(args) > 1 else 0


def _check_run_args(reader, arg, kwargs):
    """run()'s reader argument and options as RedisGears checks them, before anything runs."""
    if 'mode' in kwargs:
        if not isinstance(kwargs['mode'], str):
            raise GearsError('execution mode must be a string')
        if kwargs['mode'] not in ('async', 'async_local'):
            raise GearsError('unknown execution mode')  # RedisGears refuses run(mode='sync') too
    if reader == 'PythonReader':
        if not isinstance(arg, types.FunctionType):
            raise GearsError('pyreader argument must be a function')
    elif reader in ('KeysReader', 'StreamReader'):
        if not isinstance(arg, str):
            raise GearsError('regex argument must be a string')
        if reader == 'StreamReader':
            if 'fromId' in kwargs and not isinstance(kwargs['fromId'], str):
                raise GearsError('fromId argument must be a string')
        else:
            if 'noScan' in kwargs and type(kwargs['noScan']) is not bool:
                raise GearsError('exactMatch value is not boolean')
            if 'readValue' in kwargs and type(kwargs['readValue']) is not bool:
                raise GearsError('readValue value is not boolean')
    elif reader not in ('KeysOnlyReader', 'ShardsIDReader'):
        raise GearsError('Given reader do not support run or not exists')


def _check_register_args(reader, a):
    """register()'s arguments (its locals) as RedisGears checks them, with its texts; returns the prefix
    (a regex= argument, deprecated, replaces it). The reader branches of register() then read them."""
    kwargs = a['kwargs']
    prefix = a['prefix']
    if 'regex' in kwargs:
        _host.log('Using regex argument with register is deprecated and missleading, use prefix instead.', 'warning')
        prefix = kwargs['regex']
    mode = a['mode']
    if not isinstance(mode, str):
        raise GearsError('execution mode must be a string')
    if mode not in ('async', 'async_local', 'sync'):
        raise GearsError('unknown execution mode')
    if a['onRegistered'] is not None and not isinstance(a['onRegistered'], types.FunctionType):
        raise GearsError('OnRegistered argument must be a function')
    if reader == 'CommandReader':
        trigger, hook, keyprefix = a['trigger'], a['hook'], a['keyprefix']
        for name, v in (('trigger', trigger), ('keyprefix', keyprefix), ('hook', hook)):
            if v is not None and not isinstance(v, str):
                raise GearsError('%s argument is not string' % (name,))
        if 'inorder' in kwargs and type(kwargs['inorder']) is not bool:
            raise GearsError('inorder argument is be boolean')
        if trigger is not None and (keyprefix is not None or hook is not None):
            raise GearsError('trigger argument can not be given with keyprefix or hook')
        if trigger is None and hook is None:
            raise GearsError('no trigger or hook argument was given')
        return prefix
    if not isinstance(prefix, str):
        raise GearsError('regex argument must be a string')
    if reader in ('KeysReader', 'KeysOnlyReader'):
        _check_str_items(a['eventTypes'], 'eventTypes', 'event type')
        _check_str_items(a['keyTypes'], 'keyTypes', 'key type')
        for t in a['keyTypes'] or ():
            if t not in _KEY_TYPES:
                raise GearsError('unknown key type')
        if type(a['readValue']) is not bool:
            raise GearsError('readValue is not boolean')
        _check_str_items(kwargs.get('commands'), 'commands', 'command type')
    elif reader == 'StreamReader':
        for name, what in (('batch', 'batch'), ('duration', 'duration'), ('onFailedRetryInterval', 'retryInterval')):
            if type(a[name]) is bool or not isinstance(a[name], (int, float)):
                raise GearsError('%s argument must be a number' % (what,))
        policy = a['onFailedPolicy']
        if not isinstance(policy, str):
            raise GearsError('onFailedPolicy must be a string (Continue/Abort/Retry)')
        if policy.lower() not in ('continue', 'abort', 'retry'):
            raise GearsError('onFailedPolicy must be Continue/Abort/Retry')
        if mode == 'sync' and policy.lower() != 'continue':
            raise GearsError('ExecutionMode sync can only be combined with OnFailedPolicy Continue')
        if type(a['trimStream']) is not bool:
            raise GearsError('pyTrimmStream argument must be a boolean')
    else:
        raise GearsError('given reader does not exists or does not support register')
    return prefix


_KEY_TYPES = ('empty', 'string', 'list', 'hash', 'set', 'zset', 'module', 'stream')


def _check_str_items(v, name, item):
    """An optional iterable of str (eventTypes, keyTypes, commands), with RedisGears' texts."""
    if v is None:
        return
    try:
        items = iter(v)
    except TypeError:
        raise GearsError('given %s is not iterable' % (name,)) from None
    for x in items:
        if not isinstance(x, str):
            raise GearsError('given %s is not string' % (item,))


def _str_list(v, name):
    if v is None:
        return None
    if isinstance(v, str) or not hasattr(v, '__iter__'):
        raise TypeError('register: %s must be a list of strings' % (name,))
    return [str(x) for x in v]
_BATCH_READERS = ('KeysReader', 'KeysOnlyReader', 'ShardsIDReader', 'PythonReader', 'StreamReader')


def _records(reader, arg, kwargs):
    if reader == 'KeysOnlyReader':
        return _keys_only_records(arg, kwargs)
    if reader == 'KeysReader':
        no_scan = bool(kwargs.get('noScan', False))
        read_value = bool(kwargs.get('readValue', True))
        return _keys_records(str(arg), no_scan, read_value, False)
    if reader == 'ShardsIDReader':
        shard = str(_host.shardId())
        # RedisGears outside a cluster: the one shard is '1'; on a cluster each shard's id (its Redis node's).
        return iter(['1' if shard == SHARD_ID else shard])
    if reader == 'PythonReader':
        if not callable(arg):
            raise Exception('PythonReader needs a callable (a generator function) as the run() argument')
        out = arg()
        # RedisGears iterates only a generator: any other value (a list, iter([...])) is one record.
        return out if isinstance(out, types.GeneratorType) else iter((out,))
    if reader == 'StreamReader':
        return _reader_errors_plain(_stream_records(str(arg), kwargs.get('fromId', '0-0')))
    raise Exception('Unknown reader: %s' % (reader,))


def _apply(steps, records, errors, prof):
    """Chains the steps as generators; per-record failures go to errors and the record is dropped.
    With profiling, each stage is wrapped in a timer of its inclusive time (prof[0] the reader)."""
    if prof is not None:
        records = _timed(records, prof, 0)
    for i, step in enumerate(steps):
        records = _STEP[step[0]](step, records, errors)
        if prof is not None:
            records = _timed(records, prof, i + 1)
    return records


def _timed(records, prof, i):
    ns = time.perf_counter_ns
    it = iter(records)
    while True:
        t = ns()
        try:
            r = next(it)
        except StopIteration:
            prof[i] += ns() - t
            return
        prof[i] += ns() - t
        yield r


class _Wait(object):
    """Passed up the step chain when a step's function returned a gearsFuture, a coroutine or a future: the
    driver parks the execution until it settles, then resumes the step that yielded it. `ready`: nothing to
    wait for (the value or error is set already); `dropped`: the function created a gearsFuture it did not
    return (RedisGears discards it: the function's own result stands, an accumulator becomes None)."""
    __slots__ = ('pending', 'value', 'error', 'ready', 'dropped')

    def __init__(self, pending):
        self.pending = pending
        self.value = None
        self.error = None
        self.ready = False
        self.dropped = False


class _NoAsyncStep(object):
    """The scope of a step whose function may not create a gearsFuture (repartition, batchgroupby)."""

    def __len__(self):
        return 0


_NO_ASYNC_STEP = _NoAsyncStep()
_NO_ASYNC_ERROR = "Error type: <class 'gears.error'>, Value: Creating async record is not allowed"
# Threads running an execution that may not wait (a sync trigger from MULTI): count by thread id.
_no_async_threads = {}


def _step_scope(depth):
    """The `created` list of the step whose function runs on this thread (where its gearsFuture registers),
    _NO_ASYNC_STEP in a step that cannot wait, or None outside any step (the top level of a script, a
    coroutine, a time event). Walks the frames: only gearsFuture() and isAsyncAllow() pay for it."""
    f = sys._getframe(depth)
    while f is not None:
        c = f.f_code
        kind = _SCOPES.get(c.co_name) if c.co_filename == _RUNTIME_FILE else None
        if kind is not None:
            if kind == 1:
                return f.f_locals['created']
            if kind == 2:
                return _NO_ASYNC_STEP
            return None  # an execution's driver or a coroutine's: no step function of its own runs here
        f = f.f_back
    return None


def _wait_for(out, created):
    """After a step's function returned `out` (and maybe created a gearsFuture): the _Wait to yield up to the
    driver. A gearsFuture it returned is held by a weak reference, so that one nobody keeps is noticed."""
    if created:
        # clear(), not pop(): GraalPy's pop() leaves the element referenced in the list's storage, which
        # would keep the future alive for as long as the step runs.
        fut = created[0]
        created.clear()
        if out is not fut:
            fut._held = 2
            w = _Wait(None)
            w.value = out
            w.ready = w.dropped = True
            return w
        fut._held = 1
        return _Wait(weakref.ref(fut))
    if _no_async_threads and _thread.get_ident() in _no_async_threads:
        if out.__class__ is types.CoroutineType:
            out.close()
        w = _Wait(None)
        w.error = _NO_ASYNC_ERROR
        w.ready = True
        return w
    return _Wait(out)


def _drop_created(created):
    """The function raised after creating a gearsFuture: the future is dropped."""
    created[0]._held = 2
    created.clear()


# What a step's function may return to make its record wait.
_AWAITABLE = frozenset((types.CoroutineType, _Future))


def _map(step, records, errors):
    f = step[1]
    created = []
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        try:
            out = f(r)
        except Exception as e:
            if created:
                _drop_created(created)
            errors.append(_format_exception(e))
            continue
        if created or out.__class__ in _AWAITABLE:
            w = _wait_for(out, created)
            out = None
            if not w.ready:
                yield w
            if w.error is not None:
                errors.append(w.error)
                continue
            out = w.value
        yield out


def _flatmap(step, records, errors):
    f = step[1]
    created = []
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        try:
            out = f(r)
        except Exception as e:
            if created:
                _drop_created(created)
            errors.append(_format_exception(e))
            continue
        if created or out.__class__ in _AWAITABLE:
            w = _wait_for(out, created)
            out = None
            if not w.ready:
                yield w
            if w.error is not None:
                errors.append(w.error)
                continue
            out = w.value
        if type(out) is list:
            # RedisGears flattens only a list, and gives its items last first.
            for x in reversed(out):
                yield x
        else:
            yield out


def _foreach(step, records, errors):
    f = step[1]
    created = []
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        try:
            out = f(r)
        except Exception as e:
            if created:
                _drop_created(created)
            errors.append(_format_exception(e))
            continue
        if created or out.__class__ in _AWAITABLE:
            w = _wait_for(out, created)
            out = None
            if not w.ready:
                yield w
            if w.error is not None:
                errors.append(w.error)
                continue
        yield r


def _filter(step, records, errors):
    f = step[1]
    created = []
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        try:
            keep = f(r)
        except Exception as e:
            if created:
                _drop_created(created)
            errors.append(_format_exception(e))
            continue
        if created or keep.__class__ in _AWAITABLE:
            w = _wait_for(keep, created)
            keep = None
            if not w.ready:
                yield w
            if w.error is not None:
                errors.append(w.error)
                continue
            keep = w.value
        if keep:
            yield r


def _accumulate(step, records, errors):
    f = step[1]
    acc = None
    seen = False
    created = []
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        try:
            out = f(acc, r)
        except Exception as e:
            if created:
                # RedisGears continues the dropped future with None: the accumulator, error or not.
                _drop_created(created)
                acc, seen = None, True
                continue
            errors.append(_format_exception(e))
            continue
        if created or out.__class__ in _AWAITABLE:
            w = _wait_for(out, created)
            out = None
            if not w.ready:
                yield w
            if w.error is not None:
                errors.append(w.error)
                acc, seen = None, True
                continue
            out = None if w.dropped else w.value
        acc = out
        seen = True
    if seen:
        yield acc


def _groupby(step, records, errors):
    extractor, reducer = step[1], step[2]
    groups = {}
    created = []
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        k = _extract(extractor, r, created, errors)
        if k is _NO_KEY:
            continue
        try:
            out = reducer(k, groups.get(k), r)
        except Exception as e:
            if created:
                _drop_created(created)
                groups[k] = None
                continue
            errors.append(_format_exception(e))
            continue
        if created or out.__class__ in _AWAITABLE:
            w = _wait_for(out, created)
            out = None
            if not w.ready:
                yield w
            if w.error is not None:
                errors.append(w.error)
                groups[k] = None
                continue
            out = None if w.dropped else w.value
        groups[k] = out
    for k, v in groups.items():
        yield {'key': k, 'value': v}


_NO_KEY = object()


def _extracted(extractor, r, errors):
    """What an extractor (groupby, batchgroupby, repartition) gives for a record, or _NO_KEY with the error
    recorded: its exception, or RedisGears' refusal of a coroutine."""
    try:
        k = extractor(r)
    except Exception as e:
        errors.append(_format_exception(e))
        return _NO_KEY
    if k.__class__ is types.CoroutineType:
        k.close()
        errors.append('coroutine are not allow on extractor')
        return _NO_KEY
    return k


def _extract(extractor, r, created, errors):
    """A record's key (a str) by a groupby's extractor, or _NO_KEY (the error is recorded). Only the reducer's
    gearsFuture can hold a record: one the extractor created is dropped; a coroutine is refused."""
    k = _extracted(extractor, r, errors)
    if created:
        _drop_created(created)
    # RedisGears keys groups by string: a key that is not a str is its repr().
    return k if k is _NO_KEY else _group_key(k)


def _batchgroupby(step, records, errors):
    extractor, reducer = step[1], step[2]
    groups = {}
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        k = _extracted(extractor, r, errors)
        if k is _NO_KEY:
            continue
        try:
            groups.setdefault(_group_key(k), []).append(r)
        except Exception as e:
            errors.append(_format_exception(e))
    for k, rs in groups.items():
        try:
            out = reducer(k, rs)
        except Exception as e:
            errors.append(_format_exception(e))
            continue
        if out.__class__ is types.CoroutineType:
            out.close()
            errors.append('coroutine are not allow on reduce')
            continue
        yield {'key': k, 'value': out}


def _group_key(k):
    """RedisGears' group keys are strings: an extractor's non-str result becomes its repr()."""
    return k if type(k) is str else repr(k)


def _or_zero(a, zero):
    """RedisGears' aggregate operations start from zero whenever the accumulator is falsy (not just None)."""
    if a:
        return a
    import copy
    return copy.deepcopy(zero)


def _aggregate(step, records, errors):
    zero, seq, comb = step[1], step[2], step[3]
    local = None
    seen = False
    created = []
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        try:
            out = seq(_or_zero(local, zero), r)
            seen = True
        except Exception as e:
            if created:
                _drop_created(created)
                local = None
                continue
            errors.append(_format_exception(e))
            continue
        if created or out.__class__ in _AWAITABLE:
            w = _wait_for(out, created)
            out = None
            if not w.ready:
                yield w
            if w.error is not None:
                errors.append(w.error)
                local = None
                continue
            out = None if w.dropped else w.value
        local = out
    if not seen:
        return  # as in RedisGears: no record in, no result (not zero)
    # The shards' partial results are combined; on one shard that is one combine with zero.
    try:
        out = comb(_or_zero(None, zero), local)
    except Exception as e:
        if created:
            _drop_created(created)
            yield None
            return
        errors.append(_format_exception(e))
        return
    if created or out.__class__ in _AWAITABLE:
        w = _wait_for(out, created)
        out = None
        if not w.ready:
            yield w
        if w.error is not None:
            errors.append(w.error)
            return
        out = None if w.dropped else w.value
    yield out


def _aggregateby(step, records, errors):
    extractor, zero, seq, comb = step[1], step[2], step[3], step[4]
    groups = {}
    created = []
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        k = _extract(extractor, r, created, errors)
        if k is _NO_KEY:
            continue
        try:
            out = seq(k, _or_zero(groups.get(k), zero), r)
        except Exception as e:
            if created:
                _drop_created(created)
                groups[k] = None
                continue
            errors.append(_format_exception(e))
            continue
        if created or out.__class__ in _AWAITABLE:
            w = _wait_for(out, created)
            out = None
            if not w.ready:
                yield w
            if w.error is not None:
                errors.append(w.error)
                groups[k] = None
                continue
            out = None if w.dropped else w.value
        groups[k] = out
    if len(step) > 5 and step[5] == 'local':
        # __localAggregateby__: this shard's groups only, without the combine.
        for k, local in groups.items():
            yield {'key': k, 'value': local}
        return
    for k, local in groups.items():
        try:
            out = comb(k, _or_zero(None, zero), local)
        except Exception as e:
            if created:
                _drop_created(created)
                yield {'key': k, 'value': None}
                continue
            errors.append(_format_exception(e))
            continue
        if created or out.__class__ in _AWAITABLE:
            w = _wait_for(out, created)
            out = None
            if not w.ready:
                yield w
            if w.error is not None:
                errors.append(w.error)
                continue
            out = None if w.dropped else w.value
        yield {'key': k, 'value': out}


def _repartition(step, records, errors):
    extractor = step[1]
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        if _extracted(extractor, r, errors) is not _NO_KEY:
            yield r


def _collect(step, records, errors):
    return records


def _limit(step, records, errors):
    length, start = step[1], step[2]
    i = 0
    end = start + length
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        if i >= end:
            return
        if i >= start:
            yield r
        i += 1


def _sort(step, records, errors):
    out = []
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        out.append(r)
    try:
        out.sort(reverse=step[1])
    except Exception as e:
        errors.append(_format_exception(e))
        return
    for r in out:
        yield r


def _distinct(step, records, errors):
    seen = set()
    seen_unhashable = []
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        try:
            if r in seen:
                continue
            seen.add(r)
        except TypeError:
            if r in seen_unhashable:
                continue
            seen_unhashable.append(r)
        yield r


def _count(step, records, errors):
    n = 0
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        n += 1
    if n:
        yield n  # as in RedisGears: no record in, no count


def _countby(step, records, errors):
    extractor = step[1]
    counts = {}
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        try:
            k = _group_key(extractor(r))
            counts[k] = counts.get(k, 0) + 1
        except Exception as e:
            errors.append(_format_exception(e))
    for k, n in counts.items():
        yield {'key': k, 'value': n}


def _total_and_count(extractor, records, errors):
    """Passes _Wait records up; returns (sum, count) of extractor over the others (avg, and its per-shard half)."""
    total = 0.0
    n = 0
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        try:
            total += extractor(r)
            n += 1
        except Exception as e:
            errors.append(_format_exception(e))
    return total, n


def _avg(step, records, errors):
    total, n = yield from _total_and_count(step[1], records, errors)
    if n:
        yield total / n


# ---------------------------------------------------------------- Redis Cluster
# A run() on a cluster runs on every shard: the shard that got RG.PYEXECUTE (the coordinator) and every
# other shard's jgears, which runs the same script. At a repartition (and the groupby, batchgroupby and
# aggregateby built on it, as in RedisGears) every shard sends each record to the shard owning the key the
# extractor gives (its hash slot's master), and the following steps run there, on the records every shard
# sent it. Each shard runs the steps up to the first other step that needs the records of all shards
# (collect, count, aggregate, sort, limit, ...), and that step's local half where it has one (a partial
# count, a partial aggregate, a local limit); the shards send their records to the coordinator (pickled),
# which runs the step's global half and the rest. Without such a step, the records are gathered at the end
# (RedisGears' implicit collect), unless run(collect=False).

_CLUSTER_GLOBAL = frozenset(('collect', 'repartition', 'groupby', 'batchgroupby', 'aggregate', 'aggregateby',
                             'limit', 'sort', 'distinct', 'count', 'countby', 'avg'))


def _second(*args):
    return args[-1]


def _cluster_halves(step):
    """The (local, global) step lists of a step that needs every shard's records."""
    kind = step[0]
    if kind == 'count':
        return [step], [('_sum',)]
    if kind == 'countby':
        return [step], [('_sumby',)]
    if kind == 'avg':
        return [('_avgpart', step[1])], [('_avgcombine',)]
    if kind == 'aggregate':
        zero, seq, comb = step[1], step[2], step[3]
        return [('aggregate', zero, seq, _second)], [('aggregate', zero, comb, _second)]
    if kind == 'aggregateby' and len(step) > 5:
        return [step], []  # __localAggregateby__: local by definition
    if kind == 'aggregateby':
        extractor, zero, seq, comb = step[1], step[2], step[3], step[4]
        return ([('aggregateby', extractor, zero, seq, None, 'local')],
                [('aggregateby', lambda r: r['key'], zero, lambda k, a, r: comb(k, a, r['value']), _second)])
    if kind == 'limit':
        return [('limit', step[1] + step[2], 0)], [step]
    if kind == 'distinct':
        return [step], [step]
    return [], [step]  # collect, repartition, groupby, batchgroupby, sort: all records, then the step


def _cluster_global(step):
    """Whether a step needs the records of every shard (or, a repartition, of the shards that own them)."""
    kind = step[0]
    if kind == 'groupby':
        return len(step) > 3 and step[3] == 'global'  # groupby(); localgroupby() groups on each shard
    if kind == 'batchgroupby':
        return len(step) == 3  # ('batchgroupby', extractor, reducer, 'local') is the half after the repartition
    if kind == 'aggregateby':
        return len(step) <= 5  # __localAggregateby__ is local
    return kind in _CLUSTER_GLOBAL


def _record_key(r):
    return r['key']


def _values_combined(comb):
    return lambda k, a, r: comb(k, a, r['value'])


def _cluster_expand(steps):
    """RedisGears' groupby, batchgroupby and aggregateby are built on repartition: the records (or each
    shard's partial aggregates) move to the shard owning their group's key, which groups them there."""
    out = []
    for st in steps:
        kind = st[0]
        if kind == 'groupby' and _cluster_global(st):
            out += [('repartition', st[1]), ('groupby', st[1], st[2])]
        elif kind == 'batchgroupby' and _cluster_global(st):
            out += [('repartition', st[1]), ('batchgroupby', st[1], st[2], 'local')]
        elif kind == 'aggregateby' and _cluster_global(st):
            extractor, zero, seq, comb = st[1], st[2], st[3], st[4]
            out += [('aggregateby', extractor, zero, seq, None, 'local'), ('repartition', _record_key),
                    ('aggregateby', _record_key, zero, _values_combined(comb), None, 'local')]
        else:
            out.append(st)
    return out


def _cluster_steps(steps, role, collect, eid):
    steps = _cluster_expand(steps)
    out = []
    phase = 0
    i = 0
    while True:
        g = next((j for j in range(i, len(steps)) if _cluster_global(steps[j])), None)
        if g is None or steps[g][0] != 'repartition':
            break
        # Each shard sends the records to their keys' owners; the following steps run there.
        out += steps[i:g]
        out.append(('_exchange', steps[g][1], eid, phase))
        phase += 1
        i = g + 1
    if phase:
        _host.exchangePhases(eid, phase)
    if g is None:
        local, rest = out + steps[i:], []
        if not collect:
            # run(collect=False): each shard keeps its records; the reply has this shard's, and every
            # shard's errors.
            return local if role == 'shard' else local + [('_gather', eid, False)]
        global_half = []
    else:
        local_half, global_half = _cluster_halves(steps[g])
        local, rest = out + steps[i:g] + local_half, steps[g + 1:]
    if role == 'shard':
        return local + [('_pickle',)]
    return local + [('_gather', eid)] + global_half + rest


def _split_by_owner(extractor, records, errors):
    """A repartition's first half (a generator: passes _Wait records up): each record goes to the shard owning
    the key the extractor gives (its hash slot's master). Returns (kept, dests, payloads): this shard's own
    records, and the others pickled with their owners' Redis node ids."""
    import pickle
    import base64
    moving = []
    keys = []
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        k = _extracted(extractor, r, errors)
        if k is _NO_KEY:
            continue
        moving.append(r)
        # The key's slot is worked out from its UTF-8 bytes, as execute() sends a str; bytes are a key as is.
        keys.append(k.decode('utf-8', 'replace') if k.__class__ is bytes else _group_key(k))
    owners = _host.keyOwners(keys) if keys else ()
    me = str(_host.shardId())
    kept = []
    dests = []
    payloads = []
    for i in range(len(moving)):
        o = str(owners[i])
        k = keys[i]
        if o == me:
            kept.append(moving[i])
        elif not o:
            errors.append("no shard serves the hash slot of '%s' now: its record of the repartition is dropped" % k)
        else:
            try:
                payloads.append(base64.b64encode(pickle.dumps(moving[i])).decode('ascii'))
                dests.append(o)
            except Exception as e:
                errors.append("record could not be sent to the shard owning '%s': %s" % (k, _format_exception(e)))
    return kept, dests, payloads


def _exchange(step, records, errors):
    """A repartition on a cluster: each record goes to the shard owning the key the extractor gives (its
    hash slot's master); this shard goes on with its own and those every other shard sent it."""
    extractor, eid, phase = step[1], step[2], step[3]
    kept, dests, payloads = yield from _split_by_owner(extractor, records, errors)
    got = _host.exchange(eid, phase, dests, payloads)
    dests = payloads = None
    for e in got[1]:
        errors.append(str(e))
    for r in kept:
        yield r
    kept = None
    yield from _unpickle(step, got[0], errors)


def _forwarding_steps(steps, rid):
    """A registration's steps on a cluster in mode 'async' (RedisGears' distributed mode): at a repartition
    (and the groupby, batchgroupby and aggregateby built on it) each record goes on to the shard owning its
    key, which runs the steps after it in an execution of its copy of the registration (same id on every
    shard). Steps without one are left as they are: an event's execution then costs no cluster traffic.
    In mode 'async_local' the whole execution stays on the shard of the event."""
    expanded = _cluster_expand(steps)
    if not any(st[0] == 'repartition' for st in expanded):
        return steps
    return [('_forward', st[1], rid, i) if st[0] == 'repartition' else st for i, st in enumerate(expanded)]


def _forward(step, records, errors):
    """A repartition in a triggered execution on a cluster: records whose key this shard owns go on here;
    the others go (pickled) to their owners, whose copy of the registration runs the next steps on them."""
    extractor, rid, index = step[1], step[2], step[3]
    kept, dests, payloads = yield from _split_by_owner(extractor, records, errors)
    if payloads:
        for e in _host.forwardRecords(rid, index, dests, payloads):
            errors.append(str(e))
    for r in kept:
        yield r


def _unpickle(step, records, errors):
    """Records another shard sent (pickled): the first step of an execution a registration's repartition
    forwarded here, and the records a batch repartition brought in."""
    import pickle
    import base64
    for p in records:
        try:
            yield pickle.loads(base64.b64decode(str(p)))
        except Exception as e:
            errors.append('a record of the repartition could not be read: ' + _format_exception(e))


def _trigger_forwarded(rid, eid, index, payloads, profile):
    """Records another shard's execution of registration rid sent here at its step index (a _forward): the
    steps after it run on them in an execution of this shard's copy of the registration."""
    reg = _registrations.get(rid)
    if reg is None:
        return 0
    reader, steps, convert = reg
    _start(eid, [('_unpickle',)] + steps[int(index) + 1:], convert, profile, None, iter, list(payloads))
    if _async_futures:
        _collect_async()
    return 1


def _pickle(step, records, errors):
    import pickle
    import base64
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        try:
            yield base64.b64encode(pickle.dumps(r)).decode('ascii')
        except Exception as e:
            errors.append('record could not be sent to the coordinating shard: ' + _format_exception(e))


def _gather(step, records, errors):
    """This shard's records, then every other shard's (waits for them: the host bounds the wait). With
    run(collect=False), ('_gather', eid, False): only the other shards' errors."""
    for r in records:
        yield r
    import pickle
    import base64
    keep = len(step) < 3 or step[2]
    for reply in _host.shardReplies(step[1]):
        if str(reply[0]) != 'ok':
            errors.append(str(reply[1]))
            continue
        if keep:
            for r in reply[1]:
                yield pickle.loads(base64.b64decode(str(r)))
        for e in reply[2]:
            errors.append(str(e))


def _sum(step, records, errors):
    total = 0
    seen = False
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        total += r
        seen = True
    if seen:
        yield total


def _sumby(step, records, errors):
    totals = {}
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        totals[r['key']] = totals.get(r['key'], 0) + r['value']
    for k, n in totals.items():
        yield {'key': k, 'value': n}


def _avgpart(step, records, errors):
    total, n = yield from _total_and_count(step[1], records, errors)
    if n:
        yield (total, n)


def _avgcombine(step, records, errors):
    total = 0.0
    n = 0
    for r in records:
        if r.__class__ is _Wait:
            yield r
            continue
        total += r[0]
        n += r[1]
    if n:
        yield total / n


_STEP = {
    '_gather': _gather, '_pickle': _pickle, '_exchange': _exchange, '_forward': _forward, '_unpickle': _unpickle, '_sum': _sum, '_sumby': _sumby, '_avgpart': _avgpart,
    '_avgcombine': _avgcombine,
    'map': _map, 'flatmap': _flatmap, 'foreach': _foreach, 'filter': _filter,
    'accumulate': _accumulate, 'groupby': _groupby, 'batchgroupby': _batchgroupby,
    'aggregate': _aggregate, 'aggregateby': _aggregateby, 'repartition': _repartition,
    'collect': _collect, 'limit': _limit, 'sort': _sort, 'distinct': _distinct,
    'count': _count, 'countby': _countby, 'avg': _avg,
}


# ---------------------------------------------------------------- RG.PYPROFILE
# With ProfileExecutions, RedisGears runs each step function of a session's executions under that
# session's cProfile profiler, and RG.PYPROFILE STATS prints it with pstats. GraalPy's cProfile records
# nothing, so jgears gathers the same figures with sys.setprofile and hands them to pstats in cProfile's
# format. One profile per context: a shared-isolation context's sessions share one.

class _Profile(object):
    """Call counts and times of the functions run while enabled, per (file, line, name), as pstats reads
    them from cProfile: stats[func] = (primitive calls, calls, own time, cumulative time, callers)."""

    def __init__(self):
        self.data = {}
        self.stats = {}
        self._stacks = {}

    def enable(self):
        sys.setprofile(self._event)

    def disable(self):
        sys.setprofile(None)
        self._stacks.pop(_thread_id(), None)

    def _event(self, frame, event, arg):
        if event == 'call':
            code = frame.f_code
            self._stacks.setdefault(_thread_id(), []).append(
                [(code.co_filename, code.co_firstlineno, code.co_name), time.perf_counter(), 0.0])
        elif event == 'return':
            stack = self._stacks.get(_thread_id())
            if not stack:
                return
            func, start, inner = stack.pop()
            total = time.perf_counter() - start
            recursive = False
            for f in stack:
                if f[0] == func:
                    recursive = True
                    break
            d = self.data.get(func)
            if d is None:
                d = self.data[func] = [0, 0, 0.0, 0.0, {}]
            d[1] += 1
            d[2] += total - inner
            if not recursive:
                d[0] += 1
                d[3] += total
            if stack:
                caller = stack[-1]
                caller[2] += total
                c = d[4].get(caller[0])
                if c is None:
                    c = d[4][caller[0]] = [0, 0, 0.0, 0.0]
                c[0] += 1
                c[1] += 0 if recursive else 1
                c[2] += total - inner
                c[3] += total

    def create_stats(self):
        self.stats = {}
        for func, d in self.data.items():
            self.stats[func] = (d[0], d[1], d[2], d[3], {c: tuple(v) for c, v in d[4].items()})


def _thread_id():
    import _thread
    return _thread.get_ident()


_profile = _Profile()


def _profiled(fn):
    def profiled(*args):
        p = _profile
        p.enable()
        try:
            return fn(*args)
        finally:
            p.disable()
    return profiled


def _profiled_steps(steps):
    return [(step[0],) + tuple(_profiled(x) if callable(x) else x for x in step[1:]) for step in steps]


def _profile_stats():
    """RG.PYPROFILE STATS: pstats' report (stats, callers, callees) by internal time, as RedisGears
    prints it (its order argument never takes effect); [False, error] when nothing was profiled."""
    import io
    import pstats
    try:
        out = io.StringIO()
        ps = pstats.Stats(_profile, stream=out)
        ps.sort_stats('tottime')
        ps.print_stats()
        ps.print_callers()
        ps.print_callees()
        return [True, out.getvalue()]
    except Exception as e:
        return [False, _format_exception(e)]


def _profile_reset():
    global _profile
    _profile = _Profile()


class _Run(object):
    """One execution in progress: its record iterator, what it gathered, and what it waits on."""
    __slots__ = ('eid', 'records', 'results', 'errors', 'convert', 'prof', 'waiting', 'done')


_runs = {}


def _run_plan(eid, plan):
    reader, arg, kwargs, steps, convert, profile = plan
    _start(eid, steps, convert, profile, None, _records, reader, arg, kwargs, counted=True)
    _collect_async()


def _counted(eid, records, results):
    """The reader's records, telling the host every 1024 records how many were read and how many came out of
    the last step (RG.GETEXECUTION of a running execution, the long-run log line)."""
    progress = _host.progress
    n = 0
    for r in records:
        n += 1
        if not n & 1023:
            progress(eid, n, len(results))
        yield r
    progress(eid, n, len(results))


def _start(eid, steps, convert, profile, done, records_of, *args, counted=False):
    """Starts one execution: its steps over records_of(*args), driven until it ends or parks. With done (a
    list), a finished execution is appended there for a batched hand-over instead of its own host call."""
    run = _Run()
    run.eid = eid
    run.results = []
    run.errors = []
    run.convert = convert
    run.prof = [0] * (len(steps) + 1) if profile else None
    if profile:
        steps = _profiled_steps(steps)  # RG.PYPROFILE: the step functions' calls, as cProfile would count them
    run.waiting = None
    run.done = done
    try:
        records = records_of(*args)
        if counted:
            records = _counted(eid, records, run.results)
        run.records = _apply(steps, records, run.errors, run.prof)
    except Exception as e:
        run.records = iter(())
        run.errors.append(_format_exception(e))
    _drive(run)
    run.done = None  # a parked run finishes on its own later


def _drive(run):
    """Pulls records until the execution ends or parks on a pending gearsFuture/coroutine."""
    results = run.results
    try:
        while True:
            w = run.waiting
            if w is not None:
                if not _settle(run, w):
                    _runs[run.eid] = run
                    return
                run.waiting = None
            for r in run.records:
                if r.__class__ is _Wait:
                    run.waiting = r
                    break
                results.append(r)
            else:
                break
    except _ReaderError as e:
        run.errors.append(str(e))
    except Exception as e:
        # A reader failure (a bad argument, Redis gone) ends the execution; what was read so far stays.
        run.errors.append(_format_exception(e))
    finally:
        _drain_soon()
    _runs.pop(run.eid, None)
    if _settled_futures:
        _settled_futures.pop(run.eid, None)
    raw = results
    if run.convert:
        results = [r if type(r) is str else str(r) for r in results]
    else:
        results = [_plain(r) for r in results]
    if _run_futures:
        future = _run_futures.pop(run.eid, None)
        if future is not None:
            future._complete([results if run.convert else raw, list(run.errors)], None)
    if run.done is not None and run.convert and not run.errors and run.prof is None:
        run.done.append((run.eid, results))
        return
    prof = run.prof
    if prof is not None:
        # Inclusive stage times to each stage's own time.
        prof = [prof[0]] + [max(0, prof[i] - prof[i - 1]) for i in range(1, len(prof))]
    _host.finish(run.eid, results, run.errors, prof)


def _settle(run, w):
    """True when the wait is over (w.value or w.error set); False when the execution must park."""
    p = w.pending
    if p.__class__ is weakref.ReferenceType:
        # The gearsFuture the step returned: only the user's references keep it.
        f = p()
        settled = _settled_futures.pop(run.eid, None)
        if f is None:
            f = settled
        if f is None:
            # Nothing referenced it any more and it was never continued: RedisGears' error.
            w.error = 'Async record did not called continue'
            return True
        if not f._done:
            f._waiters.append(run.eid)
            _watch_orphan(run.eid, p)
            return False
        w.value, w.error = f._value, _error_text(f._error)
        return True
    if isinstance(p, _Future):
        _settled_futures.pop(run.eid, None)
        if not p._done:
            p._waiters.append(run.eid)
            return False
        w.value, w.error = p._value, _error_text(p._error)
        return True
    return _advance(p, w, run.eid)


def _advance(p, w, wake):
    """Steps a coroutine until it finishes (w.value or w.error set: True) or waits on something not done yet
    (False: `wake`, an execution id or a callable, goes on when it is done)."""
    loop = _event_loop()
    throw = None
    while True:
        prev = _set_running_loop(loop)
        try:
            y = p.send(None) if throw is None else p.throw(throw)
        except StopIteration as e:
            w.value = e.value
            return True
        except Exception as e:
            # RedisGears reports an error out of a coroutine as str() alone: no traceback, no type.
            w.error = str(e)
            return True
        finally:
            _set_running_loop(prev)
        throw = None
        if _atomic_threads and _thread.get_ident() in _atomic_threads:
            throw = Exception('await is not allow inside atomic block')
            continue
        if isinstance(y, _Future):
            if y._done:
                continue
            y._waiters.append(wake)
            return False
        if y is None:
            continue  # asyncio.sleep(0)
        if hasattr(y, 'add_done_callback'):
            if wake.__class__ is str:
                y.add_done_callback(lambda _f: _host.resume(wake))
            else:
                y.add_done_callback(lambda _f: _wake(wake))
            return False
        p.close()
        w.error = 'an async step may await only gearsFuture objects and asyncio futures (got %r)' % (y,)
        return True


# After an execution parks on a gearsFuture: forced collections after these delays (s), then a look every 10 s.
_ORPHAN_CHECKS = (0.2, 1.0, 5.0)


def _watch_orphan(eid, ref):
    """RedisGears ends an execution as soon as nothing references the gearsFuture it waits on; here a
    garbage collection finds that out (the weak reference is cleared), and the execution ends with the error."""
    _event_loop().call_later(_ORPHAN_CHECKS[0], _check_orphan, eid, ref, 0)


def _check_orphan(eid, ref, n):
    run = _runs.get(eid)
    if run is None or run.waiting is None or run.waiting.pending is not ref or eid in _settled_futures:
        return  # it went on, or its future was continued and it resumes soon
    if n < len(_ORPHAN_CHECKS):
        _host.collectGarbage()
    if ref() is None:
        _host.resume(eid)
        return
    n += 1
    _event_loop().call_later(_ORPHAN_CHECKS[n] if n < len(_ORPHAN_CHECKS) else 10.0, _check_orphan, eid, ref, n)


def _trigger(rid, eids, payload, profile, no_async=False):
    """Runs one execution per event of a registration; payload holds each event's record data. no_async:
    a sync trigger from MULTI, whose steps may not wait (isAsyncAllow() is False)."""
    reg = _registrations.get(rid)
    if reg is None:
        return 0
    reader, steps, convert = reg
    active = _host.registrationActive
    if no_async:
        me = _thread.get_ident()
        _no_async_threads[me] = _no_async_threads.get(me, 0) + 1
    try:
        for i in range(len(eids)):
            if not active(rid):
                return i  # unregistered meanwhile: the rest of the batch never runs (jgears ends them)
            _start(eids[i], steps, convert, profile, None, _event_iter, reader, payload[i])
            if _async_futures:
                _collect_async()
    finally:
        if no_async:
            depth = _no_async_threads.pop(me, 1) - 1
            if depth > 0:
                _no_async_threads[me] = depth
    return len(eids)


def _event_iter(reader, data):
    return iter(_event_records(reader, data))


def _split_lens(blob, lens):
    """Cuts a string of concatenated parts by their comma-separated lengths (-1: None)."""
    out = []
    pos = 0
    if not lens:
        return out
    for n in lens.split(','):
        n = int(n)
        if n < 0:
            out.append(None)
        else:
            out.append(blob[pos:pos + n])
            pos += n
    return out


_FLUSH_EVERY = 16


def _trigger_keys(rid, ids, events, keys, key_lens, types, values, value_lens, has_values, profile):
    """Key events of one registration (one lane of them): the batch arrives as plain strings, built by
    jgears, so reading it costs no host access; finished executions go back in batches of plain strings."""
    reg = _registrations.get(rid)
    if reg is None:
        return 0
    reader, steps, convert = reg
    eids = ids.split(',')
    evs = events.split(',')
    ks = _split_lens(keys, key_lens)
    ts = types.split(',')
    if not has_values:
        vs = None
    elif value_lens is not None:
        vs = _split_lens(values, value_lens)
    else:
        vs = values  # values that are not all strings: a host array, read one by one
    active = _host.registrationActive
    keys_only = reader == 'KeysOnlyReader'
    done = []
    started = 0
    for i in range(len(eids)):
        if not active(rid):
            break  # unregistered meanwhile: the rest of the batch never runs (jgears ends them)
        if keys_only:
            record = ks[i]
        elif vs is None:
            record = {'event': evs[i], 'key': ks[i]}  # readValue=False: RedisGears reads neither type nor value
        else:
            t = ts[i]
            record = {'event': evs[i], 'key': ks[i], 'type': _rg_type(t),
                      'value': _value_of(t, vs[i] if value_lens is not None else _to_py(vs[i]))}
        _start(eids[i], steps, convert, profile, done, iter, (record,))
        started += 1
        if len(done) >= _FLUSH_EVERY:
            _flush_done(done)
    # Executions that await execute_async() replies: the whole lane's commands went out pipelined.
    _collect_async(done)
    if done:
        _flush_done(done)
    return started


def _flush_done(done):
    """Hands finished executions (str results, no errors, no profile) to jgears in one host call."""
    ids = []
    counts = []
    parts = []
    lens = []
    for eid, results in done:
        ids.append(eid)
        counts.append(str(len(results)))
        for x in results:
            parts.append(x)
            lens.append(str(len(x)))
    del done[:]
    _host.finishBatch(','.join(ids), ','.join(counts), ''.join(parts), ','.join(lens))


def _event_records(reader, data):
    if reader == 'KeysReader':
        event, key, t, raw, has_value = data[0], data[1], data[2], data[3], data[4]
        if not has_value:
            return [{'event': event, 'key': key}]
        return [{'event': event, 'key': key, 'type': _rg_type(t), 'value': _value_of(t, raw)}]
    if reader == 'KeysOnlyReader':
        return [data[1]]
    if reader == 'StreamReader':
        stream = data[0]
        out = []
        for entry in data[1]:
            it = iter(entry[1])
            out.append({'key': stream, 'id': entry[0], 'value': dict(zip(it, it))})
        return out
    # CommandReader: the argument list
    return [[x for x in data]]


def _forget_registration(rid):
    _registrations.pop(rid, None)


def call_next(*args):
    """Inside a command hook: runs the hooked command with these arguments (the command name is the
    hooked one) and returns its reply, raising on an error reply."""
    ok, value = _host.callNext([a if type(a) is bytes else str(a) for a in args])
    if not ok:
        raise GearsError(value)
    return _to_py(value)


def get_command():
    """Inside a KeysReader registration's commands= hook: the command that fired it, as a list of str."""
    ok, value = _host.getCommand()
    if not ok:
        raise GearsError(value)
    return _to_py(value)


def override_reply(*args):
    """Inside a command hook: the client gets this reply instead of the execution's result."""
    if len(args) != 1:
        raise GearsError('Override reply must get a single argument')
    ok, why = _host.overrideReply(_plain(args[0]))
    if not ok:
        raise GearsError(why)


def _resume(eid):
    run = _runs.get(eid)
    if run is not None:
        _drive(run)
    _collect_async()


def _drop_session(session_key):
    """Shared mode: the session was freed; its globals go (modules it imported stay: they are shared)."""
    _session_globals.pop(session_key, None)


def _drop(eid):
    _runs.pop(eid, None)
    _pending.pop(eid, None)
    future = _run_futures.pop(eid, None)
    if future is not None:
        future._complete(None, Exception('Execution was aborted'))


# ---------------------------------------------------------------- a minimal asyncio loop
# Enough of an event loop for async steps to await asyncio.sleep() and asyncio futures: timers go to
# the host, which calls back into this context; callbacks run when the current call into it ends.

_soon = []
_timers = {}
_loop = None
_timer_ids = [0]


class _Handle(object):
    __slots__ = ('cb', 'args', 'cancelled_', 'tid')

    def __init__(self, cb, args):
        self.cb = cb
        self.args = args
        self.cancelled_ = False
        self.tid = None

    def cancel(self):
        self.cancelled_ = True
        if self.tid is not None:
            _timers.pop(self.tid, None)

    def cancelled(self):
        return self.cancelled_


class _JGearsLoop(object):
    """The running loop async steps see: timers are jgears', callbacks run when the current call into
    this context ends. Duck-typed rather than an asyncio.AbstractEventLoop, so that a coroutine awaiting
    only gearsFutures (execute_async) does not import asyncio (2.5-5 s in a fresh context); asyncio code
    that awaits its own futures imports asyncio itself."""

    def create_future(self):
        import asyncio
        return asyncio.Future(loop=self)

    def call_soon(self, cb, *args, context=None):
        h = _Handle(cb, args)
        _soon.append(h)
        return h

    def call_later(self, delay, cb, *args, context=None):
        h = _Handle(cb, args)
        _timer_ids[0] += 1
        h.tid = _timer_ids[0]
        _timers[h.tid] = h
        _host.timer(max(0, int(delay * 1000)), h.tid)
        return h

    def call_at(self, when, cb, *args, context=None):
        return self.call_later(when - self.time(), cb, *args, context=context)

    def time(self):
        return time.monotonic()

    def get_debug(self):
        return False

    def is_running(self):
        return True

    def is_closed(self):
        return False

    def call_exception_handler(self, context):
        pass

    def _timer_handle_cancelled(self, handle):
        pass


def _event_loop():
    global _loop
    if _loop is None:
        _loop = _JGearsLoop()
    return _loop


_running_loop_fns = None


def _set_running_loop(loop):
    # Called twice per step of a coroutine: an import statement here, even of a loaded module, went
    # through the import machinery and its module lock each time (lanes contended for it).
    global _running_loop_fns
    if _running_loop_fns is None:
        try:
            import _asyncio as where  # the builtin module asyncio.events itself uses: no asyncio import
        except ImportError:
            import asyncio.events as where
        _running_loop_fns = (where._get_running_loop, where._set_running_loop)
    get, set_ = _running_loop_fns
    prev = get()
    set_(loop)
    return prev


def _fire_timer(tid):
    h = _timers.pop(tid, None)
    if h is not None and not h.cancelled_:
        _soon.append(h)
    _drain_soon()
    _collect_async()


def _drain_soon():
    while _soon:
        try:
            h = _soon.pop(0)
        except IndexError:
            return  # another thread in this context (a parallel lane of events) took the last one
        if not h.cancelled_:
            try:
                h.cb(*h.args)
            except Exception as e:
                _host.log('asyncio callback failed: %s' % (e,), 'warning')


# How gearsFuture() and isAsyncAllow() see the frames they walk: 1 a step whose function may create a
# gearsFuture (its `created` list), 2 a step whose function may not, 3 an execution's or a coroutine's driver.
# Keyed by name within this file, not by code object: with the runtime's code shared by every context of
# the engine, a frame's f_code is not always the very object the function's __code__ is.
_RUNTIME_FILE = _drive.__code__.co_filename
_SCOPES = {'_drive': 3, '_settle': 3, '_advance': 3}
for _fn in (_map, _flatmap, _foreach, _filter, _accumulate, _groupby, _aggregate, _aggregateby):
    _SCOPES[_fn.__name__] = 1
for _fn in (_repartition, _batchgroupby):
    _SCOPES[_fn.__name__] = 2
del _fn


_STEP_NAMES = {
    'map': 'RedisGearsPy_PyCallbackMapper', 'flatmap': 'RedisGearsPy_PyCallbackFlatMapper',
    'foreach': 'RedisGearsPy_PyCallbackForEach', 'filter': 'RedisGearsPy_PyCallbackFilter',
    'accumulate': 'RedisGearsPy_PyCallbackAccumulate', 'groupby': 'RedisGearsPy_PyCallbackAccumulateByKey',
    'batchgroupby': 'RedisGearsPy_PyCallbackGroupByReducer', 'aggregate': 'RedisGearsPy_PyCallbackAccumulate',
    'aggregateby': 'RedisGearsPy_PyCallbackAccumulateByKey', 'repartition': 'RedisGearsPy_PyCallbackExtractor',
    'collect': 'collect', 'limit': 'limit', 'sort': 'sort', 'distinct': 'distinct', 'count': 'count',
    'countby': 'countby', 'avg': 'avg',
}


def _describe(reader, arg, steps):
    """The plan as RG.GETEXECUTION shows it: [type, name, arg] per step."""
    out = []
    for step in steps:
        args = [x for x in step[1:] if callable(x)] or list(step[1:])
        out.append([step[0], _STEP_NAMES.get(step[0], step[0]), ', '.join(_safe_repr(a) for a in args)])
    return out


def _safe_repr(x):
    try:
        return repr(x)[:200]
    except Exception:
        return '<unprintable>'


def _plain(r):
    """convertToStr=False, as RedisGears replies with a record: str (a '+'/'-' prefix makes a status or
    error reply, see the host), int and bool as integers, float as '%f' text, bytes as they are, list as
    an array; anything else (None, dict, tuple, set, bytearray) is the text 'PY RECORD'."""
    t = type(r)
    if t is str or t is int or t is bool or t is bytes:
        return r
    if t is float:
        # Bytes, so that a negative one is a bulk string as on RedisGears, not an error reply ('-...').
        return ('%f' % r).encode()
    if t is list:
        return [_plain(x) for x in r]
    return 'PY RECORD'


def _run_pending(eid):
    plan = _pending.pop(eid, None)
    if plan is not None:
        _run_plan(eid, plan)


_session_globals = {}
# Shared mode: code objects by script text, so a script sent again is not compiled again.
_compiled = {}


def _load_error(e):
    if isinstance(e, SyntaxError) and not isinstance(e, IndentationError):
        _as_plain_invalid_syntax(e)
    return 'Error type: %s, Value: %s' % (type(e), e)


# The parser's messages of Python 3.10 and later that refine what RedisGears' CPython 3.7 called just
# 'invalid syntax': scripts and clients look for that text.
_REFINED_INVALID_SYNTAX = ('invalid syntax.', 'expected ', 'unmatched ', 'closing parenthesis ')


def _as_plain_invalid_syntax(e):
    msg = e.msg or ''
    if msg.startswith(_REFINED_INVALID_SYNTAX) or (msg.startswith('invalid ') and msg.endswith(' literal')):
        e.msg = 'invalid syntax'


def _exec_script(code, session_key=None):
    """Runs a script in __main__ (its own context), or in a globals dict of its own in the shared
    context (session_key); returns None, or the RedisGears-style error text when it fails to load."""
    if session_key is None:
        scope = sys.modules['__main__'].__dict__
    else:
        scope = _session_globals.get(session_key)
        if scope is None:
            scope = {'__name__': '__main__', '__builtins__': builtins}
            _session_globals[session_key] = scope
    compiled = _compiled.get(code)
    if compiled is None:
        try:
            compiled = compile(code, '<string>', 'exec')
        except SyntaxError as e:
            return _load_error(e)
        if len(_compiled) >= 256:
            _compiled.clear()  # a bounded cache: shared-mode callers that send ever-new code do not grow it
        _compiled[code] = compiled
    try:
        exec(compiled, scope)
        _collect_async()
    except BaseException as e:
        return _format_exception(e)
    return None


# The API as builtins, as RedisGears gives it: scripts use GB, execute, ... without importing them.
# They are also importable from a 'redisgears' module, as some RedisGears scripts do.
Log = _deprecated('Log', 'log', log)
ConfigGet = _deprecated('ConfigGet', 'configGet', configGet)
GearsConfigGet = _deprecated('GearsConfigGet', 'gearsConfigGet', gearsConfigGet)

_API = ('GearsBuilder', 'GB', 'execute', 'executeCommand', 'log', 'configGet', 'gearsConfigGet',
        'hashtag', 'atomic', 'gearsFuture', 'execute_async', 'registerTE', 'registerTimer', 'unregisterTE',
        'call_next', 'override_reply', 'get_command', 'Log', 'ConfigGet', 'GearsConfigGet', 'flat_error',
        'isAsyncAllow', 'createFuture', 'setFutureResults', 'setFutureException', 'runCoroutine')
_module = type(sys)('redisgears')
for _name in _API:
    setattr(builtins, _name, globals()[_name])
    setattr(_module, _name, globals()[_name])
# RedisGears' module names for the same functions, and the module itself as a global in every session.
_module.registerTimeEvent = registerTE
_module.error = GearsError
builtins.redisgears = _module
sys.modules['redisgears'] = _module


# ---------------------------------------------------------------- capability policy and requirements
# The JVM-level sandbox decides what a context may do (no host sockets unless its session's policy allows
# network; no threads unless it allows threads). Asking for what it refuses would end in an internal
# error that no `except` catches; these patches make the refusal an ordinary PermissionError first.

_NO_NETWORK = ('network access is not allowed in this session: run it with RG.PYEXECUTE ... ALLOW network '
               '(or ALLOW network=host:port,...), or set PythonAllowNetwork')
_NO_THREADS = ('threads are not allowed in this session: start jgears with PythonAllowThreads 1 and run it '
               'with RG.PYEXECUTE ... ALLOW threads')


def _refuse(message):
    def refused(*args, **kwargs):
        raise PermissionError(13, message)
    return refused


_NO_FILES = 'the file system is not available to scripts in jgears (its sandbox has no file access)'


def _sandbox_os():
    """Parts of os that the sandbox (no files, no processes, GraalPy's Java POSIX backend) refused with a host
    error that no `except` catches, ending the whole call with a reply that named a Java class. They raise
    ordinary Python errors now, or answer what the sandbox makes true.
    - os.getcwd() broke os.path.abspath() and inspect.stack() too: scripts see '/' as their working directory
      (RedisGears gives redis-server's, a path they could not use here either); changing it is refused.
    - os.system() and os._exit() (which would end the interpreter under every other call in it) are refused.
    - access, unlink, remove, rmdir on a path the sandbox hides: access is False, the others raise what
      os.stat raises for it (PermissionError, or FileNotFoundError).
    - Process groups, sessions, parent pid, ptys, ownership, non-blocking fds: the Java backend has none."""
    import posix
    mods = [posix]
    if 'os' in sys.modules:
        mods.append(sys.modules['os'])  # os copied posix's functions when it was imported
    stat = posix.stat
    original_access = posix.access

    def visible(call):
        def checked(path, *args, dir_fd=None, **kwargs):
            stat(path, dir_fd=dir_fd, follow_symlinks=False)  # a hidden path: a catchable OSError here
            return call(path, *args, dir_fd=dir_fd, **kwargs)
        return checked

    def access(path, mode, *, dir_fd=None, effective_ids=False, follow_symlinks=True):
        try:
            stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)
        except OSError:
            return False
        return original_access(path, mode, dir_fd=dir_fd, effective_ids=effective_ids,
                               follow_symlinks=follow_symlinks)

    def unsupported(name):
        def refused(*args, **kwargs):
            raise OSError(38, "os.%s() is not available in jgears' sandbox" % name)  # ENOSYS
        return refused

    def not_permitted(path, *args, **kwargs):
        raise PermissionError(1, 'Operation not permitted', path)

    def no_process(*args, **kwargs):
        raise PermissionError(1, "scripts cannot start processes in jgears' sandbox")

    def no_exit(*args, **kwargs):
        raise PermissionError(1, 'os._exit() would end the interpreter under every call in it: raise SystemExit '
                                 'to end a script')

    patched = {'getcwd': lambda: '/', 'getcwdb': lambda: b'/', 'chdir': _refuse(_NO_FILES),
               'fchdir': _refuse(_NO_FILES), 'system': no_process, '_exit': no_exit, 'access': access,
               'unlink': visible(posix.unlink), 'remove': visible(posix.remove), 'rmdir': visible(posix.rmdir),
               'chown': not_permitted, 'lchown': not_permitted, 'fchown': not_permitted}
    for name in ('getppid', 'getpgid', 'getpgrp', 'getsid', 'setpgid', 'setpgrp', 'setsid', 'openpty',
                 'set_blocking'):
        patched[name] = unsupported(name)
    for mod in mods:
        for name, value in patched.items():
            if hasattr(mod, name):
                setattr(mod, name, value)
    try:
        import _multiprocessing_graalpy  # multiprocessing's processes are GraalPy contexts it may not create
        _multiprocessing_graalpy._spawn_context = no_process
    except ImportError:
        pass


def _sandbox_select(_socket, sockets):
    """select.select() works on sockets only: on anything else (a pipe, the null standard streams) GraalPy's
    Java backend fails with an error no `except` catches. Where the session may have sockets, a socket object
    or a number (which may be a socket's fileno()) goes through; anything else is an OSError (ENOSYS) first."""
    import select
    original = select.select

    def checked(*lists):
        for objects in lists[:3]:
            for obj in objects:
                if not sockets or not isinstance(obj, (int, _socket.socket)):
                    raise OSError(38, "select.select() works on sockets only in jgears' sandbox, not on %r" % (obj,))
        return original(*lists)
    select.select = checked


def _apply_policy(network, allowed, threads):
    """network: 'none', 'all' or 'list' (then allowed is 'host:port,...'); threads: a bool."""
    import _socket
    _sandbox_os()
    _sandbox_select(_socket, network != 'none')
    if network == 'none':
        class socket(object):
            __slots__ = ()  # socket.py's subclass adds __weakref__ and its own slots

            def __init__(self, *args, **kwargs):
                raise PermissionError(13, _NO_NETWORK)
        socket.__module__ = '_socket'
        _socket.socket = _socket.SocketType = socket
        for name in ('socketpair', 'fromfd', 'getaddrinfo', 'gethostbyname', 'gethostbyname_ex', 'gethostbyaddr',
                     'getnameinfo', 'dup'):
            if hasattr(_socket, name):
                setattr(_socket, name, _refuse(_NO_NETWORK))
    elif network == 'list':
        _limit_sockets(_socket, [a for a in str(allowed).split(',') if a])
    if not threads:
        _thread.start_new_thread = _refuse(_NO_THREADS)
        if hasattr(_thread, 'start_joinable_thread'):
            _thread.start_joinable_thread = _refuse(_NO_THREADS)
        if 'threading' in sys.modules:
            sys.modules['threading']._start_new_thread = _thread.start_new_thread


def _limit_sockets(_socket, allowed):
    """Sockets may connect (or send, or bind) only to the listed host:port pairs, by name or address."""
    original = _socket.socket
    resolve = _socket.getaddrinfo
    wanted = []
    for entry in allowed:
        host, _, port = entry.rpartition(':')
        wanted.append((host.lower(), int(port)))

    def check(address):
        if not isinstance(address, tuple) or len(address) < 2:
            raise PermissionError(13, 'network access to %r is not allowed in this session' % (address,))
        host, port = str(address[0]).lower(), address[1]
        for h, p in wanted:
            if p != port:
                continue
            if h == host:
                return
            try:
                if any(info[4][0] == host for info in resolve(h, p)):
                    return
            except OSError:
                pass
        raise PermissionError(13, 'network access to %s:%s is not allowed in this session (allowed: %s)'
                              % (host, port, ', '.join(allowed)))

    class socket(original):
        __slots__ = ()

        def connect(self, address):
            check(address)
            return original.connect(self, address)

        def connect_ex(self, address):
            check(address)
            return original.connect_ex(self, address)

        def bind(self, address):
            check(address)
            return original.bind(self, address)

        def sendto(self, data, *args):
            check(args[-1] if args else None)
            return original.sendto(self, data, *args)

    socket.__module__ = '_socket'
    _socket.socket = _socket.SocketType = socket


class _RequirementLoader(object):
    """Runs a requirement's module from the source jgears read for it."""

    def __init__(self, source):
        self.source = source

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(compile(self.source, module.__spec__.origin, 'exec', dont_inherit=True), module.__dict__)


class _RequirementsFinder(object):
    """Imports the session's requirements, and only its own, through jgears: the sandbox has no file
    system, so jgears reads their files (read-only) from its requirement store."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        found = _host.requirementModule(fullname)
        if found is None:
            return None
        import importlib.machinery
        kind, origin, source = str(found[0]), str(found[1]), str(found[2])
        if kind == 'namespace':
            spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
            spec.submodule_search_locations = origin.split('\n')
            return spec
        spec = importlib.machinery.ModuleSpec(fullname, _RequirementLoader(source), origin=origin,
                                              is_package=(kind == 'package'))
        if kind == 'package':
            spec.submodule_search_locations = [origin.rpartition('/')[0]]
        spec.has_location = True
        return spec

    @staticmethod
    def invalidate_caches():
        pass


def _use_requirements():
    if _RequirementsFinder not in sys.meta_path:
        sys.meta_path.append(_RequirementsFinder)


def _become_module(network, allowed, threads, pre_imports):
    """Called once by jgears right after this file ran in the context's __main__: this namespace becomes
    module '_jgears', scripts get a fresh, empty __main__, the session's capability policy is applied,
    and pre_imports (module names) are imported into sys.modules only, never into __main__: a script
    sees the same globals whether they ran or not."""
    runtime = sys.modules['__main__']
    sys.modules['_jgears'] = runtime
    main = type(sys)('__main__')
    main.__builtins__ = builtins  # as CPython's __main__: a script's builtins.len patch is seen by its own code
    sys.modules['__main__'] = main
    _apply_policy(network, allowed, threads)
    _pre_import(pre_imports)
    return runtime


def _pre_import(names):
    for name in names:
        __import__(name)
