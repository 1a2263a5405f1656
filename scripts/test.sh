#!/usr/bin/env bash
# Runs every test of ssgen: installs what the tests need (scripts/setup.sh,
# idempotent), then the Rust suites (unit, golden, CLI end to end, real LXD
# and python-simplestreams clients), then the browser and edge suites.
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

step "cargo test (unit, golden, CLI end to end, real clients)"
cargo test --locked --workspace

step "edge handler under workerd (tests/edge)"
tests/edge/run.sh
