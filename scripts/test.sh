#!/usr/bin/env bash
# Runs every test of ssgen: installs what the tests need (scripts/setup.sh,
# idempotent), then the Rust suites (unit, golden, CLI end to end, real LXD,
# Incus and python-simplestreams clients), then the browser and edge suites.
#
# Usage: scripts/test.sh            # everything
#        SSGEN_SKIP_SETUP=1 scripts/test.sh   # when setup already ran
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*" >&2; }

if [ "${SSGEN_SKIP_SETUP:-0}" != 1 ]; then
    step "setup"
    scripts/setup.sh
fi
# rustup's cargo/node from the setup, for a shell that did not have them.
export PATH="$HOME/.cargo/bin:$PATH"

# The default members: core, cli and tests (the wasm crate has its own runs
# below, for its own target).
step "cargo test: unit, golden, CLI end to end, real LXD, Incus and python-simplestreams clients"
cargo test --locked

step "browser: the page's wasm under Node, the page in headless Chromium"
tests/browser/run.sh

step "edge: the Worker under workerd (Miniflare), ssgen push, real LXD and Incus against it"
tests/edge/run.sh
