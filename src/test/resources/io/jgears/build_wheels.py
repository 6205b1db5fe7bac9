"""Builds a folder of wheels for the requirement tests, offline: pure-Python wheels repackaged from
Debian's installed python3-* packages (their files as installed, with a minimal dist-info), plus tiny
generated packages. Usage: build_wheels.py OUT_DIR"""
import base64
import hashlib
import os
import sys
import zipfile

DIST = '/usr/lib/python3/dist-packages'
STDLIB = '/usr/lib/python3.11'

# name, version, base directory, top-level files or packages, Requires-Dist.
# Debian's pg8000 1.10.6 declares none of its imports: six, and distutils (LooseVersion), which left the
# standard library in Python 3.12 (GraalPy's version), so the stdlib's pure-Python copy ships as a wheel.
DEBIAN = [
    ('pg8000', '1.10.6', DIST, ['pg8000'], ['six', 'distutils']),
    ('six', '1.16.0', DIST, ['six.py'], []),
    ('distutils', '3.11', STDLIB, ['distutils'], []),
    ('redis', '4.3.4', DIST, ['redis'], ['packaging']),
    ('packaging', '23.0', DIST, ['packaging'], []),
]

GENERATED = [
    # name, version, {path: source}, requires, tag
    ('jgtest_a', '1.0', {'jgtest_a/__init__.py': 'VALUE = "a"\nfrom . import sub\n',
                         'jgtest_a/sub.py': 'def hello():\n    return "hello from a"\n'}, ['jgtest_dep'], 'py3-none-any'),
    ('jgtest_dep', '2.0', {'jgtest_dep.py': 'DEP = 2\n'}, [], 'py3-none-any'),
    ('jgtest_b', '1.0', {'jgtest_b.py': 'VALUE = "b"\n'}, [], 'py3-none-any'),
    ('jgtest_native', '1.0', {'jgtest_native/__init__.py': 'X = 1\n'}, [], 'cp312-cp312-manylinux_2_17_x86_64'),
]


def files_of(base, tops):
    for top in tops:
        path = os.path.join(base, top)
        if os.path.isfile(path):
            yield top, path
            continue
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d != '__pycache__')
            for n in sorted(names):
                if n.endswith(('.pyc', '.so', '.exe')):
                    continue
                full = os.path.join(root, n)
                yield os.path.relpath(full, base), full


def write_wheel(out, name, version, entries, requires, tag='py3-none-any'):
    """entries: (archive path, bytes)."""
    info = '%s-%s.dist-info' % (name, version)
    meta = ['Metadata-Version: 2.1', 'Name: ' + name, 'Version: ' + version] + ['Requires-Dist: ' + r for r in requires]
    purelib = 'true' if tag.endswith('none-any') else 'false'
    entries = list(entries) + [
        (info + '/METADATA', ('\n'.join(meta) + '\n').encode()),
        (info + '/WHEEL', ('Wheel-Version: 1.0\nGenerator: jgears-tests\nRoot-Is-Purelib: %s\nTag: %s\n' % (purelib, tag)).encode()),
    ]
    record = []
    path = os.path.join(out, '%s-%s-%s.whl' % (name, version, tag))
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as z:
        for arc, data in entries:
            z.writestr(arc, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
            record.append('%s,sha256=%s,%d' % (arc, digest, len(data)))
        record.append(info + '/RECORD,,')
        z.writestr(info + '/RECORD', '\n'.join(record) + '\n')
    return path


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, version, base, tops, requires in DEBIAN:
        entries = []
        for arc, full in files_of(base, tops):
            with open(full, 'rb') as f:
                entries.append((arc, f.read()))
        write_wheel(out, name, version, entries, requires)
    for name, version, sources, requires, tag in GENERATED:
        write_wheel(out, name, version, [(p, s.encode()) for p, s in sources.items()], requires, tag)
    print('\n'.join(sorted(os.listdir(out))))


main()
