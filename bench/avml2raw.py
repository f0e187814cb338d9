"""AVML --compress output (LiME v2: snappy-framed ranges, each followed by a u64) to a sparse raw file."""
import struct, sys, snappy
f = open(sys.argv[1], 'rb'); out = open(sys.argv[2], 'wb')
pos = 0
while True:
    f.seek(pos); h = f.read(32)
    if len(h) < 32: break
    magic, ver, start, end = struct.unpack_from('<IIQQ', h)
    assert magic in (0x4C694D45, 0x4C4D5641), hex(magic)
    want = end + 1 - start; pos += 32; out.seek(start)
    if ver == 1:
        out.write(f.read(want)); pos += want; continue
    got = 0
    while got < want:
        f.seek(pos); t, l = f.read(1)[0], int.from_bytes(f.read(3), 'little'); body = f.read(l); pos += 4 + l
        if t == 0x00: data = snappy.uncompress(body[4:])
        elif t == 0x01: data = body[4:]
        else: continue
        out.write(data); got += len(data)
    pos += 8
out.truncate(max(out.tell(), 0))
