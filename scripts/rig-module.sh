#!/usr/bin/env bash
# Prints the path of kernel module NAME.ko (e.g. fuse) built for the QEMU rig's kernel, which
# the rig itself does not load: the Debian linux-image package of that exact version is fetched
# with apt-get download and the module unpacked into a cache (nothing is installed).
#   scripts/rig-module.sh NAME
set -euo pipefail
NAME=${1:?usage: rig-module.sh NAME}
# The kernel package the rig boots (tests/rig/kernels.txt, fetched into the rig's cache).
read -r pkg version _ < <("$(dirname "$0")/../tests/rig/run-in-vm.sh" --print-kernel) ||
    { echo "rig-module.sh: the rig cannot resolve its kernel" >&2; exit 2; }
DIR=${XDG_CACHE_HOME:-$HOME/.cache}/pmem-rig-modules/$pkg-$version
if [[ ! -f $DIR/$NAME.ko ]]; then
    echo "rig-module.sh: fetching $pkg $version for $NAME.ko" >&2
    rm -rf "$DIR.tmp"; mkdir -p "$DIR.tmp"
    (cd "$DIR.tmp" && apt-get download -q "$pkg=$version" >&2) ||
        { [[ $EUID -eq 0 ]] && apt-get update -q >&2 && (cd "$DIR.tmp" && apt-get download -q "$pkg=$version" >&2); }
    dpkg-deb -x "$DIR.tmp"/*.deb "$DIR.tmp/x"
    f=$(find "$DIR.tmp/x/lib/modules" -name "$NAME.ko*" | head -1)
    [[ -n $f ]] || { echo "rig-module.sh: no $NAME.ko in $pkg" >&2; exit 2; }
    mkdir -p "$DIR"
    case $f in
        *.ko) cp "$f" "$DIR/$NAME.ko" ;;
        *.ko.xz) xz -dc "$f" > "$DIR/$NAME.ko" ;;
        *.ko.zst) zstd -qdc "$f" > "$DIR/$NAME.ko" ;;
        *.ko.gz) gzip -dc "$f" > "$DIR/$NAME.ko" ;;
    esac
    rm -rf "$DIR.tmp"
fi
echo "$DIR/$NAME.ko"
