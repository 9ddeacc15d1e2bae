#!/usr/bin/env bash
# One training call on a lent GPU through the device tool (docs/training.md has the whole procedure).
#
# On this machine, once:   python tools/device_pack.py --hide-superseded   (-> .trainpack, ignored, fits the 64 MiB tree;
#                          afterwards python tools/device_pack.py --restore)
# Then the device tool:    run(command="bash tools/device_train.sh", carry=[".trainpack"], timeout_s=600)
#
# It checks the device (tools/device_check.py -> $OUT/device_check.json), trains for LIMIT_S seconds
# (resuming $RUN/ckpt.pt if an earlier call on the same warm machine left one, else warm-starting from
# INIT), and returns the log and the full checkpoint split into 15 MiB parts ($OUT/ckpt.part-NN; the
# tool returns files of at most 16 MiB). Back here: cat ckpt.part-* > ckpt.pt.
# Settings (environment): LIMIT_S (the run's training seconds over all calls, default 480), BATCH (32), CROP (192), LR (6e-5), LR_END (5e-6),
# STEPS (a cap, default 1000000), INIT (the default model's weights), PACK (.trainpack), DEVICE (cuda),
# RUN (.devrun/run), PYTHON (python3), PRECISION (fp32; bf16 = gqcodec train --precision bf16, not yet measured on a GPU).
set -u -o pipefail
: "${OUT:?OUT is not set: run this through the device tool, or set OUT to a folder for the results}"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
LIMIT_S=${LIMIT_S:-480}; BATCH=${BATCH:-32}; CROP=${CROP:-192}; LR=${LR:-6e-5}; LR_END=${LR_END:-5e-6}
STEPS=${STEPS:-1000000}; PACK=${PACK:-.trainpack}; DEVICE=${DEVICE:-cuda}; RUN=${RUN:-.devrun/run}
PRECISION=${PRECISION:-fp32}
INIT=${INIT:-$($PY -c 'from gqcodec import zoo; print(zoo.weights_path())')} || exit 1

if [ -d .whl ]; then  # wheels of packages the device image lacks (device README)
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
[ -d "$PACK" ] || { echo "error: training images not found: $PACK (run tools/device_pack.py and carry it)"; exit 2; }

VAL=500
if ! $PY tools/device_check.py --device "$DEVICE" --data "$PACK" --batch "$BATCH" --crop "$CROP" > "$OUT/device_check.json" 2> "$OUT/device_check.err"; then
  echo "device check failed:"; cat "$OUT/device_check.json" "$OUT/device_check.err"; exit 3
fi
cat "$OUT/device_check.json"
grep -q '"search_matches": true' "$OUT/device_check.json" || { VAL=0; echo "GQ search differs on $DEVICE: validation off"; }
[ -s "$OUT/device_check.err" ] || rm -f "$OUT/device_check.err"

mkdir -p "$RUN"
$PY -m gqcodec.cli train --run-dir "$RUN" --data "$PACK" --device "$DEVICE" --batch "$BATCH" --crop "$CROP" \
  --lr "$LR" --lr-end "$LR_END" --steps "$STEPS" --time-limit "$LIMIT_S" --init "$INIT" \
  --precision "$PRECISION" --val-every "$VAL" --ckpt-every 1000 --log-every 100 --no-progress > "$OUT/train.log" 2>&1
rc=$?
tail -n 1 "$OUT/train.log"
[ -f "$RUN/ckpt.pt" ] && split -b 15M -d "$RUN/ckpt.pt" "$OUT/ckpt.part-"
[ -f "$RUN/log.jsonl" ] && cp "$RUN/log.jsonl" "$OUT/log.jsonl"
ls -l "$OUT"
exit $rc
