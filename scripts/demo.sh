#!/usr/bin/env bash
# The main job, end to end on a real kernel: build pmem as a static binary, boot a stock Debian
# kernel in QEMU (../shared/vm), acquire the guest's physical memory from inside it as root,
# take a QEMU-side dump of the same guest, and show the result: the volume's contents, every
# hash verified, the kernel's code and rodata compared byte for byte with the QEMU dump, how
# many pages of the capture hold our own output (none should), and
# Volatility 3 reading the ELF export (banners, and pslist with pmem's own symbol table). Output goes to ${1:-./demo-out}.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${PMEM_SHARED:-$(cd .. && pwd)/shared}
OUT=$(realpath -m "${1:-demo-out}")
rm -rf "$OUT"; mkdir -p "$OUT"

echo "== building pmem (host and static)"
cargo build --release -q -p pmem
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release -q --target x86_64-unknown-linux-gnu -p pmem --no-default-features --features fuse
PMEM=$PWD/target/release/pmem
STATIC=$PWD/target/x86_64-unknown-linux-gnu/release/pmem

echo "== acquiring a 1 GiB guest running Debian's kernel (pmem runs as root inside it)"
"$SHARED/vm/run-in-vm.sh" --mem 1G --out "$OUT/vm" --host-dump "$OUT/qemu-dump.elf" -- "$STATIC" acquire --recheck -o /out/mem.aff4
cat "$OUT/vm/stderr.txt"
VOL=$OUT/vm/out/mem.aff4

echo; echo "== pmem info"
"$PMEM" info "$VOL"
echo; echo "== pmem verify"
"$PMEM" verify "$VOL" | tail -2   # exit 0: complete and intact (8 incomplete, 9 not covered, 1 altered)

echo; echo "== kernel code and rodata: guest acquisition vs QEMU-side dump"
"$PMEM" acquire -q -o "$OUT/qemu-dump.aff4" --source "$OUT/qemu-dump.elf"
while read -r span _ name; do
    s=$((16#${span%-*})); e=$((16#${span#*-})); len=$((e - s + 1))
    a=$("$PMEM" cat --offset $s --length $len "$VOL" | sha256sum | cut -c1-64)
    b=$("$PMEM" cat --offset $s --length $len "$OUT/qemu-dump.aff4" | sha256sum | cut -c1-64)
    [[ $a == "$b" ]] && verdict=IDENTICAL || verdict=DIFFERENT
    printf '%-14s %#x+%#x  %s  %s\n' "$name" $s $len "$a" "$verdict"
done < <(grep -E 'Kernel (code|rodata)' "$OUT/vm/iomem.txt" | sed -E 's/^ *([0-9a-f]+-[0-9a-f]+) : Kernel (code|rodata)/\1 : \2/')

echo; echo "== export as an ELF core for analysis tools"
"$PMEM" export -D "$OUT/export" --format elf "$VOL"

echo; echo "== our own output in the capture: RAM pages holding 4 KiB blocks of the volume (bench/footprint.py)"
python3 bench/footprint.py --text "$VOL" "$OUT/vm/iomem.txt" --dump "$OUT/qemu-dump.elf" --elf "$OUT"/export/*.elf
VOLENV=${XDG_CACHE_HOME:-$HOME/.cache}/vol3-venv
if [[ -x $VOLENV/bin/vol ]]; then
    echo "== Volatility 3 banners.Banners on the export"
    "$VOLENV/bin/vol" -q -f "$OUT"/export/*.elf banners.Banners > "$OUT/banners.txt"
    head -5 "$OUT/banners.txt"
    echo "== Volatility 3 linux.pslist with the symbol table pmem isf builds from the volume itself"
    "$PMEM" isf "$VOL" -o "$OUT/symbols/linux.json.xz"
    "$VOLENV/bin/vol" -q --offline -s "$OUT/symbols" -f "$OUT"/export/*.elf linux.pslist > "$OUT/pslist.txt"
    head -8 "$OUT/pslist.txt"; echo "…"; grep -w pmem "$OUT/pslist.txt" || true
else
    echo "(Volatility 3 not installed: scripts/test.sh installs it into $VOLENV)"
fi
