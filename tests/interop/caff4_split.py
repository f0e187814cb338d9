#!/usr/bin/env python3
"""Writes an AFF4 split volume set laid out exactly as c-aff4's `aff4imager --split` leaves it.

    caff4_split.py INPUT OUTPUT.aff4 --bevies-per-part N [--chunks-per-bevy C] [--naming caff4|short]
                   [--sha1] [--conflicting-sha1]

What c-aff4 (aff4/aff4_imager_utils.cc, aff4_image.cc, zip.cc, data_store.cc) does, reproduced:
* one ImageStream `<VOL1>/<input path>` (typed aff4:ImageStream, and aff4:Image once written),
  zlib chunks of 32 KiB, 1024 chunks per bevy unless --chunks-per-bevy, the last chunk short;
* parts `OUTPUT.aff4`, then `OUTPUT.aff4.A01`, … (`%s.A%02d` on the output path; --naming short
  gives `OUTPUT.A01`, …), each a ZIP with its own volume URN (container.description and the ZIP
  comment), switching only at bevy boundaries; bevies in later parts are named by the stream's
  absolute URN (`aff4%3A%2F%2F<VOL1>/…`) because it is not under their volume's URN;
* every part's information.turtle is a dump of the whole graph when that part closed: the
  first parts say `aff4:size 0` with no chunkSize, compression or Image type (set only when
  the stream is flushed), `aff4:stored` stays the first volume, and only the last part has the
  final facts (and, with --sha1, the stream's SHA-1, as pmem-era c-aff4 imagers record it).
"""

import argparse
import hashlib
import sys
import uuid
import zipfile
import zlib

AFF4 = "http://aff4.org/Schema#"
ZLIB = "https://www.ietf.org/rfc/rfc1950.txt"


def member_name(urn, volume):
    """c-aff4's member_name_for_urn: relative under the volume, else the escaped absolute URN."""
    if urn.startswith(volume + "/"):
        return urn[len(volume) + 1:]
    out, i = [], 0
    while i < len(urn):
        c = urn[i]
        if c in '!$\\:*%?"<>|':
            out.append("%%%02X" % ord(c))
        elif c == "/" and urn[i + 1:i + 2] == "/":
            out.append("%2F%2F")
            i += 1
        else:
            out.append(c)
        i += 1
    return "".join(out)


def turtle(stream, vol1, facts):
    lines = ["@prefix aff4: <%s> ." % AFF4, "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .", ""]
    props = ["a %s" % ", ".join(facts["types"])]
    props.append("aff4:stored <%s>" % vol1)
    props.append('aff4:size "%d"^^xsd:long' % facts["size"])
    props.append('aff4:originalFileName "%s"^^xsd:string' % facts["name"])
    for k in ("chunkSize", "chunksInSegment"):
        if k in facts:
            props.append('aff4:%s "%d"^^xsd:int' % (k, facts[k]))
    if "compression" in facts:
        props.append("aff4:compressionMethod <%s>" % facts["compression"])
    if "sha1" in facts:
        props.append('aff4:hash "%s"^^aff4:SHA1' % facts["sha1"])
    lines.append("<%s> %s ." % (stream, " ;\n    ".join(props)))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--bevies-per-part", type=int, required=True)
    ap.add_argument("--chunks-per-bevy", type=int, default=1024)
    ap.add_argument("--chunk-size", type=int, default=32768)
    ap.add_argument("--naming", choices=["caff4", "short"], default="caff4")
    ap.add_argument("--sha1", action="store_true")
    ap.add_argument("--conflicting-sha1", action="store_true", help="the first part records another SHA-1 (a genuine conflict)")
    a = ap.parse_args()
    data = open(a.input, "rb").read()
    cs, cpb = a.chunk_size, a.chunks_per_bevy
    chunks = [data[i:i + cs] for i in range(0, len(data), cs)]
    bevies = [chunks[i:i + cpb] for i in range(0, len(chunks), cpb)]
    vols = ["aff4://%s" % uuid.uuid4() for _ in range(0, len(bevies), a.bevies_per_part)]
    stream = vols[0] + a.input if a.input.startswith("/") else vols[0] + "/" + a.input
    base = a.output[:-5] if a.naming == "short" and a.output.endswith(".aff4") else a.output
    for part, vol in enumerate(vols):
        path = a.output if part == 0 else "%s.A%02d" % (base, part)
        last = part == len(vols) - 1
        facts = {"types": ["aff4:ImageStream"], "size": 0, "name": a.input}
        if last:
            facts = {"types": ["aff4:ImageStream", "aff4:Image"], "size": len(data), "name": a.input,
                     "chunkSize": cs, "chunksInSegment": cpb, "compression": ZLIB}
            if a.sha1:
                facts["sha1"] = hashlib.sha1(data).hexdigest()
        elif part == 0 and a.conflicting_sha1:
            facts["sha1"] = hashlib.sha1(data + b"x").hexdigest()
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
            z.comment = vol.encode()
            z.writestr("container.description", vol)
            z.writestr("version.txt", "major=1\nminor=0\ntool=libaff4 1.0\n")
            first = part * a.bevies_per_part
            for n in range(first, min(first + a.bevies_per_part, len(bevies))):
                payload, index = bytearray(), bytearray()
                for c in bevies[n]:
                    p = zlib.compress(c, 1)
                    if len(p) >= cs:
                        p = c
                    index += len(payload).to_bytes(8, "little") + len(p).to_bytes(4, "little")
                    payload += p
                seg = "%s/%08d" % (stream, n)
                z.writestr(member_name(seg + ".index", vol), bytes(index))
                z.writestr(member_name(seg, vol), bytes(payload))
            z.writestr("information.turtle", turtle(stream, vols[0], facts), zipfile.ZIP_DEFLATED)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
