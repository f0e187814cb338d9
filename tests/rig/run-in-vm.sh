#!/usr/bin/env bash
# run-in-vm.sh - run one static Linux binary as root inside a throwaway QEMU
# guest that boots a stock Debian kernel, and bring its results back.
#
# Built for testing live physical-memory acquisition tools (/proc/kcore,
# /dev/mem, /dev/crash) against a real kernel on machines that have no
# /proc/kcore of their own.
#
# Usage:
#   run-in-vm.sh [options] --out OUTDIR -- /path/to/static-binary [args...]
#
# Options:
#   --out DIR          host directory for the results (created; required)
#   --mem SIZE         guest RAM, QEMU syntax (default 1G)
#   --cpus N           guest vCPUs (default 2)
#   --timeout SECS     hard limit for the whole guest run (default 300)
#   --accel auto|kvm|tcg
#                      auto (default) uses KVM only when /dev/kvm is usable
#                      for a stock kernel (not PVM-backed), else TCG
#   --cpu MODEL        QEMU -cpu (default: host under KVM; max,la57=off under
#                      TCG, i.e. 4-level paging; "max" gives 5-level paging)
#   --flavour NAME     kernel of tests/rig/kernels.txt (default cloud, Debian 12's
#                      cloud kernel: NVMe and ext4 are built in; amd64, the
#                      generic one, needs modules, which are handled; trixie-cloud,
#                      Debian 13's, is fetched through a private apt configuration
#                      in the cache, leaving the system's apt alone)
#   --kernel FILE      use this bzImage instead (needs NVMe+ext4 built in)
#   --print-kernel     fetch (or find in the cache) the kernel the options
#                      select, print "PACKAGE VERSION DIR" and exit
#   --download PKG=VERSION
#                      download that package of the flavour's suite and
#                      architecture into the current directory and exit
#                      (e.g. the kernel's -dbg package, for tests/rig/matrix.sh)
#   --append ARGS      extra kernel command line (e.g. "lockdown=integrity")
#   --disk-size SIZE   size of the sparse ext4 disk that backs /out
#                      (default: 2 x RAM + 1G)
#   --add SRC[:DST]    copy an extra host file into the guest (default DST
#                      /rig/bin/<name>); repeatable
#   --pre 'SHELL'      busybox-sh snippet run in the guest before the command
#   --boot             install the kernel's config and its real System.map in
#                      the guest's /boot (config-RELEASE, System.map-RELEASE), as
#                      distributions that ship the map there do (Debian's /boot
#                      has a stub; the map is taken from its -dbg package)
#   --qemu-arg ARG     extra argument for qemu-system-x86_64; repeatable
#   --host-dump FILE   after the command, keep the guest alive and write an ELF
#                      dump of its physical memory from the QEMU side (QMP
#                      dump-guest-memory, paging=false) to FILE
#   --verbose          stream the serial console to stderr while running
#   -h, --help         this text
#
# In the guest: PID 1 is a busybox script; /proc, /sys and devtmpfs are
# mounted; the binary is at /rig/bin/<name> and runs as root with cwd /out.
# /out is an ext4 file system on an emulated NVMe disk, so the guest may write
# files larger than its RAM there.
#
# Results in OUTDIR:
#   out/            contents of the guest's /out
#   stdout.txt      the command's stdout; stderr.txt its stderr (stderr is
#                   also on the serial console)
#   exit_code       the command's exit status
#   iomem.txt       guest /proc/iomem (read as root); guest-info.txt: uname,
#                   cmdline, /proc/kcore & /dev nodes, meminfo
#   dmesg.txt       guest kernel log after the command
#   serial.log      the whole serial console (kernel + init)
#   timing.txt      host wall time of the VM and guest-side command time
#
# Exit status: that of the guest command; 124 if the VM timed out; 125 for a
# rig failure (no result came back).
#
# Kernels: tests/rig/kernels.txt pins the suite, package and version booted for
# each flavour. Each is fetched once into the cache (kernel-PACKAGE-VERSION). When
# the archive no longer has the pinned build (Debian replaces its kernels), the
# newest build of that flavour is fetched instead, with a warning, so a newer
# build never breaks a run; the version booted is logged and written to
# OUTDIR/kernel.txt.
#
# Environment:
#   RIG_CACHE   cache directory for kernel/busybox
#               (default ${XDG_CACHE_HOME:-$HOME/.cache}/pmem-vm-rig)
#   RIG_REFRESH=1  re-download kernel and busybox into the cache
set -euo pipefail

PROG=${0##*/}
die() { echo "$PROG: $*" >&2; exit 125; }
log() { echo "$PROG: $*" >&2; }

# ---------------------------------------------------------------- arguments
MEM=1G CPUS=2 OUT='' TIMEOUT=300 ACCEL=auto CPU_MODEL='' FLAVOUR=cloud KERNEL=''
APPEND='' DISK_SIZE='' HOST_DUMP='' VERBOSE=0 BOOT=0 PRE='' PRINT_KERNEL=0 DOWNLOAD=
PINS=$(dirname "$(readlink -f -- "$0")")/kernels.txt
ADDS=() QEMU_EXTRA=()
CACHE=${RIG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pmem-vm-rig}
CACHE_VERSION=3 # bump when the layout of a cached kernel directory changes

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

while (($#)); do
    case $1 in # options that take a value need one
        --verbose | -v | -h | --help | --print-kernel | --boot | --) ;;
        --*) (($# >= 2)) || die "$1 needs a value" ;;
    esac
    case $1 in
        --out) OUT=$2; shift 2 ;;
        --mem) MEM=$2; shift 2 ;;
        --cpus) CPUS=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --accel) ACCEL=$2; shift 2 ;;
        --cpu) CPU_MODEL=$2; shift 2 ;;
        --flavour|--flavor) FLAVOUR=$2; shift 2 ;;
        --kernel) KERNEL=$2; shift 2 ;;
        --append) APPEND=$2; shift 2 ;;
        --disk-size) DISK_SIZE=$2; shift 2 ;;
        --add) ADDS+=("$2"); shift 2 ;;
        --qemu-arg) QEMU_EXTRA+=("$2"); shift 2 ;;
        --pre) PRE=$2; shift 2 ;;
        --host-dump) HOST_DUMP=$2; shift 2 ;;
        --verbose|-v) VERBOSE=1; shift ;;
        --boot) BOOT=1; shift ;;
        --print-kernel) PRINT_KERNEL=1; shift ;;
        --download) DOWNLOAD=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done
if ((!PRINT_KERNEL)) && [[ -z $DOWNLOAD ]]; then
    (($# >= 1)) || { usage >&2; die "missing '-- BINARY [ARGS...]'"; }
    [[ -n $OUT ]] || die "--out DIR is required"
    BIN=$(readlink -f -- "$1") || die "no such binary: $1"
    [[ -f $BIN && -x $BIN ]] || die "not an executable file: $1"
    shift
fi
ARGS=("$@")
PIN=$(awk -v f="$FLAVOUR" '$1 == f {print $2, $3, $4, $5, $6; exit}' "$PINS" 2>/dev/null || true)
[[ -n $PIN ]] || die "--flavour $FLAVOUR is not in $PINS"
read -r SUITE META PIN_PKG PIN_VERSION GUEST_ARCH <<< "$PIN"
GUEST_ARCH=${GUEST_ARCH:-amd64} # amd64 or arm64 (qemu-system-aarch64 -M virt, under TCG)

# Convert a QEMU-style size (512M, 4G, plain number = MiB) to MiB.
to_mib() {
    local v=${1^^}
    case $v in
        *T) echo $((${v%T} * 1024 * 1024)) ;;
        *G) echo $((${v%G} * 1024)) ;;
        *M) echo $((${v%M})) ;;
        *K) echo $((${v%K} / 1024)) ;;
        *) echo $((v)) ;;
    esac
}
MEM_MIB=$(to_mib "$MEM")
DISK_MIB=$(to_mib "${DISK_SIZE:-$((MEM_MIB * 2 + 1024))M}")

# ---------------------------------------------------------- host packages
SUDO=
[[ $(id -u) -eq 0 ]] || SUDO=sudo
APT_UPDATED=0
apt_update_once() {
    ((APT_UPDATED)) && return 0
    log "apt-get update"
    $SUDO apt-get update -qq >&2 || die "apt-get update failed"
    APT_UPDATED=1
}

# Install the Debian packages that provide any missing host tool.
ensure_host_tools() {
    local -A pkg_of=([qemu-system-x86_64]=qemu-system-x86 [qemu-system-aarch64]=qemu-system-arm [cpio]=cpio
        [gzip]=gzip [mkfs.ext4]=e2fsprogs [debugfs]=e2fsprogs
        [dpkg-deb]=dpkg [timeout]=coreutils)
    local missing=() tool
    for tool in "${!pkg_of[@]}"; do
        PATH=$PATH:/usr/sbin:/sbin command -v "$tool" >/dev/null 2>&1 || missing+=("${pkg_of[$tool]}")
    done
    if ((${#missing[@]})); then
        mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
        apt_update_once
        log "installing: ${missing[*]}"
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" >&2 || die "apt-get install failed"
    fi
    export PATH=$PATH:/usr/sbin:/sbin
}

# Download a .deb into $2 (a scratch dir) and unpack it to $2/x.
fetch_deb() {
    local pkg=$1 dir=$2
    mkdir -p "$dir/x"
    apt_update_once
    # (apt's "_apt cannot access" sandbox warning is harmless here)
    (cd "$dir" && apt-get download -q "$pkg" >&2) || die "apt-get download $pkg failed"
    dpkg-deb -x "$dir"/*.deb "$dir/x"
}

# apt for the kernel's suite: the system's own when it is the system's release,
# else a private configuration under the cache (its own lists; nothing installed).
KAPT=() KAPT_UPDATED=0
kernel_apt_setup() {
    [[ $SUITE == "$(. /etc/os-release && echo "${VERSION_CODENAME:-}")" && $GUEST_ARCH == "$(dpkg --print-architecture)" ]] && return 0
    local d=$CACHE/apt-$SUITE-$GUEST_ARCH key=/usr/share/keyrings/debian-archive-keyring.gpg
    mkdir -p "$d/lists/partial" "$d/archives/partial"
    {
        echo "deb [signed-by=$key] http://deb.debian.org/debian $SUITE main"
        echo "deb [signed-by=$key] http://deb.debian.org/debian-security $SUITE-security main"
    } > "$d/sources.list"
    KAPT=(-o "Dir::Etc::SourceList=$d/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d" -o Dir::State::status=/dev/null
        -o "APT::Architecture=$GUEST_ARCH" -o "APT::Architectures=$GUEST_ARCH")
}
kernel_apt_update() {
    if ((${#KAPT[@]} == 0)); then apt_update_once; return; fi
    ((KAPT_UPDATED)) && return 0
    log "apt-get update ($SUITE, private)"
    apt-get "${KAPT[@]}" update -qq >&2 || die "apt-get update of $SUITE failed"
    KAPT_UPDATED=1
}

# busybox-static -> $BUSYBOX ($CACHE/busybox, or busybox-ARCH for another guest architecture)
BUSYBOX=$CACHE/busybox
[[ $GUEST_ARCH == "$(dpkg --print-architecture)" ]] || BUSYBOX=$CACHE/busybox-$GUEST_ARCH
ensure_busybox() {
    [[ -x $BUSYBOX && ${RIG_REFRESH:-0} != 1 ]] && return 0
    local tmp; tmp=$(mktemp -d "$CACHE/.bb.XXXXXX")
    log "fetching busybox-static ($GUEST_ARCH)"
    if [[ $BUSYBOX == "$CACHE/busybox" ]]; then
        fetch_deb busybox-static "$tmp"
    else
        kernel_apt_setup
        kernel_apt_update
        mkdir -p "$tmp/x"
        (cd "$tmp" && apt-get "${KAPT[@]}" download -q busybox-static >&2) || die "apt-get download busybox-static failed"
        dpkg-deb -x "$tmp"/*.deb "$tmp/x"
    fi
    install -m 755 "$tmp/x/bin/busybox" "$BUSYBOX"
    rm -rf "$tmp"
}

# The kernel's real System.map -> $SYSTEM_MAP. Debian's kernel package ships a
# stub ("The real System.map is in the linux-image-<version>-dbg package"): the
# map is then taken from that package (about 260 MB, downloaded once) and cached
# as $KDIR/System.map.dbg.
ensure_system_map() {
    SYSTEM_MAP=$KDIR/System.map
    grep -q "The real System.map is in" "$SYSTEM_MAP" || return 0
    SYSTEM_MAP=$KDIR/System.map.dbg
    [[ -s $SYSTEM_MAP ]] && return 0
    local pkg version tmp
    read -r pkg version < "$KDIR/package"
    kernel_apt_update
    tmp=$(mktemp -d "$CACHE/.m.XXXXXX")
    log "fetching the System.map of $pkg-dbg $version"
    (cd "$tmp" && apt-get "${KAPT[@]}" download -q "$pkg-dbg=$version" >&2) || die "apt-get download $pkg-dbg=$version failed"
    dpkg-deb --fsys-tarfile "$tmp"/*.deb | tar -x -C "$tmp" --wildcards './usr/lib/debug/boot/System.map-*' ||
        die "no System.map in $pkg-dbg"
    cp "$tmp"/usr/lib/debug/boot/System.map-* "$SYSTEM_MAP.new" && mv "$SYSTEM_MAP.new" "$SYSTEM_MAP"
    rm -rf "$tmp"
}

# Kernel -> $KDIR = $CACHE/kernel-PACKAGE-VERSION/{vmlinuz,config,System.map,
# package, ko/*.ko, modules.load}. modules.load lists, in load order, the
# modules that the guest needs for the NVMe disk and ext4 and that are not
# built in. The package and version are the pin of kernels.txt while the
# archive has it (or it is cached), else the newest of the flavour.
ensure_kernel() {
    local pkg=$PIN_PKG version=$PIN_VERSION
    kernel_apt_setup
    KDIR=$CACHE/kernel-$pkg-$version
    [[ -f $KDIR/vmlinuz && $(cat "$KDIR/cache-version" 2>/dev/null) == "$CACHE_VERSION" &&
        ${RIG_REFRESH:-0} != 1 ]] && return 0
    kernel_apt_update
    if ! apt-cache "${KAPT[@]}" show "$pkg=$version" > /dev/null 2>&1; then
        log "warning: pinned kernel $pkg $version is no longer in the archive; using the newest $FLAVOUR kernel"
        pkg=$(apt-cache "${KAPT[@]}" depends "$META" | awk '/Depends: linux-image-/ {print $2; exit}')
        [[ -n $pkg ]] || die "cannot resolve $META to a kernel package"
        version=$(apt-cache "${KAPT[@]}" show "$pkg" | awk '/^Version:/ {print $2; exit}')
        KDIR=$CACHE/kernel-$pkg-$version
        [[ -f $KDIR/vmlinuz && $(cat "$KDIR/cache-version" 2>/dev/null) == "$CACHE_VERSION" &&
            ${RIG_REFRESH:-0} != 1 ]] && return 0
    fi
    local kdir=$KDIR
    log "fetching $pkg $version"
    local tmp; tmp=$(mktemp -d "$CACHE/.k.XXXXXX")
    mkdir -p "$tmp/x"
    (cd "$tmp" && apt-get "${KAPT[@]}" download -q "$pkg=$version" >&2) || die "apt-get download $pkg=$version failed"
    dpkg-deb -x "$tmp"/*.deb "$tmp/x"
    rm -rf "$kdir.new"; mkdir -p "$kdir.new/ko" "$kdir.new/extra"
    cp "$tmp"/x/boot/vmlinuz-* "$kdir.new/vmlinuz"
    cp "$tmp"/x/boot/config-* "$kdir.new/config"
    cp "$tmp"/x/boot/System.map-* "$kdir.new/System.map"
    echo "$pkg $(dpkg-deb -f "$tmp"/*.deb Version)" > "$kdir.new/package"

    # Resolve module dependencies from each .ko's .modinfo "depends=" field
    # (the package ships no modules.dep and the host may lack kmod).
    local mdir # /lib/modules, or /usr/lib/modules in merged-/usr packages (Debian 13)
    mdir=$(find "$tmp/x/lib/modules" "$tmp/x/usr/lib/modules" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -1 || true)
    [[ -n $mdir ]] || die "$pkg has no modules directory"
    local -A path_of=() seen=()
    local f n order=()
    while IFS= read -r f; do
        n=${f##*/}; n=${n%%.ko*}; path_of[${n//-/_}]=$f
    done < <(find "$mdir/kernel" -name '*.ko*')
    add_mod() { # depth-first: dependencies before the module itself
        local m=${1//-/_} d
        [[ -n ${seen[$m]:-} ]] && return 0
        seen[$m]=1
        [[ -n ${path_of[$m]:-} ]] || return 0 # built in (or absent)
        for d in $(tr '\0' '\n' < "${path_of[$m]}" | sed -n 's/^depends=//p' | tr ',' ' '); do
            add_mod "$d"
        done
        order+=("$m")
    }
    # ext4 in 6.x always asks the crypto API for "crc32c" at mount time.
    for n in nvme crc32c_generic ext4; do add_mod "$n"; done
    : > "$kdir.new/modules.load"
    for n in "${order[@]}"; do
        f=${path_of[$n]}
        case $f in
            *.ko) cp "$f" "$kdir.new/ko/$n.ko" ;;
            *.ko.xz) xz -dc "$f" > "$kdir.new/ko/$n.ko" ;;
            *.ko.zst) zstd -qdc "$f" > "$kdir.new/ko/$n.ko" ;;
            *.ko.gz) gzip -dc "$f" > "$kdir.new/ko/$n.ko" ;;
        esac
        echo "$n.ko" >> "$kdir.new/modules.load"
    done
    # Modules the rig does not load but tests do (the live mount's fuse.ko): extra/NAME.ko.
    for n in fuse; do
        f=${path_of[$n]:-}
        case $f in
            *.ko) cp "$f" "$kdir.new/extra/$n.ko" ;;
            *.ko.xz) xz -dc "$f" > "$kdir.new/extra/$n.ko" ;;
            *.ko.zst) zstd -qdc "$f" > "$kdir.new/extra/$n.ko" ;;
            *.ko.gz) gzip -dc "$f" > "$kdir.new/extra/$n.ko" ;;
        esac
    done
    echo "$CACHE_VERSION" > "$kdir.new/cache-version"
    rm -rf "$kdir" "$tmp"
    mv "$kdir.new" "$kdir"
}

ensure_host_tools
mkdir -p "$CACHE"
if [[ -n $DOWNLOAD ]]; then
    kernel_apt_setup
    kernel_apt_update
    apt-get "${KAPT[@]}" download -q "$DOWNLOAD" >&2 || die "apt-get download $DOWNLOAD failed"
    exit 0
fi
exec 9> "$CACHE/.lock" # serialise cache fills between concurrent runs
flock 9
ensure_busybox
if [[ -n $KERNEL ]]; then
    [[ -f $KERNEL ]] || die "no such kernel: $KERNEL"
    KDIR='' KDESC=$KERNEL
else
    ensure_kernel
    KERNEL=$KDIR/vmlinuz
    KDESC=$(cat "$KDIR/package")
fi
exec 9>&-
if ((PRINT_KERNEL)); then
    echo "$KDESC $KDIR"
    exit 0
fi

# ------------------------------------------------------------ accelerator
# /dev/kvm on some sandboxes (e.g. Firecracker VMs with nested_pvm) is backed
# by kvm_pvm: it is meant for PVM-enabled guest kernels; a stock kernel crawls
# (minutes in the decompressor) and never finishes booting, and "-cpu host"
# even aborts (cannot set MSR 0x10a). TCG is used there instead.
kvm_usable() {
    [[ -r /dev/kvm && -w /dev/kvm ]] && [[ ! -d /sys/module/kvm_pvm ]]
}
if [[ $ACCEL == auto ]]; then
    if kvm_usable && [[ $GUEST_ARCH == "$(dpkg --print-architecture)" ]]; then ACCEL=kvm; else ACCEL=tcg; fi
fi
case $ACCEL in
    kvm) ACCEL_OPTS=(-accel kvm -cpu "${CPU_MODEL:-host}") ;;
    tcg) # 4-level paging on x86-64 unless --cpu says otherwise
        if [[ $GUEST_ARCH == arm64 ]]; then ACCEL_OPTS=(-accel "tcg,thread=multi" -cpu "${CPU_MODEL:-max}")
        else ACCEL_OPTS=(-accel "tcg,thread=multi" -cpu "${CPU_MODEL:-max,la57=off}"); fi ;;
    *) die "--accel must be auto, kvm or tcg" ;;
esac

# ---------------------------------------------------------- work directory
mkdir -p "$OUT"
OUT=$(readlink -f -- "$OUT")
# Never let results of an earlier run in the same OUTDIR pass for this one.
rm -rf "$OUT/out"
rm -f "$OUT"/{exit_code,stdout.txt,stderr.txt,iomem.txt,guest-info.txt,dmesg.txt,timing.txt,serial.log,kernel.txt}
echo "$KDESC" > "$OUT/kernel.txt"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rig.XXXXXX")
QEMU_PID=
# shellcheck disable=SC2317  # invoked by trap
cleanup() {
    if [[ -n $QEMU_PID ]]; then kill "$QEMU_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------- initramfs
ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,sbin,proc,sys,dev,tmp,out,mnt/xfer,rig/bin,rig/modules}
cp "$BUSYBOX" "$ROOT/bin/busybox"
BIN_NAME=${BIN##*/}
cp "$BIN" "$ROOT/rig/bin/$BIN_NAME"
for spec in "${ADDS[@]}"; do
    src=${spec%%:*} dst=${spec#*:}
    [[ $dst == "$spec" ]] && dst=/rig/bin/${src##*/}
    mkdir -p "$ROOT$(dirname "$dst")"
    cp -L "$src" "$ROOT$dst"
done
if [[ -n $KDIR && -s $KDIR/modules.load ]]; then
    cp "$KDIR"/ko/*.ko "$ROOT/rig/modules/"
    cp "$KDIR/modules.load" "$ROOT/rig/modules.load"
fi
if ((BOOT)); then
    [[ -n $KDIR ]] || die "--boot needs a kernel of kernels.txt (not --kernel)"
    release=$(cut -d' ' -f1 "$KDIR/package"); release=${release#linux-image-}
    ensure_system_map
    mkdir -p "$ROOT/boot"
    cp "$SYSTEM_MAP" "$ROOT/boot/System.map-$release"
    cp "$KDIR/config" "$ROOT/boot/config-$release"
fi

# Single-quote a word for a POSIX shell.
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
{
    echo "BIN=$(shq "/rig/bin/$BIN_NAME")"
    printf 'set --'
    for a in "${ARGS[@]}"; do printf ' %s' "$(shq "$a")"; done
    echo
} > "$ROOT/rig/cmd"
printf '%s\n' "$PRE" > "$ROOT/rig/pre"

cat > "$ROOT/init" <<'EOF'
#!/bin/busybox sh
# PID 1 of the rig guest: mount the basics, attach the NVMe results disk at
# /out, run the command, save its status and logs, then power off.
/bin/busybox --install -s /bin
export PATH=/rig/bin:/bin:/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
say() { echo "RIG: $*"; }
fail() { say "FATAL: $*"; poweroff -f; sleep 10; }

if [ -f /rig/modules.load ]; then
    while read -r m; do insmod "/rig/modules/$m" || say "insmod $m failed"; done < /rig/modules.load
fi
i=0
while [ ! -b /dev/nvme0n1 ]; do
    i=$((i + 1)); [ $i -gt 300 ] && fail "no /dev/nvme0n1"; sleep 0.1
done
mount -t ext4 -o noinit_itable /dev/nvme0n1 /mnt/xfer || fail "cannot mount results disk"
M=/mnt/xfer/meta
mkdir -p /mnt/xfer/out $M
mount -o bind /mnt/xfer/out /out || fail "bind /out"

cat /proc/iomem > $M/iomem.txt
{
    uname -a; cat /proc/cmdline
    ls -l /proc/kcore /dev/mem /dev/kmem /dev/crash /dev/port 2>&1
    cat /sys/kernel/security/lockdown 2>&1
    cat /proc/meminfo
} > $M/guest-info.txt 2>&1

. /rig/pre
. /rig/cmd
say "running: $BIN $*"
t0=$(cut -d' ' -f1 /proc/uptime)
cd /out
# stdout -> file, stderr -> console and file; exit status -> file.
( "$BIN" "$@" 2>&1 1>$M/stdout.txt; echo $? > $M/exit_code ) | tee $M/stderr.txt
t1=$(cut -d' ' -f1 /proc/uptime)
cd /
echo "guest_uptime_at_start=$t0 guest_uptime_at_end=$t1" > $M/guest-timing.txt
say "command exit status $(cat $M/exit_code 2>/dev/null), took $t0 -> $t1 s of guest uptime"
dmesg > $M/dmesg.txt
sync
umount /out; umount /mnt/xfer || { sync; umount -l /mnt/xfer; }
case " $(cat /proc/cmdline) " in
*" rig.hold=1 "*)
    say "HOLD"      # the host takes a memory dump now, then quits QEMU
    while :; do sleep 3600; done ;;
esac
say "POWEROFF"
poweroff -f
sleep 10
EOF
chmod 755 "$ROOT/init" "$ROOT/bin/busybox"
(cd "$ROOT" && find . | cpio -o -H newc -R 0:0 --quiet) | gzip -1 > "$WORK/initramfs.cpio.gz"

# ------------------------------------------------------------ results disk
# A sparse raw image with an ext4 file system (no journal: the guest unmounts
# it cleanly), read back on the host with debugfs (no mount, no root needed).
IMG=$WORK/xfer.img
truncate -s "${DISK_MIB}M" "$IMG"
mkfs.ext4 -q -F -m 0 -O ^has_journal,^metadata_csum -E lazy_itable_init=1 -L rigout "$IMG"

# ------------------------------------------------------------------ boot
# QEMU option values escape a comma by doubling it.
qesc() { printf '%s' "${1//,/,,}"; }
CONSOLE=ttyS0 MACHINE=(qemu-system-x86_64 -M q35)
[[ $GUEST_ARCH == arm64 ]] && CONSOLE=ttyAMA0 MACHINE=(qemu-system-aarch64 -M virt)
CMDLINE="console=$CONSOLE panic=-1 quiet $APPEND"
[[ -n $HOST_DUMP ]] && CMDLINE+=" rig.hold=1"
QEMU=("${MACHINE[@]}" -nodefaults -no-user-config "${ACCEL_OPTS[@]}"
    -m "$MEM" -smp "$CPUS" -display none -no-reboot
    -chardev "file,id=ser0,path=$(qesc "$OUT/serial.log")" -serial chardev:ser0
    -kernel "$KERNEL" -initrd "$WORK/initramfs.cpio.gz" -append "$CMDLINE"
    -drive "file=$(qesc "$IMG"),if=none,id=xfer,format=raw,cache=unsafe"
    -device "nvme,drive=xfer,serial=rigout" "${QEMU_EXTRA[@]}")
if [[ -n $HOST_DUMP ]]; then
    HOST_DUMP=$(readlink -f -- "$HOST_DUMP")
    rm -f "$HOST_DUMP"
    mkfifo "$WORK/qmp.in" "$WORK/qmp.out"
    QEMU+=(-chardev "pipe,id=qmp0,path=$(qesc "$WORK/qmp")" -mon "chardev=qmp0,mode=control")
fi

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}'; }
log "booting $KDESC, accel=$ACCEL mem=$MEM cpus=$CPUS"
T_START=$(date +%s.%N)
timeout -k 10 "$TIMEOUT" "${QEMU[@]}" > "$WORK/qemu.log" 2>&1 &
QEMU_PID=$!
TAIL_PID=
if ((VERBOSE)); then
    # follows the console; ends by itself (after a last read) when QEMU exits
    tail -s 0.2 --pid="$QEMU_PID" -n +1 -F "$OUT/serial.log" >&2 2>/dev/null &
    TAIL_PID=$!
fi

json_esc() { local v=${1//\\/\\\\}; printf '%s' "${v//\"/\\\"}"; }
# QMP over a pair of FIFOs: send one command, wait for its reply line.
qmp() {
    local line
    echo "$1" >&3
    while IFS= read -r -t "$2" line <&4; do
        [[ $line == *'"return"'* ]] && return 0
        [[ $line == *'"error"'* ]] && { log "QMP error: $line"; return 1; }
    done
    log "QMP: no reply to $1"; return 1
}
if [[ -n $HOST_DUMP ]]; then
    # Wait for the guest to finish and hold, then dump and quit.
    while kill -0 "$QEMU_PID" 2>/dev/null && ! grep -q '^RIG: HOLD' "$OUT/serial.log" 2>/dev/null; do
        sleep 0.2
    done
    if kill -0 "$QEMU_PID" 2>/dev/null; then
        exec 3> "$WORK/qmp.in" 4< "$WORK/qmp.out"
        T_DUMP=$(date +%s.%N)
        if qmp '{"execute":"qmp_capabilities"}' 10 &&
            qmp "{\"execute\":\"dump-guest-memory\",\"arguments\":{\"paging\":false,\"protocol\":\"file:$(json_esc "$HOST_DUMP")\"}}" "$TIMEOUT"; then
            log "host-side dump written: $HOST_DUMP ($(stat -c %s "$HOST_DUMP") bytes, $(elapsed "$T_DUMP") s)"
        else
            log "host-side dump FAILED"
        fi
        qmp '{"execute":"quit"}' 10 || kill "$QEMU_PID" 2>/dev/null || true
        exec 3>&- 4<&-
    fi
fi

QEMU_RC=0
wait "$QEMU_PID" || QEMU_RC=$?
QEMU_PID=
T_END=$(date +%s.%N)
if [[ -n $TAIL_PID ]]; then wait "$TAIL_PID" || true; fi
WALL=$(awk -v a="$T_START" -v b="$T_END" 'BEGIN{printf "%.2f", b - a}')
log "VM ran ${WALL}s (qemu exit $QEMU_RC)"
if ((QEMU_RC != 0)); then
    sed 's/^/qemu: /' "$WORK/qemu.log" >&2
fi

# --------------------------------------------------------------- results
mkdir -p "$WORK/x"
debugfs -R "rdump /out /meta $WORK/x" "$IMG" > "$WORK/debugfs.log" 2>&1 || true
rm -rf "$OUT/out"
if [[ -d $WORK/x/out ]]; then mv "$WORK/x/out" "$OUT/out"; else mkdir -p "$OUT/out"; fi
if [[ -d $WORK/x/meta ]]; then cp -a "$WORK/x/meta/." "$OUT/"; fi
{
    echo "host_wall_seconds=$WALL accel=$ACCEL mem=$MEM cpus=$CPUS qemu_exit=$QEMU_RC"
    cat "$OUT/guest-timing.txt" 2>/dev/null || true
} > "$OUT/timing.txt"
rm -f "$OUT/guest-timing.txt"

if ((QEMU_RC == 124 || QEMU_RC == 137)); then
    log "TIMEOUT after ${TIMEOUT}s; last serial lines:"
    tail -n 30 "$OUT/serial.log" >&2
    exit 124
fi
if [[ ! -s $OUT/exit_code ]]; then
    log "no exit status came back (rig failure); last serial lines:"
    tail -n 30 "$OUT/serial.log" >&2
    exit 125
fi
RC=$(cat "$OUT/exit_code")
log "guest command exit status: $RC; results in $OUT"
exit "$RC"
