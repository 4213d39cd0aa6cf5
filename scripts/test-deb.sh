#!/usr/bin/env bash
# make test-deb: the Debian package works without the checkout.
#
# Builds the package, checks it with lintian (no errors allowed; warnings are
# printed) and the unit with systemd-analyze, unpacks it with dpkg -x into an
# empty root, and from a folder outside the checkout, with no TODOKE_*
# variable set, runs the unpacked todoke: --version must name forms, model
# and pdfium inside that root (found relative to the binary: the checkout's
# forms/, models/ and .deps/ are not reachable by an installed binary, and
# this asserts it), then `init`, `run` on the samples and `watch` on a few of
# them. Their records must be the ones `make demo` writes from the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOUT=$PWD

DEB=$(bash scripts/deb.sh | tail -n 1)
echo "test-deb: package $DEB ($(du -h "$DEB" | cut -f1))"

if ! command -v lintian >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq lintian >/dev/null
fi
echo "test-deb: lintian (errors fail, warnings are listed)"
lintian --fail-on error --tag-display-limit 0 "$DEB" || {
  echo "test-deb: lintian found errors" >&2
  exit 1
}

TMP=$(mktemp -d /tmp/todoke-deb.XXXXXX)
cleanup() {
  if [ -n "${DAEMON:-}" ]; then kill "$DAEMON" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
ROOT=$TMP/root
dpkg -x "$DEB" "$ROOT"
BIN=$ROOT/usr/bin/todoke

dpkg-deb -f "$DEB" Depends | tee "$TMP/depends.txt"
for p in libtesseract5 liblept5 tesseract-ocr-eng; do
  grep -Eq "(^|, )$p( |,|$)" "$TMP/depends.txt" || { echo "test-deb: does not depend on $p" >&2; exit 1; }
done
if grep -q -- "-dev" "$TMP/depends.txt"; then echo "test-deb: depends on a -dev package" >&2; exit 1; fi

# /usr/lib/systemd/system is /lib/systemd/system on Debian 12 (merged /usr).
UNIT=$ROOT/usr/lib/systemd/system/todoke.service
grep -qx "ExecStart=/usr/bin/todoke watch --config /srv/todoke/todoke.toml" "$UNIT"
if command -v systemd-analyze >/dev/null 2>&1; then
  # The unit as installed, but for ExecStart pointing at the unpacked binary
  # (verify checks that it exists); any complaint fails.
  mkdir "$TMP/unit"
  sed "s|^ExecStart=/usr/bin/todoke|ExecStart=$ROOT/usr/bin/todoke|" "$UNIT" > "$TMP/unit/todoke.service"
  complaints=$(cd "$TMP/unit" && systemd-analyze verify "$TMP/unit/todoke.service" 2>&1) || {
    echo "$complaints" >&2; exit 1; }
  [ -z "$complaints" ] || { echo "test-deb: systemd-analyze verify: $complaints" >&2; exit 1; }
  echo "test-deb: systemd-analyze verify: ok"
fi

# Everything from here runs outside the checkout with nothing pointing at it.
cd "$TMP"
unset TODOKE_FORMS TODOKE_MODEL TODOKE_PDFIUM TODOKE_FONT
export TODOKE_LOG=warn

"$BIN" --version | tee version.txt
python3 - "$ROOT" "$CHECKOUT" version.txt <<'PY'
import sys
root, checkout, path = sys.argv[1:]
lines = dict(l.split(": ", 1) for l in open(path).read().splitlines()[1:])
for key, rel in [("forms", "/usr/share/todoke/forms"),
                 ("model", "/usr/share/todoke/models/digits.safetensors"),
                 ("pdfium", "/usr/lib/todoke/libpdfium.so")]:
    line = lines[key]
    assert line.startswith(root + rel + " (install)"), f"{key} not from the unpacked root: {line}"
    assert checkout not in line, f"{key} from the checkout: {line}"
assert "infant-checkup 1" in lines["forms"] and "pregnancy-notification 1" in lines["forms"], lines["forms"]
assert ", loaded" in lines["pdfium"] and "build 159.0.8149.0" in lines["pdfium"], lines["pdfium"]
assert "sha256 " in lines["model"], lines["model"]
print("test-deb: forms, model and pdfium come from the unpacked root")
PY

# The checkout's data is input here, copied: the binary never sees the checkout.
cp -r "$CHECKOUT/samples/inbox" inbox
cp "$CHECKOUT/seeds/register.csv" register.csv

"$BIN" init city
test -f city/forms/pregnancy-notification.toml && test -f city/forms/infant-checkup.pdf
grep -q '^forms_dir = "forms"$' city/todoke.toml
"$BIN" run inbox --register register.csv --out run-out --config city/todoke.toml | tee run.txt

# The daemon on a few of the samples (a TIFF, a PDF, a JPEG, two PNGs).
cp register.csv city/register.csv
sed -i -e 's/^quiet_secs = 5.0/quiet_secs = 0.5/' -e 's/^rescan_secs = 30.0/rescan_secs = 1.0/' \
  -e 's/^close_at = "Mon 09:00"/close_at = ""/' city/todoke.toml
"$BIN" watch --config city/todoke.toml 2> watch.log &
DAEMON=$!
FEW="honcho/scan-0002.tif sakura/scan-0009.pdf honcho/scan-0003.jpg sakura/scan-0001.png honcho/scan-0006.png"
for f in $FEW; do cp "inbox/$f" "city/inbox/$f"; done
n=$(echo $FEW | wc -w)
for _ in $(seq 1 240); do
  done_=$("$BIN" status --config city/todoke.toml --lang en | awk '$1 == "read" || $1 == "quarantined" { s += $2 } END { print s + 0 }')
  [ "$done_" -ge "$n" ] && break
  sleep 0.5
done
kill -TERM "$DAEMON"
wait "$DAEMON"
DAEMON=
[ "$done_" -ge "$n" ] || { cat watch.log; echo "test-deb: the daemon read $done_ of $n files" >&2; exit 1; }
"$BIN" batch close --config city/todoke.toml | tee close.txt
"$BIN" status --config city/todoke.toml --lang en

# The same batch from the checkout, as `make demo` makes it.
make -C "$CHECKOUT" --no-print-directory demo OUT="$TMP/demo" > demo.txt
cat demo.txt

python3 - run-out/batches city/out/batches demo/batches "$n" <<'PY'
import json, pathlib, sys
run, watch, demo, n = [pathlib.Path(a) for a in sys.argv[1:4]] + [int(sys.argv[4])]

def only_batch(d):
    (b,) = [p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert (b / "READY").exists(), b
    return b

run, watch, demo = only_batch(run), only_batch(watch), only_batch(demo)

def records(b):
    return {(r["source"], r["page"]): r for r in map(json.loads, (b / "records.jsonl").read_text().splitlines())}

def text(b, name):
    # The batch id is in CSV rows; everything else must match byte for byte.
    return (b / name).read_bytes().replace(b.name.encode(), b"BATCH")

demo_records, run_records = records(demo), records(run)
assert demo_records == run_records, "run's records differ from make demo's"
files = sorted(p.name for p in demo.iterdir())
assert files == sorted(p.name for p in run.iterdir()), (files, sorted(p.name for p in run.iterdir()))
for name in files:
    if name.endswith(".csv"):
        assert text(run, name) == text(demo, name), f"{name} differs"
m_run, m_demo = (json.loads((b / "manifest.json").read_text()) for b in (run, demo))
for key in ["program", "reader", "templates", "counts", "counts_by_form", "quarantined"]:
    assert m_run[key] == m_demo[key], f"manifest {key}: {m_run[key]} != {m_demo[key]}"

watch_records = records(watch)
assert len({s for s, _ in watch_records}) == n, sorted(watch_records)
for key, r in watch_records.items():
    assert r == demo_records[key], f"watch record {key} differs from make demo's"
statuses = sorted(r["status"] for r in demo_records.values())
print(f"test-deb: run: {len(run_records)} records of {len({s for s, _ in run_records})} files "
      f"identical to make demo's ({', '.join(f'{s} {statuses.count(s)}' for s in sorted(set(statuses)))}), "
      f"CSVs identical but for the batch id; watch: {len(watch_records)} records of {n} files identical")
PY
echo "1 passed, 0 failed"
