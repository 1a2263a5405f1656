#!/usr/bin/env bash
# Benchmark of `ssgen build` against the SHA-256 limit of this machine and
# against coreutils sha256sum, measured in the same run (ratios, not times,
# are what to compare across machines).
#
# Usage: bench/build.sh [ROOT_SIZE_MIB] [VERSIONS]   (default 1024 MiB, 4)
# Needs: a release build (cargo build --release -p ssgen), openssl, about
# ROOT_SIZE_MIB * VERSIONS of free disk and as much free page cache.
set -euo pipefail
size_mib=${1:-1024}
versions=${2:-4}
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ssgen="$repo/target/release/ssgen"
[ -x "$ssgen" ] || cargo build --release -p ssgen --manifest-path "$repo/Cargo.toml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cores=$(nproc)

echo "tree: $versions versions with a ${size_mib} MiB qcow2-headed root each"
# A real metadata tarball (ssgen build reads it whole), with 64 KiB of
# random bytes beside metadata.yaml; a root of random bytes behind a qcow2
# magic (SHA-256 costs the same whatever the bytes).
meta="$work/meta"
mkdir -p "$meta/templates"
printf 'architecture: x86_64\ncreation_date: 1785556800\nproperties:\n  os: bench\n' > "$meta/metadata.yaml"
head -c 65536 /dev/urandom > "$meta/templates/filler.tpl"
for i in $(seq 1 "$versions"); do
    d="$work/images/bench/1/amd64/default/2026080${i}_0000"
    mkdir -p "$d"
    tar -C "$meta" -cJf "$d/incus.tar.xz" metadata.yaml templates
    { printf 'QFI\xfb'; head -c $((size_mib * 1048576)) /dev/urandom; } > "$d/disk.qcow2"
done
cat "$work"/images/bench/1/amd64/default/*/* > /dev/null   # warm the page cache

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }

# Per-core OpenSSL SHA-256 speed (16 KiB blocks), bytes/s.
ossl=$(openssl speed -evp sha256 -seconds 3 -bytes 16384 2>/dev/null \
    | awk '/^sha256|^SHA256/ {v=$NF; sub(/k$/,"",v); print v*1000}' | tail -1)
total=$(du -cb "$work"/images/bench/1/amd64/default/*/* | tail -1 | cut -f1)
roots=$(du -cb "$work"/images/bench/1/amd64/default/*/disk.qcow2 | tail -1 | cut -f1)
# Every byte hashed once for its own digest, root bytes once more for the
# combined fingerprint (one metadata file per version).
work_bytes=$((total + roots))
limit=$(echo "$work_bytes / ($ossl * $cores)" | bc -l)

t0=$(now); sha256sum "$work"/images/bench/1/amd64/default/*/* > /dev/null; t1=$(now)
t_sum=$(secs "$t0" "$t1")
t0=$(now); "$ssgen" build --timestamp 0 "$work" 2>/dev/null; t1=$(now)
t_cold=$(secs "$t0" "$t1")
t0=$(now); "$ssgen" build --timestamp 0 "$work" 2>/dev/null; t1=$(now)
t_warm=$(secs "$t0" "$t1")

printf 'data: %.2f GiB in files, %.2f GiB of SHA-256 work; %s cores\n' \
    "$(echo "$total/1073741824" | bc -l)" "$(echo "$work_bytes/1073741824" | bc -l)" "$cores"
printf 'openssl sha256 per core: %.0f MB/s -> limit %.2f s\n' "$(echo "$ossl/1000000" | bc -l)" "$limit"
printf 'sha256sum (own digests only): %.2f s  = %.2fx the limit\n' "$t_sum" "$(echo "$t_sum/$limit" | bc -l)"
printf 'ssgen build, cold:            %.2f s  = %.2fx the limit, %.2fx faster than sha256sum\n' \
    "$t_cold" "$(echo "$t_cold/$limit" | bc -l)" "$(echo "$t_sum/$t_cold" | bc -l)"
printf 'ssgen build, unchanged tree:  %.3f s\n' "$t_warm"
