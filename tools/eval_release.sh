#!/usr/bin/env bash
# Regenerate the published numbers of a shipped model (no retraining, no re-export):
#   tools/eval_release.sh [NAME]
#   KEEP_STREAMS=DIR tools/eval_release.sh NAME  (also keep the Kodak .gqc files in DIR; with QUALITIES too)
#   QUALITIES=8,9,10 tools/eval_release.sh NAME   (re-evaluate only these qualities and merge them
#                                                  into the published results: tools/merge_results.py)
# Kodak evaluation from real .gqc files (gqcodec eval) -> docs/results/kodak/, the registry's
# Kodak numbers, the RD plot and the BD-rate table (docs/results/kodak/bd.md).
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-gq-n128-c320}
out=docs/results/kodak
anchors=../shared/anchors
mkdir -p "$out"
if [ -n "${QUALITIES:-}" ]; then
  [ -f "$out/gqcodec-$name.json" ] || { echo "error: QUALITIES needs published results to merge into: $out/gqcodec-$name.json"; exit 2; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  gqcodec eval --model "$name" --qualities "$QUALITIES" --out "$tmp/new.json" --csv "$tmp/new.csv" --threads "${THREADS:-2}" --force \
    ${KEEP_STREAMS:+--keep-streams "$KEEP_STREAMS"}
  python tools/merge_results.py "$out/gqcodec-$name.json" "$tmp/new.json" --csv "$out/gqcodec-$name.csv" "$tmp/new.csv"
else
  gqcodec eval --model "$name" --out "$out/gqcodec-$name.json" --csv "$out/gqcodec-$name.csv" --threads "${THREADS:-2}" --force \
    ${KEEP_STREAMS:+--keep-streams "$KEEP_STREAMS"}
fi
python tools/update_registry.py "$name" "$out/gqcodec-$name.json"
gqcodec plot "$out/gqcodec-$name.json" --out "$out/rd.png" --force
{
  echo "| anchor | BD-rate (cubic) | BD-PSNR (cubic) | BD-rate (PCHIP) | BD-PSNR (PCHIP) |"
  echo "|---|---|---|---|---|"
  for a in pillow-kodak/jpeg420.json pillow-kodak/webp.json pillow-kodak/avif.json pillow-kodak/jpeg2000.json \
           compressai-kodak/compressai-bmshj2018-factorized_mse_cpu.json compressai-kodak/compressai-bmshj2018-hyperprior_mse_cpu.json; do
    line=$(gqcodec bd "$anchors/$a" "$out/gqcodec-$name.json" --json 2>&1 || true)
    python - "$a" "$line" <<'PY'
import json, sys
a, line = sys.argv[1], sys.argv[2]
try:
    r = json.loads(line)
except ValueError:
    print(f"| {a} | n/a: {line.strip()[:100]} | | | |")
    raise SystemExit
c, p = r["cubic"], r["pchip"]
fmt = lambda d, k, f: (f % d[k]) if d.get(k) is not None else "n/a"
print(f"| {a} | {fmt(c, 'bd_rate', '%+.1f %%')} | {fmt(c, 'bd_psnr', '%+.2f dB')} | "
      f"{fmt(p, 'bd_rate', '%+.1f %%')} | {fmt(p, 'bd_psnr', '%+.2f dB')} |")
PY
  done
} | tee "$out/bd.md"
