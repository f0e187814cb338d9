#!/usr/bin/env python3
"""How much of a memory capture is the capturing tool's own output.

    footprint.py OUTPUT IOMEM [--dump GUEST.elf] [--raw IMAGE.raw | --lime IMAGE.lime | --elf IMAGE.elf]

OUTPUT is the file the tool wrote (an AFF4 volume, AVML's LiME); its 4 KiB blocks at 4 KiB
offsets are what the page cache would hold. For every page of System RAM (IOMEM: the guest's
/proc/iomem) the script counts the pages of the captured image (--raw: physical address = file
offset; --lime: LiME ranges; --elf: an ELF core's PT_LOADs) and of QEMU's dump taken after the capture (--dump: an ELF core,
PT_LOAD physical addresses) that equal one of those blocks. Pages of one repeated byte (zeros,
fill) are left out on both sides: they match without being our output. Prints JSON, or lines
for a person with --text.
"""
import argparse, hashlib, json, struct

PAGE = 4096


def key(b):
    return hashlib.blake2b(b, digest_size=16).digest()


def uniform(b):
    return b.count(b[:1]) == len(b)


def output_blocks(path):
    keys = set()
    with open(path, "rb") as f:
        while True:
            b = f.read(PAGE)
            if len(b) < PAGE:
                break
            if not uniform(b):
                keys.add(key(b))
    return keys


def ram_ranges(iomem):
    out = []
    for line in open(iomem):
        if line.startswith(" ") or "System RAM" not in line:
            continue
        a, b = line.split(":")[0].strip().split("-")
        out.append((int(a, 16), int(b, 16) + 1))
    return out


class Raw:
    def __init__(self, path):
        self.f = open(path, "rb")

    def read(self, addr):
        self.f.seek(addr)
        return self.f.read(PAGE)


class Elf:
    """Physical reads from an ELF core (QEMU dump-guest-memory, paging=false)."""

    def __init__(self, path):
        self.f = open(path, "rb")
        h = self.f.read(64)
        phoff, = struct.unpack_from("<Q", h, 32)
        phentsize, phnum = struct.unpack_from("<HH", h, 54)
        self.loads = []
        for i in range(phnum):
            self.f.seek(phoff + i * phentsize)
            t, _, off, _, paddr, filesz = struct.unpack("<IIQQQQ", self.f.read(40))
            if t == 1:
                self.loads.append((paddr, paddr + filesz, off))

    def read(self, addr):
        for a, b, off in self.loads:
            if a <= addr < b:
                self.f.seek(off + addr - a)
                return self.f.read(PAGE)
        return b""


class Lime(Elf):
    def __init__(self, path):
        self.f = open(path, "rb")
        self.loads = []
        pos = 0
        while True:
            self.f.seek(pos)
            h = self.f.read(32)
            if len(h) < 32:
                break
            magic, _, start, end = struct.unpack_from("<IIQQ", h)
            if magic != 0x4C694D45:
                break
            self.loads.append((start, end + 1, pos + 32))
            pos += 32 + end + 1 - start


def count(src, ranges, keys):
    hits = total = 0
    for a, b in ranges:
        for addr in range(a - a % PAGE, b, PAGE):
            p = src.read(addr)
            total += 1
            if len(p) == PAGE and not uniform(p) and key(p) in keys:
                hits += 1
    return {"pages": total, "ours": hits, "percent": round(100.0 * hits / max(total, 1), 3)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("output")
    ap.add_argument("iomem")
    ap.add_argument("--dump")
    ap.add_argument("--text", action="store_true")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--raw")
    g.add_argument("--lime")
    g.add_argument("--elf")
    a = ap.parse_args()
    keys = output_blocks(a.output)
    ranges = ram_ranges(a.iomem)
    res = {"output_blocks": len(keys)}
    if a.raw or a.lime or a.elf:
        src = Raw(a.raw) if a.raw else Lime(a.lime) if a.lime else Elf(a.elf)
        res["image"] = count(src, ranges, keys)
    if a.dump:
        res["dump"] = count(Elf(a.dump), ranges, keys)
    if not a.text:
        print(json.dumps(res))
        return
    for k, what in (("image", "of the image"), ("dump", "of the guest's memory after the capture (QEMU dump)")):
        if k in res:
            r = res[k]
            print(f"{r['ours']:>7} of {r['pages']} RAM pages ({r['percent']}%) {what} hold 4 KiB blocks of {a.output}")


if __name__ == "__main__":
    main()
