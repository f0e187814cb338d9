#!/usr/bin/env bash
# Builds pmem.exe for x86_64-pc-windows-gnu with Debian's mingw-w64 and prints its path.
# Beside it goes bcryptprimitives.dll, a shim for running it under Wine 8 only (see
# scripts/wine/bcryptprimitives.c); copy just pmem.exe to real Windows machines.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target list --installed | grep -q '^x86_64-pc-windows-gnu$' || rustup target add x86_64-pc-windows-gnu >&2
PROFILE=${PMEM_PROFILE:-release}   # scripts/test.sh uses the quicker-to-build profile ci
cargo build --profile "$PROFILE" -q --target x86_64-pc-windows-gnu -p pmem --no-default-features >&2
OUT=target/x86_64-pc-windows-gnu/$PROFILE
x86_64-w64-mingw32-gcc -O2 -shared -o "$OUT/bcryptprimitives.dll" scripts/wine/bcryptprimitives.c scripts/wine/bcryptprimitives.def -ladvapi32
echo "$PWD/$OUT/pmem.exe"
