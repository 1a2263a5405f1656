#!/usr/bin/env bash
# Builds the edge handler: ssgen-wasm with the `edge` feature and without
# the page's exports, in the small `wasm-release` profile, then wasm-bindgen
# (--target web; edge/src/index.js instantiates it with initSync) into
# edge/pkg/. Prints the size of the wasm that ships.
#
# Needs the wasm32-unknown-unknown target and wasm-bindgen-cli at the
# version of wasm-bindgen in Cargo.lock (scripts/setup.sh installs both).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# Speed over size for the Worker: at opt-level "z" (the page's size
# profile) the handler answered 30-50 % fewer requests per second than at
# 3, for 100 KB more (under 200 KB gzipped, far below Workers' limits). Its
# own target dir, so the page's build and this one do not rebuild each
# other's artifacts.
TARGET_DIR="$ROOT/target/edge"
CARGO_PROFILE_WASM_RELEASE_OPT_LEVEL=3 \
    cargo build --locked --profile wasm-release --target wasm32-unknown-unknown \
    --target-dir "$TARGET_DIR" -p ssgen-wasm --no-default-features --features edge
out="$ROOT/edge/pkg"
rm -rf "$out.tmp"
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
    --out-dir "$out.tmp" "$TARGET_DIR/wasm32-unknown-unknown/wasm-release/ssgen_wasm.wasm"
# No wasm-opt: on this module it trims the raw size by ~10 % but grows the
# gzipped upload (what Cloudflare's size limit counts) by ~7 %.
rm -rf "$out"
mv "$out.tmp" "$out"
printf 'build-edge: %s bytes (%s gzipped) in edge/pkg/ssgen_wasm_bg.wasm\n' \
    "$(stat -c %s "$out/ssgen_wasm_bg.wasm")" "$(gzip -9c "$out/ssgen_wasm_bg.wasm" | wc -c)" >&2
