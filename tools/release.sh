#!/usr/bin/env bash
# Ship a checkpoint and regenerate every published number from it:
#   tools/release.sh CKPT NAME [PARENT]   (PARENT: the shipped model a warm-started run grew from)
# NAME must be new: .gqc files name their model and carry its hash, so the old model stays
# installed (marked superseded_by NAME, its decoder only) and its files keep decoding.
# 1. fp16 weights + index prior + registry entry (tools/ship_model.py)
# 2. the prior re-measured under rate-optimised quantization (tools/rdoq_prior.py, one run per
#    "gamma:images" step of RDOQ_STEPS), the encoder's RDOQ strength (tools/tune_rdoq.py) and the
#    adaptive-rate multipliers (tools/tune_adaptive.py), the prior tempered to adaptive files' indices
#    (tools/temper_prior.py; TEMPER=0 skips it), block 0's spatial context model (tools/fit_context.py,
#    format v6; CONTEXT=0 skips it) and block 0's RDOQ under it (tools/tune_context_rdoq.py),
#    the encoder's index refinement (tools/tune_refine.py)
#    and the wide-codebook top of the ladder (tools/tune_wide.py; WIDE = QUALITY=K_bits,rdoq,lambda
#    settings; it runs last because the two tuners above treat every quality as narrow)
# 3. Kodak evaluation, registry numbers, RD plot and BD table (tools/eval_release.sh)
# 4. PARENT reduced to its decoder (tools/decoder_only.py)
set -euo pipefail
cd "$(dirname "$0")/.."
ckpt=${1:?usage: tools/release.sh CKPT NAME [PARENT]}
name=${2:?usage: tools/release.sh CKPT NAME [PARENT]}
parent=${3:-}
# VIA: intermediate run folders between PARENT and CKPT (training order), counted in the training record.
# REFINE_FROM=MODEL: copy MODEL's refinement setting instead of re-measuring it (refinement is opt-in).
via=(); for v in ${VIA:-}; do via+=(--via "$v"); done
# run one step and say how long it took (session 17's release: 2 + 4.5 + 10.5 + 6.5 + 2 + 7 + 45 min)
step() { local t0=$SECONDS; "$@"; echo "release.sh: $(( (SECONDS - t0) / 60 )) min $(( (SECONDS - t0) % 60 )) s: $*" >&2; }
step python tools/ship_model.py --ckpt "$ckpt" --name "$name" --default ${parent:+--parent "$parent"} ${via[@]+"${via[@]}"}
for rd in ${RDOQ_STEPS:-2:600 2.5:1400}; do
  step python tools/rdoq_prior.py --model "$name" --gamma "${rd%%:*}" --images "${rd##*:}"
done
step python tools/tune_rdoq.py --model "$name" --gammas 0,0.5,1,1.5,2,2.5,3,3.5,4 --write
step python tools/tune_adaptive.py --model "$name" --images 32 --write
# the prior tempered to the indices adaptive files code (p ** tau per block; docs/design.md, "Index prior")
# TEMPER_SEGMENTS=S > 1 adds a count-conditioned prior (format v5) on top; measured -0.2 % on held-out crops, so off
[ "${TEMPER:-1}" = 0 ] || step python tools/temper_prior.py --model "$name" --images "${TEMPER_IMAGES:-100}" --threads 2 --write
if [ "${TEMPER:-1}" != 0 ] && [ "${TEMPER_SEGMENTS:-1}" -gt 1 ]; then
  step python tools/temper_prior.py --model "$name" --images "${TEMPER_IMAGES:-100}" --threads 2 --segments "$TEMPER_SEGMENTS" --write
fi
# block 0's spatial context model in the prior (format v6; docs/design.md, "Block 0's spatial context"); CONTEXT=0 skips it
[ "${CONTEXT:-1}" = 0 ] || step python tools/fit_context.py --model "$name" --images "${CONTEXT_IMAGES:-300}" --write
# RDOQ for block 0 under that context model (tools/tune_context_rdoq.py); CONTEXT_RDOQ_FROM=MODEL copies MODEL's scale
if [ "${CONTEXT:-1}" != 0 ]; then
  if [ -n "${CONTEXT_RDOQ_FROM:-}" ]; then
    step python tools/tune_context_rdoq.py --model "$name" --inherit "$CONTEXT_RDOQ_FROM" --write
  else
    step python tools/tune_context_rdoq.py --model "$name" --images "${CONTEXT_RDOQ_IMAGES:-12}" --write
  fi
fi
if [ -n "${REFINE_FROM:-}" ]; then
  step python tools/tune_refine.py --model "$name" --inherit "$REFINE_FROM" --write
else
  step python tools/tune_refine.py --model "$name" --images ${REFINE_IMAGES:-12} --write
fi
step python tools/tune_wide.py --model "$name" --write "${WIDE:-8=18,1.5,300 9=18,1,150 10=20,0.5,74.4}"
step bash tools/eval_release.sh "$name"
# 4. the parent, now superseded, keeps only its decoder (its files still decode; tools/decoder_only.py)
if [ -n "$parent" ]; then step python tools/decoder_only.py "$parent"; fi
