# The Python side of jgears, loaded once into every sub-interpreter (GraalPy context) when the warm
# pool creates it. It gives scripts the RedisGears 1.2 API (GearsBuilder/GB, execute, log, ...) as
# builtins, and talks to jgears through one host object with a few batched calls.
import builtins
import copy
import sys
import traceback

import polyglot

_host = polyglot.import_value('jgears')
SHARD_ID = '0000000000000000000000000000000000000000'
_READ_BATCH = 1000


def _to_py(v):
    """Host values (foreign arrays) to plain Python lists; strings, ints and None pass as they are."""
    t = type(v)
    if t is str or t is int or t is float or v is None:
        return v
    return [_to_py(x) for x in v]


def _format_exception(e):
    """RedisGears' error text: str() of the traceback's line list, without jgears' own frames."""
    lines = traceback.format_exception(type(e), e, e.__traceback__)
    return str([line for line in lines if not line.startswith('  File "_jgears.py"')])


# ---------------------------------------------------------------- module functions

def execute(command, *args):
    """Runs a Redis command; returns its reply as Python values and raises on an error reply."""
    ok, value = _host.execute([command] + [a if type(a) is bytes else str(a) for a in args])
    if not ok:
        raise Exception(value)
    return _to_py(value)


executeCommand = execute


def log(msg, level='notice'):
    _host.log(str(msg), str(level))


def configGet(key):
    return _host.configGet(str(key))


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
        return self

    def __exit__(self, exc_type, exc, tb):
        ok, value = _host.atomicEnd(exc_type is None)
        if exc_type is None:
            if not ok:
                raise Exception(value)
            self.results = _to_py(value)
        return False


class gearsFuture(object):
    def __init__(self):
        raise NotImplementedError('gearsFuture is not supported by jgears yet')


# ---------------------------------------------------------------- readers

def _keys_records(pattern, no_scan, read_value, keys_only):
    cursor = '0'
    while True:
        batch = _host.readBatch(cursor, pattern, _READ_BATCH, read_value and not keys_only, no_scan)
        cursor = batch[0]
        n = len(batch)
        step = 3 if (read_value and not keys_only) else 2
        i = 1
        while i < n:
            key = batch[i]
            if keys_only:
                yield key
            else:
                t = batch[i + 1]
                if read_value:
                    yield {'event': None, 'key': key, 'type': t, 'value': _value_of(t, batch[i + 2])}
                else:
                    yield {'event': None, 'key': key, 'type': t}
            i += step
        if cursor == '0':
            return


def _value_of(t, raw):
    if t == 'string' or raw is None:
        return raw
    if t == 'hash':
        it = iter(raw)
        return dict(zip(it, it))
    if t == 'zset':
        it = iter(raw)
        return [(m, float(s)) for m, s in zip(it, it)]
    if t == 'stream':
        out = []
        for entry in raw:
            it = iter(entry[1])
            out.append({'id': entry[0], 'value': dict(zip(it, it))})
        return out
    return [x for x in raw]


def _stream_records(stream, from_id):
    start = from_id if from_id else '-'
    exclusive = False
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
        self.reader = reader
        self.defaultArg = defaultArg
        self.desc = desc
        self.steps = []

    def _add(self, kind, *fns):
        self.steps.append((kind,) + fns)
        return self

    # per-record operations
    def map(self, f):
        return self._add('map', f)

    def flatmap(self, f):
        return self._add('flatmap', f)

    def foreach(self, f):
        return self._add('foreach', f)

    def filter(self, f):
        return self._add('filter', f)

    # whole-set operations
    def accumulate(self, f):
        return self._add('accumulate', f)

    def localgroupby(self, extractor, reducer):
        return self._add('groupby', extractor, reducer)

    def groupby(self, extractor, reducer):
        # One shard: repartition is the identity, so groupby is localgroupby.
        return self._add('groupby', extractor, reducer)

    def batchgroupby(self, extractor, reducer):
        return self._add('batchgroupby', extractor, reducer)

    def aggregate(self, zero, seqOp, combOp):
        return self._add('aggregate', zero, seqOp, combOp)

    def aggregateby(self, extractor, zero, seqOp, combOp):
        return self._add('aggregateby', extractor, zero, seqOp, combOp)

    def repartition(self, extractor):
        return self._add('repartition', extractor)

    def collect(self):
        return self._add('collect')

    def limit(self, length, start=0):
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
        return self._add('avg', extractor)

    # actions
    def run(self, arg=None, convertToStr=True, collect=True, **kwargs):
        reader = self.reader
        if reader not in _BATCH_READERS:
            if reader == 'CommandReader':
                raise Exception('CommandReader can only be used with register()')
            raise Exception('Unknown reader: %s' % (reader,))
        if arg is None:
            arg = self.defaultArg
        plan = (reader, arg, kwargs, list(self.steps), convertToStr)
        eid, run_now = _host.newExecution(reader, self.desc)
        if run_now:
            _run_plan(eid, plan)
        else:
            _pending[eid] = plan
        return None

    def register(self, *args, **kwargs):
        raise NotImplementedError('register() is not supported by jgears yet (registrations come in a later release)')


GB = GearsBuilder
_pending = {}
_BATCH_READERS = ('KeysReader', 'KeysOnlyReader', 'ShardsIDReader', 'PythonReader', 'StreamReader')


def _records(reader, arg, kwargs):
    if reader == 'KeysReader' or reader == 'KeysOnlyReader':
        no_scan = bool(kwargs.get('noScan', False))
        read_value = bool(kwargs.get('readValue', True))
        return _keys_records(str(arg), no_scan, read_value, reader == 'KeysOnlyReader')
    if reader == 'ShardsIDReader':
        return iter([SHARD_ID])
    if reader == 'PythonReader':
        if not callable(arg):
            raise Exception('PythonReader needs a callable (a generator function) as the run() argument')
        return iter(arg())
    if reader == 'StreamReader':
        return _stream_records(str(arg), kwargs.get('fromId', '0-0'))
    raise Exception('Unknown reader: %s' % (reader,))


def _apply(steps, records, errors):
    """Chains the steps as generators; per-record failures go to errors and the record is dropped."""
    for step in steps:
        records = _STEP[step[0]](step, records, errors)
    return records


def _map(step, records, errors):
    f = step[1]
    for r in records:
        try:
            yield f(r)
        except Exception as e:
            errors.append(_format_exception(e))


def _flatmap(step, records, errors):
    f = step[1]
    for r in records:
        try:
            out = f(r)
        except Exception as e:
            errors.append(_format_exception(e))
            continue
        if isinstance(out, (list, tuple)):
            for x in out:
                yield x
        else:
            yield out


def _foreach(step, records, errors):
    f = step[1]
    for r in records:
        try:
            f(r)
        except Exception as e:
            errors.append(_format_exception(e))
            continue
        yield r


def _filter(step, records, errors):
    f = step[1]
    for r in records:
        try:
            keep = f(r)
        except Exception as e:
            errors.append(_format_exception(e))
            continue
        if keep:
            yield r


def _accumulate(step, records, errors):
    f = step[1]
    acc = None
    seen = False
    for r in records:
        try:
            acc = f(acc, r)
            seen = True
        except Exception as e:
            errors.append(_format_exception(e))
    if seen:
        yield acc


def _groupby(step, records, errors):
    extractor, reducer = step[1], step[2]
    groups = {}
    for r in records:
        try:
            k = extractor(r)
            groups[k] = reducer(k, groups.get(k), r)
        except Exception as e:
            errors.append(_format_exception(e))
    for k, v in groups.items():
        yield {'key': k, 'value': v}


def _batchgroupby(step, records, errors):
    extractor, reducer = step[1], step[2]
    groups = {}
    for r in records:
        try:
            groups.setdefault(extractor(r), []).append(r)
        except Exception as e:
            errors.append(_format_exception(e))
    for k, rs in groups.items():
        try:
            yield {'key': k, 'value': reducer(k, rs)}
        except Exception as e:
            errors.append(_format_exception(e))


def _aggregate(step, records, errors):
    zero, seq, comb = step[1], step[2], step[3]
    local = copy.deepcopy(zero)
    for r in records:
        try:
            local = seq(local, r)
        except Exception as e:
            errors.append(_format_exception(e))
    # The shards' partial results are combined; on one shard that is one combine with zero.
    try:
        yield comb(copy.deepcopy(zero), local)
    except Exception as e:
        errors.append(_format_exception(e))


def _aggregateby(step, records, errors):
    extractor, zero, seq, comb = step[1], step[2], step[3], step[4]
    groups = {}
    for r in records:
        try:
            k = extractor(r)
            a = groups[k] if k in groups else copy.deepcopy(zero)
            groups[k] = seq(k, a, r)
        except Exception as e:
            errors.append(_format_exception(e))
    for k, local in groups.items():
        try:
            yield {'key': k, 'value': comb(k, copy.deepcopy(zero), local)}
        except Exception as e:
            errors.append(_format_exception(e))


def _repartition(step, records, errors):
    extractor = step[1]
    for r in records:
        try:
            extractor(r)
        except Exception as e:
            errors.append(_format_exception(e))
            continue
        yield r


def _collect(step, records, errors):
    return records


def _limit(step, records, errors):
    length, start = step[1], step[2]
    i = 0
    end = start + length
    for r in records:
        if i >= end:
            return
        if i >= start:
            yield r
        i += 1


def _sort(step, records, errors):
    try:
        out = sorted(records, reverse=step[1])
    except Exception as e:
        errors.append(_format_exception(e))
        return
    for r in out:
        yield r


def _distinct(step, records, errors):
    seen = set()
    seen_unhashable = []
    for r in records:
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
    for _ in records:
        n += 1
    yield n


def _countby(step, records, errors):
    extractor = step[1]
    counts = {}
    for r in records:
        try:
            k = extractor(r)
            counts[k] = counts.get(k, 0) + 1
        except Exception as e:
            errors.append(_format_exception(e))
    for k, n in counts.items():
        yield {'key': k, 'value': n}


def _avg(step, records, errors):
    extractor = step[1]
    total = 0.0
    n = 0
    for r in records:
        try:
            total += extractor(r)
            n += 1
        except Exception as e:
            errors.append(_format_exception(e))
    if n:
        yield total / n


_STEP = {
    'map': _map, 'flatmap': _flatmap, 'foreach': _foreach, 'filter': _filter,
    'accumulate': _accumulate, 'groupby': _groupby, 'batchgroupby': _batchgroupby,
    'aggregate': _aggregate, 'aggregateby': _aggregateby, 'repartition': _repartition,
    'collect': _collect, 'limit': _limit, 'sort': _sort, 'distinct': _distinct,
    'count': _count, 'countby': _countby, 'avg': _avg,
}


def _run_plan(eid, plan):
    reader, arg, kwargs, steps, convert = plan
    errors = []
    results = []
    try:
        for r in _apply(steps, _records(reader, arg, kwargs), errors):
            results.append(r)
    except Exception as e:
        # A reader failure (a bad argument, Redis gone) ends the execution; what was read so far stays.
        errors.append(_format_exception(e))
    if convert:
        results = [r if type(r) is str else str(r) for r in results]
    else:
        results = [_plain(r) for r in results]
    _host.finish(eid, results, errors)


def _plain(r):
    """convertToStr=False: str, int, float, None, lists and dicts go as RESP values; others as str()."""
    t = type(r)
    if t is str or t is int or t is float or r is None or t is bool:
        return r
    if t is list or t is tuple:
        return [_plain(x) for x in r]
    if t is dict:
        out = []
        for k, v in r.items():
            out.append(str(k))
            out.append(_plain(v))
        return out
    return str(r)


def _run_pending(eid):
    plan = _pending.pop(eid, None)
    if plan is not None:
        _run_plan(eid, plan)


def _exec_script(code):
    """Runs a script in __main__; returns None, or the RedisGears-style error text when it fails to load."""
    import __main__
    try:
        compiled = compile(code, '<string>', 'exec')
    except SyntaxError as e:
        return 'Error type: %s, Value: %s' % (type(e), e)
    try:
        exec(compiled, __main__.__dict__)
    except BaseException as e:
        return _format_exception(e)
    return None


# The API as builtins, as RedisGears gives it: scripts use GB, execute, ... without importing them.
# They are also importable from a 'redisgears' module, as some RedisGears scripts do.
_API = ('GearsBuilder', 'GB', 'execute', 'executeCommand', 'log', 'configGet', 'gearsConfigGet',
        'hashtag', 'atomic', 'gearsFuture')
_module = type(sys)('redisgears')
for _name in _API:
    setattr(builtins, _name, globals()[_name])
    setattr(_module, _name, globals()[_name])
sys.modules['redisgears'] = _module
