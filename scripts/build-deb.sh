#!/usr/bin/env bash
# Builds the Debian package of ssgen with dpkg-deb, from a staged tree:
#   /usr/bin/ssgen                              the release binary, stripped
#   /usr/share/doc/ssgen/README.md, copyright   the documentation
#   /lib/systemd/system/ssgen-serve.service     when dist/ssgen-serve.service exists
#                                               (and a postinst that adds its user)
# No cargo-deb: dpkg-deb is on every Debian machine, and the package is
# small enough to describe here.
#
# Usage: scripts/build-deb.sh [--bin PATH] [--out DIR]
#   --bin PATH   package this binary instead of building target/release/ssgen
#   --out DIR    where to write ssgen_<version>_<arch>.deb (default: target/deb)
# Prints the path of the package on stdout.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

bin=""
out="target/deb"
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "build-deb.sh: unknown argument $1 (use --bin PATH, --out DIR)" >&2; exit 1 ;;
    esac
done

if [ -z "$bin" ]; then
    cargo build --release --locked -p ssgen >&2
    bin="target/release/ssgen"
fi
[ -x "$bin" ] || { echo "build-deb.sh: $bin is not an executable; build it or give --bin" >&2; exit 1; }

# The version the binary reports is the package's.
version="$("$bin" --version | awk '{print $2}')"
case "$version" in
    [0-9]*) ;;
    *) echo "build-deb.sh: $bin --version gave no version" >&2; exit 1 ;;
esac
arch="$(dpkg --print-architecture)"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
# mktemp makes it 0700; it becomes the package's "./".
chmod 0755 "$stage"
install -D -m 0755 "$bin" "$stage/usr/bin/ssgen"
strip --strip-all "$stage/usr/bin/ssgen"
install -D -m 0644 README.md "$stage/usr/share/doc/ssgen/README.md"
cat > "$stage/usr/share/doc/ssgen/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ssgen

Files: *
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF
mkdir -p "$stage/DEBIAN"
if [ -f dist/ssgen-serve.service ]; then
    # The package's binary is /usr/bin/ssgen, not the /usr/local/bin of a
    # hand install.
    install -d "$stage/lib/systemd/system"
    sed 's|/usr/local/bin/ssgen|/usr/bin/ssgen|g' dist/ssgen-serve.service \
        > "$stage/lib/systemd/system/ssgen-serve.service"
    chmod 0644 "$stage/lib/systemd/system/ssgen-serve.service"
    # The unit runs as the system user ssgen in /srv/ssgen: made on install
    # (kept on removal, as Debian keeps system users). The service is not
    # started: `systemctl enable --now ssgen-serve` is the admin's choice.
    cat > "$stage/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ] && ! getent passwd ssgen >/dev/null; then
    useradd --system --home-dir /srv/ssgen --create-home --shell /usr/sbin/nologin ssgen
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
EOF
    chmod 0755 "$stage/DEBIAN/postinst"
fi

# The newest glibc symbol version the binary needs is the libc6 it needs.
glibc="$(objdump -T "$stage/usr/bin/ssgen" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1)"
depends="libc6 (>= ${glibc:-2.17}), libgcc-s1"

cat > "$stage/DEBIAN/control" <<EOF
Package: ssgen
Version: $version
Architecture: $arch
Maintainer: ssgen developers <ssgen@example.invalid>
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: $depends
Suggests: xdelta3, squashfs-tools, qemu-utils
Section: net
Priority: optional
Description: publish LXD and Incus images over simplestreams
 ssgen turns a directory of images into the simplestreams catalog
 (streams/v1/index.json and images.json) that both LXD and Incus accept,
 serves it over HTTPS with an upload API, checks any remote the way the
 clients read it, and mirrors, imports, prunes and pushes images.
EOF

mkdir -p "$out"
deb="$out/ssgen_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$deb" >&2
echo "$deb"
