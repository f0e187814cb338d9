#!/usr/bin/env bash
# Builds pmem.ko against the headers of the QEMU rig's kernel (or KVER=<release> VERSION=<deb version>):
# the Debian linux-headers and linux-kbuild packages of that exact version are fetched with
# apt-get download and unpacked into a cache (nothing is installed), like the rig does for the
# kernel. Prints the path of the module.
#   driver/linux/build.sh [OUTDIR]          (default OUTDIR: target/driver)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mkdir -p "${1:-$HERE/../../target/driver}" && cd "${1:-$HERE/../../target/driver}" && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/pmem-kernel-headers
log() { echo "driver/build.sh: $*" >&2; }

# The kernel package the rig boots (tests/rig/kernels.txt, fetched into the rig's cache).
if [[ -z ${KVER:-} ]]; then
    read -r pkg VERSION _ < <("$HERE/../../tests/rig/run-in-vm.sh" --print-kernel) || { log "the rig cannot resolve its kernel"; exit 2; }
    KVER=${pkg#linux-image-}
fi
[[ -n ${VERSION:-} ]] || { log "set VERSION (the Debian package version) with KVER"; exit 2; }
ABI=$(echo "$KVER" | sed -E 's/^([0-9.]+-[0-9]+)-.*/\1/') # e.g. 6.1.0-56
MAJOR=$(echo "$KVER" | cut -d. -f1-2) # e.g. 6.1
DIR=$CACHE/$KVER-$VERSION
if [[ ! -f $DIR/ok ]]; then
    log "fetching headers for $KVER ($VERSION)"
    rm -rf "$DIR.tmp"; mkdir -p "$DIR.tmp"
    (cd "$DIR.tmp" && apt-get download -q "linux-headers-$KVER=$VERSION" "linux-headers-$ABI-common=$VERSION" \
        "linux-kbuild-$MAJOR=$VERSION" >&2) || { [[ $EUID -eq 0 ]] && apt-get update -q >&2 && (cd "$DIR.tmp" &&
        apt-get download -q "linux-headers-$KVER=$VERSION" "linux-headers-$ABI-common=$VERSION" "linux-kbuild-$MAJOR=$VERSION" >&2); }
    for d in "$DIR.tmp"/*.deb; do dpkg-deb -x "$d" "$DIR.tmp/x"; done
    # The headers' Makefile includes the common part by absolute path; point it into the cache.
    sed -i "s|/usr/src/|$DIR/x/usr/src/|g" "$DIR.tmp/x/usr/src/linux-headers-$KVER/Makefile"
    rm -rf "$DIR"; mv "$DIR.tmp" "$DIR"
    sed -i "s|$DIR.tmp/|$DIR/|g" "$DIR/x/usr/src/linux-headers-$KVER/Makefile"
    touch "$DIR/ok"
fi
KDIR=$DIR/x/usr/src/linux-headers-$KVER
CC=gcc-12
command -v $CC >/dev/null || CC=gcc
BUILD=$(mktemp -d)
trap 'rm -rf "$BUILD"' EXIT
cp "$HERE/pmem.c" "$HERE/Kbuild" "$BUILD/"
make -s -C "$KDIR" M="$BUILD" CC="$CC" HOSTCC="$CC" modules >&2
cp "$BUILD/pmem.ko" "$OUT/pmem-$KVER.ko"
log "built $OUT/pmem-$KVER.ko ($(modinfo -F vermagic "$OUT/pmem-$KVER.ko" 2>/dev/null || strings "$OUT/pmem-$KVER.ko" | grep -m1 '^vermagic='))"
echo "$OUT/pmem-$KVER.ko"
