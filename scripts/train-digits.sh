#!/usr/bin/env bash
# `make train-digits`: trains the members of the digit ensemble two at a
# time (one thread each, niced), then joins them into
# models/digits.safetensors with `todoke digits ensemble`, which fits the
# temperature on the validation fold and prints the risk-coverage the
# thresholds are picked from. Logs go to target/train-digits/.
# MEMBERS: shape:seed pairs, the shape full or small, either followed by
# +deskew for a network that reads deskewed digits; see models/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/todoke
MEMBERS="${MEMBERS:-small:15 small:16 small+deskew:21 small+deskew:22 small+deskew:23}"
EPOCHS="${EPOCHS:-16}"
OUT="${OUT:-models/digits.safetensors}"
WORK=target/train-digits
mkdir -p "$WORK"
started=$(date +%s)
name_of() {
  local shape=${1%%:*}
  echo "${shape/+/-}${1##*:}"
}
train_one() {
  local shape=${1%%:*} seed=${1##*:} flags="" name
  name=$(name_of "$1")
  case "$shape" in small*) flags="--small" ;; esac
  case "$shape" in *+deskew) flags="$flags --deskew" ;; esac
  RAYON_NUM_THREADS=1 nice -n "${TRAIN_NICE:-10}" "$BIN" digits train $flags --epochs "$EPOCHS" --seed "$seed" \
    --out "$WORK/$name.safetensors" > "$WORK/$name.log" 2>&1
  echo "train-digits: member $1 trained"
}
export -f train_one name_of
export BIN EPOCHS WORK TRAIN_NICE
printf '%s\n' $MEMBERS | xargs -P 2 -I{} bash -c 'train_one {}'
files=""
for m in $MEMBERS; do files="$files $WORK/$(name_of "$m").safetensors"; done
"$BIN" digits ensemble --out "$OUT" $files | tee "$WORK/ensemble.log"
echo "train-digits: $(( ($(date +%s) - started) / 60 )) min; logs in $WORK"
