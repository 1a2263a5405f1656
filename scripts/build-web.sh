#!/usr/bin/env bash
# Builds the browser page: ssgen-wasm with the size profile, wasm-bindgen
# (--target web) into web/pkg/, then wasm-opt from npm binaryen. Afterwards
# web/ is the whole site: serve it with any static server, or `ssgen serve`.
#
# Needs: the wasm32 target and wasm-bindgen-cli (scripts/setup.sh wasm), and
# npm binaryen in tests/browser (scripts/setup.sh browser). Debian's binaryen
# is never used: its wasm-opt (version 108) breaks wasm-bindgen's output;
# without npm binaryen the page is still built, unoptimised.
#
# Usage: scripts/build-web.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/web/pkg"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
WASM_OPT="$ROOT/tests/browser/node_modules/.bin/wasm-opt"

log() { printf 'build-web: %s\n' "$*" >&2; }

want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$ROOT/Cargo.lock")"
have="$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)"
if [ "$have" != "$want" ]; then
    log "wasm-bindgen $want is needed (found: ${have:-none}); run scripts/setup.sh wasm"
    exit 2
fi

log "cargo build -p ssgen-wasm --profile wasm-release --target wasm32-unknown-unknown"
cargo build --locked -p ssgen-wasm --profile wasm-release --target wasm32-unknown-unknown

# A fresh directory: nothing stale from an older build is served. The
# artifact is copied at once: scripts/build-edge.sh builds the same crate
# with other features into the same path.
rm -rf "$OUT.tmp"
mkdir -p "$OUT.tmp/in"
cp "$TARGET_DIR/wasm32-unknown-unknown/wasm-release/ssgen_wasm.wasm" "$OUT.tmp/in/"
# wasm-bindgen warns that it cannot see the wasm features (the size profile
# strips them) and suggests running wasm-opt on its output: this script
# does, with the features named, so that hint is filtered out. Anything else
# it says is passed on.
if ! bindgen_log="$(wasm-bindgen --target web --out-dir "$OUT.tmp" \
    --remove-name-section --remove-producers-section \
    "$OUT.tmp/in/ssgen_wasm.wasm" 2>&1)"; then
    printf '%s\n' "$bindgen_log" >&2
    log "wasm-bindgen failed"
    exit 2
fi
printf '%s\n' "$bindgen_log" | grep -v -e '^$' -e 'the `target_features` custom section is missing' >&2 || true
rm -r "$OUT.tmp/in"
if ! grep -q 'class Builder' "$OUT.tmp/ssgen_wasm.js"; then
    log "the wasm has no page exports (built without the default 'page' feature?); run again"
    exit 2
fi

wasm="$OUT.tmp/ssgen_wasm_bg.wasm"
if [ -x "$WASM_OPT" ]; then
    # -O3 rather than -Oz: the hash loop is the page's hot path, and -Oz
    # saves almost nothing after the size profile.
    "$WASM_OPT" -O3 --enable-bulk-memory --enable-reference-types \
        --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
        "$wasm" -o "$wasm.opt"
    mv "$wasm.opt" "$wasm"
else
    log "npm binaryen not installed (scripts/setup.sh browser): shipping without wasm-opt"
fi

rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"

raw="$(stat -c %s "$OUT/ssgen_wasm_bg.wasm")"
gz="$(gzip -9 -c "$OUT/ssgen_wasm_bg.wasm" | wc -c)"
js="$(stat -c %s "$OUT/ssgen_wasm.js")"
printf 'build-web: web/pkg/ssgen_wasm_bg.wasm %d bytes, %d bytes gzip -9 (glue ssgen_wasm.js %d bytes)\n' \
    "$raw" "$gz" "$js"
log "done: serve web/, e.g. target/debug/ssgen serve --plain --listen 127.0.0.1:8080 web"
