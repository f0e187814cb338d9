#!/usr/bin/env python3
"""pyaff4 0.34 on encrypted containers, both directions.

    pyaff4_encrypted.py read VOLUME URN (--password PW | --key KEY.pem)
        opens VOLUME with pyaff4, unlocks it, and prints the SHA-256 and length of stream URN
        read from the decrypted inner volume.
    pyaff4_encrypted.py write VOLUME FILE --password PW [--cert CERT.pem]
        writes an encrypted container with pyaff4 holding FILE as a logical image (pyaff4 needs
        a password bag before it adds a certificate bag), and prints the logical image's name.
"""

import argparse
import hashlib
import os
import sys

from pyaff4 import container, data_store, lexicon, rdfvalue


def read(a):
    # (not closed: pyaff4 0.34's resolver flush fails on the symbolic streams a map refers to)
    volume = container.Container.openURNtoContainer(rdfvalue.URN.FromFileName(a.volume))
    if a.key:
        volume.setPrivateKey(a.key)
    else:
        volume.setPassword(a.password)
    child = volume.getChildContainer()
    fd = child.resolver.AFF4FactoryOpen(rdfvalue.URN(a.urn))
    h, n, size = hashlib.sha256(), 0, fd.Size()
    while n < size:
        b = fd.Read(min(1 << 20, size - n))
        if not b:
            break
        h.update(b)
        n += len(b)
    print(h.hexdigest(), n, flush=True)
    os._exit(0)


def write(a):
    urn = rdfvalue.URN.FromFileName(a.volume)
    data = open(a.file, "rb").read()
    with data_store.MemoryDataStore() as resolver:
        with container.Container.createURN(resolver, urn, encryption=True) as volume:
            volume.setPassword(a.password)
            if a.cert:
                volume.setPublicKeyCert(a.cert)
            child = volume.getChildContainer()
            name = os.path.basename(a.file)
            with child.newLogicalStream(name, len(data)) as w:
                w.Write(data)
    print(name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("read")
    r.add_argument("volume")
    r.add_argument("urn")
    g = r.add_mutually_exclusive_group(required=True)
    g.add_argument("--password")
    g.add_argument("--key")
    w = sub.add_parser("write")
    w.add_argument("volume")
    w.add_argument("file")
    w.add_argument("--password", required=True)
    w.add_argument("--cert")
    a = ap.parse_args()
    read(a) if a.cmd == "read" else write(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
