#!/usr/bin/env bash
# The browser suite: builds the page (scripts/build-web.sh, incremental) and
# the ssgen binary, then runs the wasm exports under Node and the page in
# headless Chromium (node --test). Screenshots and measurements go to
# tests/artifacts/browser/.
#
# Needs: scripts/setup.sh wasm browser (and real_clients for mksquashfs and
# qemu-img). Usage: tests/browser/run.sh [TEST_FILE...]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

"$ROOT/scripts/build-web.sh"
cargo build --locked -p ssgen --manifest-path "$ROOT/Cargo.toml"
# The page exports' own unit tests (native; the default workspace test run
# leaves the wasm crate out).
cargo test --locked -p ssgen-wasm --lib --manifest-path "$ROOT/Cargo.toml"

cd "$HERE"
if [ "$#" -eq 0 ]; then
    set -- wasm.test.mjs page.test.mjs export.test.mjs many.test.mjs large.test.mjs
fi
# One file at a time: each drives a browser, and the machine has 2 cores.
exec node --test --test-concurrency=1 "$@"
