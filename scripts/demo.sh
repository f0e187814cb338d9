#!/usr/bin/env bash
# The main job, end to end on a real kernel: build pmem as a static binary, boot a stock Debian
# kernel in QEMU (tests/rig), acquire the guest's physical memory from inside it as root,
# take a QEMU-side dump of the same guest, and show the result: the volume's contents, every
# hash verified, the kernel's code and rodata compared byte for byte with the QEMU dump, how
# many pages of the capture hold our own output (none should), and Volatility 3 reading the ELF
# export (banners, and pslist with pmem's own symbol table); it ends with one verdict line, exit 0
# only if every check held. Installs what it uses (Volatility 3 in a venv; the rig installs QEMU).
# Output goes to ${1:-./demo-out} (about 2.5 GB; the last lines say how to remove it).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${PMEM_SHARED:-$(cd .. && pwd)/shared}
OUT=$(realpath -m "${1:-demo-out}")
rm -rf "$OUT"; mkdir -p "$OUT"
# shellcheck source=tools.sh
source scripts/tools.sh
declare -a proven=() failed=()
check() { if [[ $1 == ok ]]; then proven+=("$2"); else failed+=("$2"); fi; }

echo "== installing what the demo uses (once): python3, Volatility 3 in $CACHE/vol3-venv; the rig installs QEMU itself"
apt_need python3=python3
VOLBIN=$(venv_tool vol3 volatility3 vol | tail -1)

echo "== building pmem: the host binary and the static one that runs in the guest (a first build takes several minutes)"
cargo build --release -p pmem
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target x86_64-unknown-linux-gnu -p pmem --no-default-features --features fuse
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-target}")
PMEM=$TARGET/release/pmem
STATIC=$TARGET/x86_64-unknown-linux-gnu/release/pmem

echo "== acquiring a 1 GiB guest running Debian's kernel (pmem runs as root inside it)"
tests/rig/run-in-vm.sh --mem 1G --out "$OUT/vm" --host-dump "$OUT/qemu-dump.elf" -- "$STATIC" acquire --recheck -o /out/mem.aff4
cat "$OUT/vm/stderr.txt"
VOL=$OUT/vm/out/mem.aff4
[[ -f $VOL ]] && check ok "acquired the guest's memory as root inside it" || check no "the acquisition wrote no volume"

echo; echo "== pmem info"
"$PMEM" info "$VOL"
echo; echo "== pmem verify"
# exit 0: complete and intact (8 incomplete, 9 not covered, 1 altered)
if "$PMEM" verify "$VOL" > "$OUT/verify.txt"; then check ok "pmem verify: complete and intact"; else check no "pmem verify exit $?"; fi
tail -2 "$OUT/verify.txt"

echo; echo "== kernel code and rodata: guest acquisition vs QEMU-side dump"
"$PMEM" acquire -q -o "$OUT/qemu-dump.aff4" --source "$OUT/qemu-dump.elf"
same=0 spans=0
while read -r span _ name; do
    s=$((16#${span%-*})); e=$((16#${span#*-})); len=$((e - s + 1))
    a=$("$PMEM" cat --offset $s --length $len "$VOL" | sha256sum | cut -c1-64)
    b=$("$PMEM" cat --offset $s --length $len "$OUT/qemu-dump.aff4" | sha256sum | cut -c1-64)
    spans=$((spans + 1))
    if [[ $a == "$b" ]]; then verdict=IDENTICAL; same=$((same + 1)); else verdict=DIFFERENT; fi
    printf '%-14s %#x+%#x  %s  %s\n' "$name" $s $len "$a" "$verdict"
done < <(grep -E 'Kernel (code|rodata)' "$OUT/vm/iomem.txt" | sed -E 's/^ *([0-9a-f]+-[0-9a-f]+) : Kernel (code|rodata)/\1 : \2/')
((spans > 0 && same == spans)) && check ok "kernel code and rodata identical to QEMU's own dump ($same spans)" || check no "kernel code/rodata: $same of $spans spans identical to QEMU's dump"

echo; echo "== export as an ELF core for analysis tools"
"$PMEM" export -D "$OUT/export" --format elf "$VOL"

echo; echo "== our own output in the capture: RAM pages holding 4 KiB blocks of the volume (bench/footprint.py)"
python3 bench/footprint.py "$VOL" "$OUT/vm/iomem.txt" --dump "$OUT/qemu-dump.elf" --elf "$OUT"/export/*.elf > "$OUT/footprint.json"
ours=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["image"]; print(r["ours"], r["pages"], r["percent"])' "$OUT/footprint.json")
read -r own pages pct <<< "$ours"
echo "$own of $pages RAM pages ($pct%) of the image hold 4 KiB blocks of the volume itself"
((own * 1000 <= pages)) && check ok "our own output in the image: $own of $pages pages" || check no "our own output fills $own of $pages pages of the image"

echo; echo "== Volatility 3 banners.Banners on the export"
"$VOLBIN" -q -f "$OUT"/export/*.elf banners.Banners > "$OUT/banners.txt"
head -5 "$OUT/banners.txt"
echo "== Volatility 3 linux.pslist with the symbol table pmem isf builds from the volume itself"
"$PMEM" isf "$VOL" -o "$OUT/symbols/linux.json.xz"
"$VOLBIN" -q --offline -s "$OUT/symbols" -f "$OUT"/export/*.elf linux.pslist > "$OUT/pslist.txt" || true
head -8 "$OUT/pslist.txt"; echo "…"
if grep -w pmem "$OUT/pslist.txt"; then
    check ok "Volatility 3 lists $(grep -c '^0x' "$OUT/pslist.txt") processes, pmem among them, with pmem's own symbol table"
else
    check no "Volatility 3 linux.pslist does not show the pmem process"
fi

echo
printf '  proven: %s\n' "${proven[@]}"
((${#failed[@]} == 0)) || printf '  FAILED: %s\n' "${failed[@]}"
echo "(the demo's files, $(du -sh "$OUT" | cut -f1), are in $OUT: remove them with rm -rf $OUT)"
if ((${#failed[@]})); then
    echo "DEMO FAILED: ${#failed[@]} of $((${#proven[@]} + ${#failed[@]})) checks"
    exit 1
fi
echo "DEMO PASSED: all ${#proven[@]} checks"
