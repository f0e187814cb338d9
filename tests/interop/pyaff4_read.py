#!/usr/bin/env python3
"""Read an AFF4 volume with pyaff4 0.34's container API (Container.openURNtoContainer, which
honours version.txt as pyaff4's own tools do) and print `IMAGE <urn> <bytes> <sha256>` for the
physical image (pyaff4 exposes the first one), or `FILE <name> <bytes> <sha256>` for each
logical file. --dump OUT also writes the physical image's bytes. Exit 1 when pyaff4 cannot
open or read the volume.
"""
import hashlib
import sys

from pyaff4 import container, rdfvalue
from pyaff4 import plugins  # noqa: F401  (registers stream types)


def drain(stream, out=None):
    h = hashlib.sha256()
    n = 0
    size = stream.Size()
    while n < size:
        d = stream.Read(min(1 << 20, size - n))
        if not d:
            break
        h.update(d)
        if out:
            out.write(d)
        n += len(d)
    return n, h.hexdigest()


def main():
    path = sys.argv[1]
    dump = sys.argv[sys.argv.index("--dump") + 1] if "--dump" in sys.argv else None
    c = container.Container.openURNtoContainer(rdfvalue.URN.FromFileName(path))
    if c is None:
        print("pyaff4 could not classify the volume", file=sys.stderr)
        sys.exit(1)
    if isinstance(c, container.PhysicalImageContainer):
        out = open(dump, "wb") if dump else None
        n, h = drain(c.image.dataStream, out)
        if out:
            out.close()
        print("IMAGE", c.image.urn, n, h)
    else:
        for img in c.images():
            with c.open(img.urn) as s:
                n, h = drain(s)
            print("FILE", img.name(), n, h)


if __name__ == "__main__":
    main()
