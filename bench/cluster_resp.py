#!/usr/bin/env python3
"""Writes the commands of bench/cluster.sh as RESP, one file per master (the master owning each key's slot,
with the slots split evenly as `./jgears cluster start N` splits them), for `redis-cli --pipe`.

  cluster_resp.py keys   N DIR COUNT          SET bench:<i> <i>, i < COUNT          -> DIR/load-<m>.resp
  cluster_resp.py events N DIR COUNT ROUND    SET ev:{t<j>}:<ROUND>:<i> 1 over TAGS hash tags
                                              -> DIR/events-<ROUND>-<m>.resp, and DIR/tags-<m>.txt (the
                                              counter keys n:{t<j>} that master holds, one a line)
"""
import sys

TAGS = 256


def _table():
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        table.append(crc)
    return table


CRC_TABLE = _table()


def slot(key):
    """Redis Cluster's hash slot of a key (CRC16/XMODEM of the key or of its hash tag, mod 16384)."""
    start = key.find(b'{')
    if start >= 0:
        end = key.find(b'}', start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    crc = 0
    for b in key:
        crc = ((crc << 8) & 0xFFFF) ^ CRC_TABLE[((crc >> 8) ^ b) & 0xFF]
    return crc % 16384


def owner(s, n):
    """The master holding slot s: master i has slots i*16384//n .. (i+1)*16384//n - 1."""
    return next(i for i in range(n) if s <= (i + 1) * 16384 // n - 1)


def command(*args):
    out = [b'*%d\r\n' % len(args)]
    for a in args:
        out.append(b'$%d\r\n%s\r\n' % (len(a), a))
    return b''.join(out)


def main():
    what, n, d, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    if what == 'keys':
        files = [open('%s/load-%d.resp' % (d, m), 'wb') for m in range(n)]
        for i in range(count):
            key = b'bench:%d' % i
            files[owner(slot(key), n)].write(command(b'SET', key, b'%d' % i))
    elif what == 'events':
        rnd = sys.argv[5]
        tag_owner = [owner(slot(b'{t%d}' % j), n) for j in range(TAGS)]
        for m in range(n):
            with open('%s/tags-%d.txt' % (d, m), 'w') as f:
                f.write(''.join('n:{t%d}\n' % j for j in range(TAGS) if tag_owner[j] == m))
        files = [open('%s/events-%s-%d.resp' % (d, rnd, m), 'wb') for m in range(n)]
        for i in range(count):
            j = i % TAGS
            files[tag_owner[j]].write(command(b'SET', b'ev:{t%d}:%s:%d' % (j, rnd.encode(), i), b'1'))
    else:
        sys.exit('cluster_resp.py: keys or events, not ' + what)
    for f in files:
        f.close()


if __name__ == '__main__':
    main()
