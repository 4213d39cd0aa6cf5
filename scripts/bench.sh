#!/usr/bin/env bash
# `make bench`: 200 synthetic pages at 300 dpi through `todoke run`.
# Prints pages per second and peak memory (both from todoke's own summary,
# cross-checked with GNU time's maximum resident set size).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/todoke
PAGES="${BENCH_PAGES:-200}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$BIN" synth --count "$PAGES" --seed 2026 --dpi 300 --out "$work/synth" >/dev/null
/usr/bin/time -v "$BIN" run "$work/synth/inbox" --register "$work/synth/register.csv" \
  --out "$work/out" 2> "$work/time.txt" | tee "$work/run.txt"
peak_kb=$(grep "Maximum resident set size" "$work/time.txt" | awk '{print $NF}')
wall=$(grep "Elapsed (wall clock)" "$work/time.txt" | awk '{print $NF}')
echo "bench: $PAGES pages, wall $wall, peak RSS $((peak_kb / 1024)) MB (GNU time)"
