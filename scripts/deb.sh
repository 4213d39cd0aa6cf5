#!/usr/bin/env bash
# make deb: target/debian/todoke_<version>_amd64.deb, built by cargo-deb
# (pinned below; installed once into ~/.cargo/bin, a few minutes on 2 cores).
# Prints the package's path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_DEB_VERSION=3.8.0

bash scripts/setup.sh >&2
# dpkg-shlibdeps (dpkg-dev) turns the libraries the binary links into
# Depends; objcopy/strip (binutils) take the debug symbols out.
missing=""
for p in dpkg-dev binutils; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
  echo "deb: installing cargo-deb $CARGO_DEB_VERSION (cargo install --locked)" >&2
  cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked >&2
fi
# Files the package needs in another form than the checkout holds them:
# pdfium without its symbol table (the symbols pdfium-render binds are the
# dynamic ones, kept), licences in UTF-8, changelog and manual gzipped.
STAGE=target/deb-assets
rm -rf "$STAGE"
mkdir -p "$STAGE"
strip --strip-unneeded --remove-section=.comment -o "$STAGE/libpdfium.so" .deps/lib/libpdfium.so
cp -r .deps/pdfium-licenses "$STAGE/pdfium-licenses"
python3 - "$STAGE/pdfium-licenses" <<'PY'
import pathlib, sys
for p in pathlib.Path(sys.argv[1]).rglob("*"):
    if p.is_file():
        b = p.read_bytes()
        try:
            b.decode("utf-8")
        except UnicodeDecodeError:
            p.write_bytes(b.decode("latin-1").encode("utf-8"))
PY
gzip -9n < debian/changelog > "$STAGE/changelog.gz"
gzip -9n < debian/todoke.1 > "$STAGE/todoke.1.gz"
rm -f target/debian/todoke_*.deb
# --strip: the release profile keeps line tables for backtraces (debug = 1),
# 150 MB of them; the package ships the program without.
cargo deb --strip >&2
ls target/debian/todoke_*_amd64.deb
