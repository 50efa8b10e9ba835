#!/usr/bin/env bash
# The paper-scale benchmark runs for one GPU session, in about 7 minutes on
# an H100/H200 (estimated; each run is cut at RUN_TIMEOUT seconds):
#
#   bash tools/misc/gpu_benchmark_suite.sh OUT_DIR
#
# writes OUT_DIR/<run>.json (tools/benchmark.py --out) and OUT_DIR/suite.log.
# Runs, all with random weights (--random-init, nothing downloaded):
#   voc_amp      voc.py (ResNet-50 + CLIP ViT-B/32, 224) at the authors'
#                batch, mixed precision: every phase ours and the
#                reference, the export of whole 375x500 images, and the whole
#                export (loading + inference + PNG writing) of E2E images
#   voc_fp32     match, refine and export without mixed precision
#   voc_bank     the prompt phase from the feature bank at the authors'
#                stage-2 batch (BANK_BATCH)
#   deits        voc_deits.py (DeiT-S CAM network, the authors' base)
#   vitb16       voc.py with CLIP ViT-B/16 (CLIP-ES's and WeCLIP's CLIP)
#   weaktr       voc_weaktr.py (the authors' recipe: WeakTr DeiT-S), match,
#                refine, the export of whole 375x500 images (2 scales x
#                flip) and the model selection's inference on them (scale
#                1.0 x flip, batch 1 as BestCAMSelectionHook reads VOC
#                train; the report projects one selection pass over 1,464
#                images)
#   weaktr_export the same export at EXPORT_BATCH images a batch, and the
#                selection, each with one step profiled by operator and
#                module
# Settings (environment): DEVICE=cuda BATCH=64 BANK_BATCH=128 ITERS=10
# WARMUP=3 E2E=2000 WORKERS=8 EXPORT_BATCH=32 RUN_TIMEOUT=150
# PYTHON=python3; small values
# with DEVICE=cpu make a quick smoke test of the commands.
# Offline machines: install the wheels of tools/misc/offline_wheels.sh first.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT_DIR=${1:?usage: bash tools/misc/gpu_benchmark_suite.sh OUT_DIR}
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-64}
BANK_BATCH=${BANK_BATCH:-128}
ITERS=${ITERS:-10}
WARMUP=${WARMUP:-3}
E2E=${E2E:-2000}
WORKERS=${WORKERS:-8}
EXPORT_BATCH=${EXPORT_BATCH:-32}
RUN_TIMEOUT=${RUN_TIMEOUT:-150}
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/suite.log"
: >"$LOG"

"$PYTHON" tools/misc/check_offline_env.py 2>&1 | tee -a "$LOG" || {
  echo 'suite: the environment lacks modules (above); nothing was run' | tee -a "$LOG"
  exit 1
}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm \
  --format=csv 2>&1 | tee -a "$LOG"

failed=0
run() {
  local name=$1
  shift
  echo "== $name: tools/benchmark.py $*" | tee -a "$LOG"
  local start=$SECONDS
  timeout "$RUN_TIMEOUT" "$PYTHON" tools/benchmark.py "$@" --random-init \
    --device "$DEVICE" --iters "$ITERS" --warmup "$WARMUP" \
    --out "$OUT_DIR/$name.json" >>"$LOG" 2>&1
  local status=$?
  echo "== $name: exit $status after $((SECONDS - start)) s" | tee -a "$LOG"
  [ "$status" -eq 0 ] || failed=$((failed + 1))
}

run voc_amp configs/semples/voc.py --amp --batch-size "$BATCH" \
  --export-end-to-end "$E2E" --export-num-workers "$WORKERS"
run voc_fp32 configs/semples/voc.py --batch-size "$BATCH" \
  --phase match refine export
run voc_bank configs/semples/voc.py --amp --batch-size "$BANK_BATCH" \
  --phase prompt --prompt-bank --ours
run deits configs/semples/voc_deits.py --amp --batch-size "$BATCH" \
  --phase match prompt refine export
run vitb16 configs/semples/voc.py --amp --batch-size "$BATCH" \
  --phase match refine --cfg-options model.clip.model_name=ViT-B-16
run weaktr configs/semples/voc_weaktr.py --amp --batch-size "$BATCH" \
  --phase match refine export select --export-image-size 375 500
run weaktr_export configs/semples/voc_weaktr.py --amp --ours \
  --phase export select --export-image-size 375 500 \
  --export-batch-size "$EXPORT_BATCH" --profile

grep -E '^(== |cam |match |prompt |refine |export |select |  [a-z]+ +[0-9.]+x|whole export|MFU)' \
  "$LOG" || true
echo "suite: $failed run(s) failed; figures in $OUT_DIR" | tee -a "$LOG"
[ "$failed" -eq 0 ]
