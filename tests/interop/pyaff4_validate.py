#!/usr/bin/env python3
"""Run pyaff4 0.34's block-hash validator (block_hasher.Validator().validateContainer) on each
AFF4 volume given and print one JSON line per volume: {"volume", "valid", "invalid", "error"},
with the names of the invalid hashes. Exit 1 when any volume has an invalid hash or an error.
"""
import json
import sys

from pyaff4 import block_hasher, rdfvalue
from pyaff4 import plugins  # noqa: F401  (registers stream types)


class Listener(block_hasher.ValidationListener):
    def __init__(self):
        self.valid = 0
        self.invalid = []

    def onValidBlockHash(self, a):
        self.valid += 1

    def onInvalidBlockHash(self, a, b, stream, offset):
        self.invalid.append("block hash of %s at %d" % (stream, offset))

    def onValidHash(self, typ, hash, stream):
        self.valid += 1

    def onInvalidHash(self, typ, a, b, stream):
        self.invalid.append("%s of %s" % (typ, stream))


def main():
    bad = False
    for path in sys.argv[1:]:
        listener = Listener()
        error = None
        try:
            block_hasher.Validator(listener).validateContainer(rdfvalue.URN.FromFileName(path))
        except Exception as e:  # noqa: BLE001 (any failure of the validator is the result)
            error = "%s: %s" % (type(e).__name__, e)
        bad |= bool(listener.invalid) or error is not None
        print(json.dumps({"volume": path, "valid": listener.valid, "invalid": listener.invalid, "error": error}))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
