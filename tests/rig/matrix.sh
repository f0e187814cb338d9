#!/usr/bin/env bash
# The analysis matrix, run by hand (it downloads each kernel's debug package, 300-900 MB, and
# boots each kernel several times): for every flavour of tests/rig/kernels.txt,
#   types    pmem's symbol table built from the kernel's own vmlinux, BTF and System.map
#            (crates/memacq/examples/isf_from_vmlinux.rs) against dwarf2json's table of the
#            same kernel's DWARF (tests/rig/isf_compare.py): named types, sizes, fields and
#            the types of every symbol the installed Volatility plugins use;
#   acquire  the rig test that compares kernel code, rodata and the partial RAM page with
#            QEMU's dump of the same guest and runs pslist with our table;
#   plugins  the rig test that runs the Volatility plugins with only our table and compares
#            them with the guest's own view;
#   crash    crash (Debian 13's, in a debootstrap root under the cache) opens our ELF export
#            with the debug vmlinux: ps, log and mod, compared with the guest's view;
#   drgn     drgn (PyPI) opens the export with the debug vmlinux and lists tasks and modules.
# Writes the table to tests/rig/MATRIX.md (and the logs and each flavour's row under $WORK).
#   tests/rig/matrix.sh [FLAVOUR...]        (default: every flavour of kernels.txt)
# Needs: what scripts/test.sh installs (PMEM_VOL...), golang-go and golang-github-spf13-pflag-dev
# (to build dwarf2json 0.9.0 from DWARF2JSON_REPO, a URL or a local clone, default GitHub's; or
# DWARF2JSON=binary), debootstrap.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}
WORK=${WORK:-/tmp/pmem-matrix}
RIG=$ROOT/tests/rig/run-in-vm.sh
mkdir -p "$WORK"
log() { echo "matrix: $*" >&2; }

# shellcheck source=../../scripts/tools.sh
. scripts/tools.sh
apt_need go=golang-go debootstrap=debootstrap objcopy=binutils
[[ -d /usr/share/gocode/src/github.com/spf13/pflag ]] || apt_need nonexistent-command-pflag=golang-github-spf13-pflag-dev
PMEM_VOL=${PMEM_VOL:-$CACHE/vol3-venv/bin/vol}
[[ -x $PMEM_VOL ]] || { log "PMEM_VOL (Volatility 3) not found; run scripts/test.sh once"; exit 2; }
VOL_PKG=$("$(dirname "$PMEM_VOL")/python" -c 'import volatility3, os; print(os.path.dirname(volatility3.__file__))')

# The static pmem for the guest and the host build for the rest.
RUSTFLAGS='-C target-feature=+crt-static' cargo build -q --profile ci --target x86_64-unknown-linux-gnu -p pmem --no-default-features --features fuse
export PMEM_STATIC_BIN=$ROOT/target/x86_64-unknown-linux-gnu/ci/pmem
cargo build -q --release -p pmem
cargo build -q --release -p memacq --example isf_from_vmlinux
PMEM=$ROOT/target/release/pmem
ISF_FROM_VMLINUX=$ROOT/target/release/examples/isf_from_vmlinux

# dwarf2json 0.9.0, built from its source with Debian's Go and pflag (no module download).
D2J=${DWARF2JSON:-$CACHE/pmem-dwarf2json/dwarf2json}
if [[ ! -x $D2J ]]; then
    src=$CACHE/pmem-dwarf2json/src
    [[ -d $src ]] || git clone -q --branch v0.9.0 "${DWARF2JSON_REPO:-https://github.com/volatilityfoundation/dwarf2json}" "$src"
    mkdir -p "$src/vendor/github.com/spf13"
    cp -r /usr/share/gocode/src/github.com/spf13/pflag "$src/vendor/github.com/spf13/"
    printf '# github.com/spf13/pflag v1.0.5\n## explicit\ngithub.com/spf13/pflag\n' > "$src/vendor/modules.txt"
    (cd "$src" && GOFLAGS=-mod=vendor GOPROXY=off go build -o "$D2J" .)
fi

# drgn in a venv; crash from Debian 13 in a debootstrap root (Debian 12's crash 8.0.2 walks no
# task list of 6.1.192, even on QEMU's own dump).
DRGN=$CACHE/drgn-venv/bin/drgn
[[ -x $DRGN ]] || { python3 -m venv "$CACHE/drgn-venv" && "$CACHE/drgn-venv/bin/pip" -q install drgn; }
CRASH_ROOT=$CACHE/pmem-trixie-root/root
[[ -x $CRASH_ROOT/usr/bin/crash ]] || debootstrap --variant=minbase --include=crash trixie "$CRASH_ROOT" http://deb.debian.org/debian > "$WORK/debootstrap.log"

# The debug package (vmlinux with DWARF, System.map) of a kernel package, from its suite.
debug_files() { # FLAVOUR PACKAGE VERSION -> prints DIR holding vmlinux and System.map
    local f=$1 pkg=$2 version=$3 dir=$CACHE/pmem-dbg/$2-$3
    if [[ ! -f $dir/vmlinux ]]; then
        rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
        (cd "$dir.tmp" && "$RIG" --flavour "$f" --download "$pkg-dbg=$version")
        dpkg-deb --fsys-tarfile "$dir.tmp"/*.deb | tar x -C "$dir.tmp" --wildcards './usr/lib/debug/boot/*'
        mkdir -p "$dir"
        mv "$dir.tmp"/usr/lib/debug/boot/vmlinux-* "$dir/vmlinux"
        mv "$dir.tmp"/usr/lib/debug/boot/System.map-* "$dir/System.map"
        rm -rf "$dir.tmp"
    fi
    echo "$dir"
}

result() { if "$@" > "$w/$name.log" 2>&1; then echo pass; else echo "**FAIL** ($name.log)"; fi; }

# A section of an ELF64 little-endian file, of any architecture (the host's objcopy reads x86 only).
elf_section() { # ELF NAME OUT
    python3 - "$@" <<'EOP'
import struct, sys
f = open(sys.argv[1], 'rb')
h = f.read(64)
shoff, = struct.unpack_from('<Q', h, 0x28)
shentsize, shnum, shstrndx = struct.unpack_from('<HHH', h, 0x3a)
f.seek(shoff)
sh = [struct.unpack('<IIQQQQIIQQ', f.read(shentsize)) for _ in range(shnum)]
f.seek(sh[shstrndx][4])
names = f.read(sh[shstrndx][5])
for s in sh:
    if names[s[0]:names.index(b'\0', s[0])].decode() == sys.argv[2]:
        f.seek(s[4])
        open(sys.argv[3], 'wb').write(f.read(s[5]))
        break
else:
    sys.exit(f"no section {sys.argv[2]} in {sys.argv[1]}")
EOP
}

# crash for another architecture: Debian 13's crash of that architecture in its own debootstrap
# root, run through qemu-user (binfmt_misc, registered here if the host has not).
crash_root() { # ARCH -> prints the root
    local arch=$1 root=$CRASH_ROOT q=qemu-aarch64
    if [[ $arch != amd64 ]]; then
        root=$CACHE/pmem-trixie-$arch-root/root
        apt_need "$q-static=qemu-user-static"
        [[ -e /proc/sys/fs/binfmt_misc/register ]] || mount binfmt_misc -t binfmt_misc /proc/sys/fs/binfmt_misc
        [[ -e /proc/sys/fs/binfmt_misc/$q ]] || cat "/usr/lib/binfmt.d/$q.conf" > /proc/sys/fs/binfmt_misc/register
        [[ -x $root/usr/bin/crash ]] || debootstrap --arch="$arch" --variant=minbase --include=crash trixie "$root" http://deb.debian.org/debian > "$WORK/debootstrap-$arch.log"
    fi
    echo "$root"
}

# crash and drgn on our ELF export of a guest that recorded its own view (truth.sh).
analyse() { # FLAVOUR ARCH PMEM_FOR_THE_GUEST DEBUG_DIR FUSE_KO -> sets crash= and drgn=
    local f=$1 arch=$2 bin=$3 dbg=$4 fuse=$5 root elf guest_tasks crash_tasks crash_log crash_mods guest_mods
    local opts=(--flavour "$f" --mem 1G --timeout 900 --out "$w/run" --pre "$(cat tests/rig/truth.sh)")
    [[ -n $fuse ]] && opts+=(--add "$fuse")
    "$RIG" "${opts[@]}" -- "$bin" acquire -q -o /out/mem.aff4 > "$w/rig.log" 2>&1
    "$PMEM" export -D "$w/ex" --format elf "$w/run/out/mem.aff4" > "$w/export.log" 2>&1
    elf=$(ls "$w"/ex/*.elf)
    root=$(crash_root "$arch")
    mkdir -p "$root/work"
    cp "$elf" "$root/work/mem.elf"
    cp "$dbg/vmlinux" "$root/work/vmlinux"
    printf 'ps\nlog\nmod\nquit\n' > "$root/work/cmds"
    timeout 1200 chroot "$root" crash -s /work/vmlinux /work/mem.elf -i /work/cmds < /dev/null > "$w/crash.out" 2>&1 || true
    rm -f "$root/work/mem.elf" "$root/work/vmlinux"
    guest_tasks=$(grep -c . "$w/run/out/truth/ps.txt")
    crash_tasks=$(grep -cE '^[ >] +[0-9]+ +[0-9]+ +[0-9]+ +[0-9a-f]{16} ' "$w/crash.out" || true)
    crash_log=$(grep -c 'pmem-rig-marker' "$w/crash.out" || true)
    crash_mods=$(awk '/MODULE +NAME/ {m=1; next} m && NF >= 4 {print $2}' "$w/crash.out" | sort | tr '\n' ' ')
    guest_mods=$(awk '{print $1}' "$w/run/out/truth/modules.txt" | sort | tr '\n' ' ')
    crash="ps $crash_tasks tasks (guest listed $guest_tasks), log $( ((crash_log)) && echo 'has the marker' || echo '**no marker**'), mod [${crash_mods% }] (guest [${guest_mods% }])"
    cat > "$w/drgn.py" << 'EOF'
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.module import for_each_module
print("tasks", sum(1 for _ in for_each_task(prog)))
print("modules", " ".join(sorted(m.name.string_().decode() for m in for_each_module(prog))))
EOF
    timeout 600 "$DRGN" -c "$elf" -s "$dbg/vmlinux" --no-default-symbols "$w/drgn.py" > "$w/drgn.out" 2>&1 || true
    drgn="$(grep '^tasks' "$w/drgn.out" || echo '**failed**') ($(grep '^modules' "$w/drgn.out" || true))"
    rm -rf "$w/ex" "$w/run/out/mem.aff4"
}

mapfile -t FLAVOURS < <(if (($#)); then printf '%s\n' "$@"; else awk '!/^#/ && NF {print $1}' tests/rig/kernels.txt; fi)
for f in "${FLAVOURS[@]}"; do
    read -r pkg version kdir < <("$RIG" --flavour "$f" --print-kernel)
    arch=$(awk -v f="$f" '$1 == f {print ($6 == "" ? "amd64" : $6)}' tests/rig/kernels.txt)
    w=$WORK/$f; rm -rf "$w"; mkdir -p "$w"
    log "$f: $pkg $version"
    dbg=$(debug_files "$f" "$pkg" "$version")
    fuse=$(RIG_FLAVOUR=$f scripts/rig-module.sh fuse 2> /dev/null || true)
    # types: ours from the vmlinux's BTF against dwarf2json's from its DWARF.
    elf_section "$dbg/vmlinux" .BTF "$w/btf"
    "$ISF_FROM_VMLINUX" "$dbg/vmlinux" "$w/btf" "$dbg/System.map" "$w/ours.json" 2> "$w/ours.log"
    [[ -f $dbg/dwarf.json.xz ]] || "$D2J" linux --elf "$dbg/vmlinux" --system-map "$dbg/System.map" | xz -1 -T2 > "$dbg/dwarf.json.xz"
    python3 tests/rig/globals.py uses "$VOL_PKG" "$dbg/System.map" "$w/ours.json" > "$w/uses.txt"
    python3 tests/rig/isf_compare.py "$w/ours.json" "$dbg/dwarf.json.xz" --symbols "$w/uses.txt" > "$w/types.txt" || true
    types=$(python3 tests/rig/isf_compare.py "$w/ours.json" "$dbg/dwarf.json.xz" --symbols "$w/uses.txt" --summary || true)

    if [[ $arch == arm64 ]]; then
        # The aarch64 build acquires the arm64 guest, whose /boot has the real System.map (kallsyms
        # lists no data symbols there), and the test walks the task list with pmem's table against
        # the guest's own list: Volatility 3 has no AArch64 layer to run the plugins with.
        cargo build -q --profile ci --target aarch64-unknown-linux-musl -p pmem --no-default-features --features fuse
        bin=$ROOT/target/aarch64-unknown-linux-musl/ci/pmem
        name=acquire acquire=$(result env PMEM_RIG_FLAVOUR="$f" PMEM_AARCH64_BIN="$bin" \
            cargo test -q -p pmem --test vm arm64_kernel_acquisition_matches_qemu_dump -- --nocapture)
        walk=$(grep -o 'arm64 task list read with pmem.s table: .*' "$w/acquire.log" | sed 's/^arm64 task list read with pmem.s table: //' || true)
        analyse "$f" "$arch" "$bin" "$dbg" "$fuse"
        echo "| $f | $pkg $version | $types | $acquire | - (Volatility 3 2.28 has no AArch64 layer); task list walked with pmem's table: ${walk:-none} | $crash | $drgn |" > "$w/row.md"
        log "$f done"
        continue
    fi

    # acquire and plugins: the rig tests, on this kernel.
    test_env=(env -u PMEM_RIG_FUSE_KO PMEM_RIG_FLAVOUR="$f" PMEM_VOL="$PMEM_VOL" PMEM_SHARED="${PMEM_SHARED:-$ROOT/../shared}")
    [[ -n $fuse ]] && test_env+=(PMEM_RIG_FUSE_KO="$fuse")
    name=acquire acquire=$(result "${test_env[@]}" cargo test -q -p pmem --test vm acquire_real_kernel -- --nocapture)
    name=plugins plugins=$(result "${test_env[@]}" cargo test -q -p pmem --test vm volatility_plugins_agree_with_the_guest -- --nocapture)
    nplugins=$(grep -c '^linux\..*: [0-9]* rows, the same on the export and the mount$' "$w/plugins.log" || true)
    analyse "$f" "$arch" "$PMEM_STATIC_BIN" "$dbg" "$fuse"
    echo "| $f | $pkg $version | $types | $acquire | $plugins ($nplugins plugins, each on the export and on pmem mount) | $crash | $drgn |" > "$w/row.md"
    log "$f done"
done

{
    echo "# Analysis matrix (tests/rig/matrix.sh)"
    echo
    echo "Run $(date -u +%Y-%m-%d) at commit $(git rev-parse --short HEAD), Volatility $("$PMEM_VOL" -h 2>/dev/null | head -1 | awk '{print $NF}'),"
    echo "crash $(chroot "$CRASH_ROOT" dpkg-query -W -f '${Version}' crash) (arm64: the same version under qemu-user), drgn $("$DRGN" --version | awk 'NR==1 {print $2}')."
    echo
    echo "| flavour | kernel | types against dwarf2json | acquire (QEMU dump) | plugins against the guest | crash | drgn |"
    echo "|---|---|---|---|---|---|---|"
    # Every flavour's latest row (a run for some flavours keeps the others' rows).
    for f in $(awk '!/^#/ && NF {print $1}' tests/rig/kernels.txt); do cat "$WORK/$f/row.md" 2> /dev/null || true; done
} > tests/rig/MATRIX.md
cat tests/rig/MATRIX.md
