#!/usr/bin/env bash
# Seeds each fuzz target's corpus from the reference images and runs every target for
# SECONDS (default 60) with libFuzzer. Needs a nightly toolchain; installs cargo-fuzz if missing.
#   fuzz/run.sh [SECONDS] [TARGET...]
# Longer runs: fuzz/run.sh 600 volume zip_directory   (crashes land in fuzz/artifacts/TARGET/)
set -euo pipefail
cd "$(dirname "$0")"
SECS=${1:-60}; shift || true
SHARED=${PMEM_SHARED:-$(cd ../.. && pwd)/shared}
command -v cargo-fuzz >/dev/null || cargo install -q cargo-fuzz

python3 - "$SHARED/aff4-reference-images" <<'PY'
import os, sys, zipfile, glob, struct
ref = sys.argv[1]
def put(t, name, data):
    d = os.path.join("corpus", t); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), "wb").write(data)
vols = sorted(glob.glob(ref + "/**/*.af*4", recursive=True))
for v in vols:
    b = open(v, "rb").read()
    n = os.path.basename(v)
    put("volume", n, b); put("verdict", n, b); put("zip_directory", n, b)
    put("recover", n + ".cut", b[: len(b) * 3 // 4])
    put("zip_directory", n + ".tail", b[-65536:])
    z = zipfile.ZipFile(v)
    for i in z.infolist():
        data = z.read(i.filename)
        if i.filename == "information.turtle":
            put("turtle", n, data)
            if b"KeyBag" in data:
                put("keybag", n, data)
        elif i.filename.endswith("/map"):
            put("map", n, data)
        elif i.filename.endswith("index") and len(data) < 100000:
            put("chunk_decode", n + ".index", data)
        elif i.filename.endswith("/00000000"):
            put("chunk_decode", n + ".chunk", data[:40000])
put("iomem", "rig", b"00000000-00000fff : Reserved\n00001000-0009fbff : System RAM\n00100000-3ffd6fff : System RAM\n  32400000-33201ef1 : Kernel code\n100000000-13fffffff : System RAM (kmem)\n")
hdr = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, 64, 0, 0, 64, 56, 2, 64, 0, 0)
note = struct.pack("<III", 11, 12, 0) + b"VMCOREINFO\0\0" + b"PAGESIZE=4096"[:12]
ph = struct.pack("<IIQQQQQQ", 4, 0, 176, 0, 0, len(note), len(note), 0) + struct.pack("<IIQQQQQQ", 1, 7, 4096, 0, 0x1000, 64, 64, 0)
put("elf", "core", hdr + ph + note + b"\0" * (4096 - 176 - len(note)) + b"A" * 64)
strs = b"\0int\0task_struct\0pid\0comm\0char\0"
types = [1, 1 << 24, 4, (1 << 24) | 32,
         5, (4 << 24) | (1 << 31) | 2, 24, 17, 1, 0, 21, 4, 64,
         26, 1 << 24, 1, (2 << 24) | 8,
         0, 3 << 24, 0, 3, 1, 16]
tb = b"".join(struct.pack("<I", t) for t in types)
put("btf", "small", struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(tb), len(tb), len(strs)) + tb + strs)
put("lime", "one", struct.pack("<IIQQQ", 0x4C694D45, 1, 0x1000, 0x1fff, 0) + b"B" * 4096)
PY

# A small NTFS volume holding \pagefile.sys (made with ntfs-3g's tools, if present).
if command -v mkntfs >/dev/null && [[ ! -e corpus/ntfs/small ]]; then
    mkdir -p corpus/ntfs
    t=$(mktemp -d)
    truncate -s 1100K "$t/v" && mkntfs -F -f -q -c 512 "$t/v" >/dev/null 2>&1
    head -c 5000 /dev/urandom >"$t/p"
    ntfscp "$t/v" "$t/p" pagefile.sys >/dev/null 2>&1
    cp "$t/v" corpus/ntfs/small
    rm -rf "$t"
fi

# Volumes pmem was killed while writing (a recovery journal, small bevies), cut at a few points.
PMEM_BIN=${PMEM_BIN:-../target/release/pmem}
if [[ -x $PMEM_BIN && ! -e corpus/recover/pmem-cut-1 ]]; then
    mkdir -p corpus/recover
    t=$(mktemp -d)
    python3 -c "import sys, random; r = random.Random(5); sys.stdout.buffer.write(bytes(r.getrandbits(8) for _ in range(300000)) + bytes(200000))" >"$t/in"
    "$PMEM_BIN" image -q --chunks-per-bevy 2 -o "$t/v.aff4" "$t/in"
    len=$(stat -c %s "$t/v.aff4")
    for k in 1 2 3; do head -c $((len * k / 4)) "$t/v.aff4" >"corpus/recover/pmem-cut-$k"; done
    rm -rf "$t"
fi

TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || mapfile -t TARGETS < <(cargo +nightly fuzz list)
for t in "${TARGETS[@]}"; do
    echo "== fuzz $t for ${SECS}s"
    cargo +nightly fuzz run -s "${PMEM_FUZZ_SANITIZER:-address}" "$t" "corpus/$t" -- -max_total_time="$SECS" -max_len=4200000 -rss_limit_mb=3072 -timeout=25 -print_final_stats=1 2>&1 |
        grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+[[:space:]]+(DONE|INITED)|==[0-9]+==ERROR|SUMMARY|.*deadly signal)" || true
    if [[ -n $(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) 2>/dev/null) ]]; then
        echo "fuzz $t: FOUND A FAILURE in fuzz/artifacts/$t"; exit 1
    fi
done
