#!/usr/bin/env bash
# `make train-digits`: trains the members of the digit ensemble, two at a
# time (one thread each, niced), then joins them into
# models/digits.safetensors with `todoke digits ensemble`, which fits the
# temperature on the validation fold. Logs go to target/train-digits/.
# MEMBERS: the quarter-width seeds (see models/README.md); EPOCHS: per member.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/todoke
MEMBERS="${MEMBERS:-11 12 13 14 15}"
EPOCHS="${EPOCHS:-40}"
OUT="${OUT:-models/digits.safetensors}"
WORK=target/train-digits
mkdir -p "$WORK"
started=$(date +%s)
printf '%s\n' $MEMBERS | xargs -P 2 -I{} sh -c \
  "RAYON_NUM_THREADS=1 nice -n 10 $BIN digits train --small --epochs $EPOCHS --seed {} --out $WORK/small{}.safetensors > $WORK/small{}.log 2>&1 && echo 'member {} trained'"
files=""
for s in $MEMBERS; do files="$files $WORK/small$s.safetensors"; done
$BIN digits ensemble --out "$OUT" $files | tee "$WORK/ensemble.log"
echo "train-digits: $(( ($(date +%s) - started) / 60 )) min; logs in $WORK"
