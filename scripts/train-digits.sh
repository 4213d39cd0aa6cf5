#!/usr/bin/env bash
# `make train-digits`: trains the members of the digit ensemble two at a
# time (one thread each, niced), then joins them into
# models/digits.safetensors with `todoke digits ensemble`, which fits the
# temperature on the validation fold and prints the risk-coverage the
# thresholds are picked from. Logs go to target/train-digits/.
# MEMBERS: width:seed pairs (full or small); see models/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/todoke
MEMBERS="${MEMBERS:-full:1 small:11 small:12}"
EPOCHS="${EPOCHS:-40}"
OUT="${OUT:-models/digits.safetensors}"
WORK=target/train-digits
mkdir -p "$WORK"
started=$(date +%s)
train_one() {
  local width=${1%%:*} seed=${1##*:} flag=""
  [ "$width" = small ] && flag="--small"
  RAYON_NUM_THREADS=1 nice -n 10 "$BIN" digits train $flag --epochs "$EPOCHS" --seed "$seed" \
    --out "$WORK/$width$seed.safetensors" > "$WORK/$width$seed.log" 2>&1
  echo "train-digits: member $1 trained"
}
export -f train_one
export BIN EPOCHS WORK
printf '%s\n' $MEMBERS | xargs -P 2 -I{} bash -c 'train_one {}'
files=""
for m in $MEMBERS; do files="$files $WORK/${m%%:*}${m##*:}.safetensors"; done
"$BIN" digits ensemble --out "$OUT" $files | tee "$WORK/ensemble.log"
echo "train-digits: $(( ($(date +%s) - started) / 60 )) min; logs in $WORK"
