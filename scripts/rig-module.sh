#!/usr/bin/env bash
# Prints the path of kernel module NAME.ko (e.g. fuse) built for the QEMU rig's kernel, which
# the rig itself does not load: the rig keeps it beside the kernel it fetched (nothing is
# installed).
#   scripts/rig-module.sh NAME
set -euo pipefail
NAME=${1:?usage: rig-module.sh NAME}
# The kernel the rig boots (tests/rig/kernels.txt; RIG_FLAVOUR selects another), fetched into
# the rig's cache, which keeps the modules tests load (extra/NAME.ko).
read -r _ _ dir < <("$(dirname "$0")/../tests/rig/run-in-vm.sh" --flavour "${RIG_FLAVOUR:-cloud}" --print-kernel) ||
    { echo "rig-module.sh: the rig cannot resolve its kernel" >&2; exit 2; }
[[ -f $dir/extra/$NAME.ko ]] || { echo "rig-module.sh: the rig keeps no $NAME.ko (run-in-vm.sh: extra modules)" >&2; exit 2; }
echo "$dir/extra/$NAME.ko"
