#!/usr/bin/env bash
# Benchmark of the deltas `ssgen build` makes against `xdelta3 -e -9 -s`
# (what the daemons decode with, and what other publishers run), on the
# same pairs of real squashfs builds in the same run: size, time and peak
# memory as ratios.
#
# A pair: a tree of real files copied from this machine (/usr/lib), built
# with mksquashfs; then the same tree with a few percent of its files
# changed (bytes rewritten, some appended to, a few added and removed),
# built again. ssgen makes the delta inside a real `ssgen build` of a tree
# holding both versions, after a build with --deltas 0 has hashed the files
# (so the time measured is the delta's: index, encode, decode check, write).
#
# Two pairs by default: a tree of 300 MiB (an 80 MiB squashfs), the one the
# goals are set on, and one of 1000 MiB, where the memory that grows with
# the image outweighs what any encoding holds whatever its size.
#
# Peak memory is the largest resident set of the process, from the kernel
# (/usr/bin/time -v, the getrusage maximum): its own pages, heap and any
# file it maps, not the page cache its reads of files go through.
#
# Usage: bench/delta.sh [TREE_MIB...]   (default: 300 1000)
#   PERCENT=3            share of the files changed
#   SSGEN=PATH           the ssgen binary (default: the release build, made
#                        here if missing)
#   DELTA_BENCH_KEEP=DIR keeps (and reuses) the squashfs pairs in DIR
# Needs: mksquashfs, xdelta3, /usr/bin/time, python3; about 4 x TREE_MIB
# of free disk for the largest pair.
set -euo pipefail
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(300 1000)
percent=${PERCENT:-3}
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ssgen=${SSGEN:-$repo/target/release/ssgen}
if [ -z "${SSGEN:-}" ] && [ ! -x "$ssgen" ]; then
    cargo build --release -p ssgen --manifest-path "$repo/Cargo.toml"
fi
for tool in "$ssgen" mksquashfs xdelta3 /usr/bin/time python3 bc; do
    command -v "$tool" > /dev/null || { echo "missing $tool: run scripts/setup.sh" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
keep=${DELTA_BENCH_KEEP:-$work/pairs}

# make_pair TREE_MIB DIR: DIR/v1.squashfs and DIR/v2.squashfs.
make_pair() {
    local tree_mib=$1 pair=$2
    [ -s "$pair/v2.squashfs" ] && return
    echo "pair: copying ${tree_mib} MiB of /usr/lib, changing ${percent} % of the files" >&2
    mkdir -p "$pair"
    rm -rf "$pair/tree"
    mkdir -p "$pair/tree"
    # Regular files (below 4 MiB, so that a tree holds thousands) in a fixed
    # order, up to the size asked for.
    find /usr/lib -xdev -type f -size +0 -size -4096k -printf '%s\t%p\n' 2>/dev/null \
        | LC_ALL=C sort -t "$(printf '\t')" -k2 \
        | awk -F '\t' -v limit=$((tree_mib * 1048576)) '{ if (t + $1 <= limit) { t += $1; print $2 } }' \
        > "$pair/files"
    tar -C / -cf - --verbatim-files-from --files-from=<(sed 's|^/||' "$pair/files") \
        | tar -C "$pair/tree" -xf -
    sq() { mksquashfs "$pair/tree" "$1" -noappend -quiet -no-progress -all-root \
        -mkfs-time 0 -all-time 0 > /dev/null; }
    sq "$pair/v1.squashfs"
    # A daily rebuild: some files rewritten in places, some grown, a few
    # new, a few gone (a fixed seed, so the pair is the same every run).
    python3 - "$pair/tree" "$percent" <<'EOF'
import os, random, sys
root, percent = sys.argv[1], float(sys.argv[2])
rng = random.Random(1)
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
chosen = rng.sample(files, max(1, int(len(files) * percent / 100)))
for i, path in enumerate(chosen):
    if os.path.islink(path):
        continue
    size = os.path.getsize(path)
    if i % 10 == 0:
        os.remove(path)
        continue
    with open(path, "r+b") as f:
        if i % 3 == 0:
            f.seek(0, 2)
            f.write(rng.randbytes(rng.randint(16, 4096)))
        else:
            at = rng.randint(0, max(0, size - 1))
            f.seek(at)
            f.write(rng.randbytes(min(rng.randint(16, 4096), max(1, size - at))))
for i in range(len(chosen) // 10):
    with open(os.path.join(root, "new-%d.bin" % i), "wb") as f:
        f.write(rng.randbytes(rng.randint(1024, 65536)))
print("changed %d of %d files" % (len(chosen), len(files)), file=sys.stderr)
EOF
    sq "$pair/v2.squashfs"
    rm -rf "$pair/tree"
}

# /usr/bin/time -v: wall seconds and peak RSS (KiB) of one command.
measure() {
    local log="$work/time.log"
    /usr/bin/time -v "$@" 2> "$log" > /dev/null || { cat "$log" >&2; exit 1; }
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0;
        for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$log")
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$log")
    echo "$wall $rss"
}

mib() { echo "$1 / 1048576" | bc -l; }

# run_pair TREE_MIB: measures both encoders on one pair and prints them.
run_pair() {
    local tree_mib=$1
    local pair="$keep/$tree_mib-$percent"
    make_pair "$tree_mib" "$pair"
    local v1="$pair/v1.squashfs" v2="$pair/v2.squashfs" run="$work/run"
    local target_size
    target_size=$(stat -c %s "$v2")
    rm -rf "$run"
    mkdir -p "$run/meta/templates"

    # A real metadata tarball for both versions.
    printf 'architecture: x86_64\ncreation_date: 1785556800\nproperties:\n  os: bench\n' > "$run/meta/metadata.yaml"
    echo '{{ container.name }}' > "$run/meta/templates/hostname.tpl"
    local product="$run/root/images/bench/1/amd64/default" v d
    for v in 1 2; do
        d="$product/2026080${v}_0000"
        mkdir -p "$d"
        tar -C "$run/meta" -cJf "$d/incus.tar.xz" metadata.yaml templates
        ln "$pair/v$v.squashfs" "$d/rootfs.squashfs" 2> /dev/null || cp "$pair/v$v.squashfs" "$d/rootfs.squashfs"
    done
    cat "$v1" "$v2" > /dev/null   # warm the page cache

    local x_time x_rss x_size s_time s_rss s_size d_time
    read -r x_time x_rss < <(measure xdelta3 -e -9 -f -s "$v1" "$v2" "$run/x.vcdiff")
    x_size=$(stat -c %s "$run/x.vcdiff")
    xdelta3 -d -f -s "$v1" "$run/x.vcdiff" "$run/x.out"
    cmp -s "$run/x.out" "$v2" || { echo "xdelta3's own delta does not restore v2" >&2; exit 1; }
    rm -f "$run/x.out" "$run/x.vcdiff"

    "$ssgen" build --deltas 0 --timestamp 0 "$run/root" 2> /dev/null
    read -r s_time s_rss < <(measure "$ssgen" build --deltas 1 --timestamp 0 "$run/root")
    local delta="$product/20260802_0000/delta-20260801_0000.vcdiff"
    [ -s "$delta" ] || { echo "ssgen build made no delta" >&2; exit 1; }
    s_size=$(stat -c %s "$delta")
    # The daemons decode with xdelta3: it must restore the target byte for byte.
    read -r d_time _ < <(measure xdelta3 -d -f -s "$v1" "$delta" "$run/s.out")
    cmp -s "$run/s.out" "$v2" || { echo "xdelta3 -d does not restore v2 from ssgen's delta" >&2; exit 1; }
    rm -rf "$run"

    printf '\npair: %s MiB tree, %.1f MiB -> %.1f MiB squashfs (%s %% of the files changed)\n' \
        "$tree_mib" "$(mib "$(stat -c %s "$v1")")" "$(mib "$target_size")" "$percent"
    printf 'xdelta3 -e -9:  %8.2f MiB  %6.2f s  peak %7.1f MiB\n' "$(mib "$x_size")" "$x_time" "$(echo "$x_rss/1024" | bc -l)"
    printf 'ssgen build:    %8.2f MiB  %6.2f s  peak %7.1f MiB  (xdelta3 -d restores it in %.2f s)\n' \
        "$(mib "$s_size")" "$s_time" "$(echo "$s_rss/1024" | bc -l)" "$d_time"
    printf 'ratios: size %.3fx xdelta3 (goal <= 1.05), time %.3fx (goal <= 0.5), peak memory %.2fx the target (goal < 2; xdelta3 %.2fx)\n' \
        "$(echo "$s_size/$x_size" | bc -l)" "$(echo "$s_time/$x_time" | bc -l)" \
        "$(echo "$s_rss*1024/$target_size" | bc -l)" "$(echo "$x_rss*1024/$target_size" | bc -l)"
    printf 'a daemon holding v1 downloads %.1f %% of v2 (%s of %s bytes)\n' \
        "$(echo "100*$s_size/$target_size" | bc -l)" "$s_size" "$target_size"
}

echo "ssgen: $ssgen" >&2
for size in "${sizes[@]}"; do
    run_pair "$size"
done
