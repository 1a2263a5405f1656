#!/usr/bin/env bash
# Benchmark of catalog work at scale: N versions (default 10,000, spread
# over 100 products) of tiny files, so that hashing is negligible and what
# is measured is listing, planning, the cache and rendering. Reports the
# cold build, the rebuild of the unchanged tree (target: under 1 s, reading
# no image bytes) and a rebuild after one new version.
#
# Usage: bench/catalog.sh [VERSIONS]
set -euo pipefail
n=${1:-10000}
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ssgen="$repo/target/release/ssgen"
[ -x "$ssgen" ] || cargo build --release -p ssgen --manifest-path "$repo/Cargo.toml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$work" "$n" <<'PY'
import io, lzma, os, sys, tarfile
root, n = sys.argv[1], int(sys.argv[2])

def metadata(serial):
    """A real (tiny) metadata tarball: ssgen build reads each new one."""
    yaml = f"architecture: x86_64\ncreation_date: 1785556800\nproperties:\n  serial: '{serial}'\n".encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("metadata.yaml")
        info.size, info.mtime = len(yaml), 1785556800
        tar.addfile(info, io.BytesIO(yaml))
    return lzma.compress(raw.getvalue(), format=lzma.FORMAT_XZ)

meta = metadata("bench")
with open(f"{root}/new-metadata.tar.xz", "wb") as f:
    f.write(metadata("new"))
for i in range(n):
    p, v = divmod(i, 100)
    d = f"{root}/images/os{p % 100}/r{p // 100}/amd64/default/2026{1 + v // 28:02d}{1 + v % 28:02d}_{p % 24:02d}00"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/incus.tar.xz", "wb") as f:
        f.write(meta)
    with open(f"{d}/rootfs.squashfs", "wb") as f:
        f.write(b"hsqs" + f"root {i}".encode())
PY

t() { local s e; s=$(date +%s.%N); "$@" > /dev/null 2> "$work/err"; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
cold=$(t "$ssgen" build --timestamp 0 "$work")
warm=$(t "$ssgen" build --timestamp 0 "$work")
read_warm=$(grep -o 'read [0-9]* file(s), [0-9]* byte(s)' "$work/err")
d="$work/images/new/1/amd64/default/20260801_0000"
mkdir -p "$d"; cp "$work/new-metadata.tar.xz" "$d/incus.tar.xz"; printf 'hsqsnew' > "$d/rootfs.squashfs"
one=$(t "$ssgen" build --timestamp 0 "$work")
read_one=$(grep -o 'read [0-9]* file(s), [0-9]* byte(s)' "$work/err")
size=$(stat -c %s "$work/streams/v1/images.json")
printf '%s versions (%s items), images.json %.1f MiB\n' "$n" "$((n * 4))" "$(echo "$size/1048576" | bc -l)"
printf 'cold build:               %.2f s\n' "$cold"
printf 'unchanged rebuild:        %.2f s (%s)\n' "$warm" "$read_warm"
printf 'rebuild after 1 version:  %.2f s (%s)\n' "$one" "$read_one"
