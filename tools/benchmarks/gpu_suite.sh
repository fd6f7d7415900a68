#!/usr/bin/env bash
# The GPU benchmarks in one run on one GPU, each command's tables written to OUT:
#
#   tools/benchmarks/gpu_suite.sh [--cpu] [--dry] [--only REGEX] [OUT]
#
# Default (a CUDA GPU): every module at 8x256x56x56 against timm's, mmcv's and mmseg's
# classes (module_speed.py); PAM and Non-local at 2x512x64x128 and 1x512x128x256, lean,
# explicit and mmseg's/mmcv's (context_memory.py); the DANet head's whole-image inference, ours,
# explicit and mmseg's (seg_heads.py); training steps of Faster R-CNN R50-FPN at 800x1344,
# batch 2 (the plain ResNet; SE, CBAM, Non-local, GC, SimAM) and of DANet R50-D8 at 512x1024,
# batch 2 (ours and mmseg's head) (model_step.py); float32 first, then autocast; last, the
# tests with "cuda" in their name.
#   --cpu   the same commands on the CPU with tiny shapes and the toy configs (a smoke test;
#           no detector under autocast there: mmcv's CPU NMS takes float32 only)
#   --dry   print the commands, run nothing
#   --only  run only the steps whose name matches REGEX (grep -E)
# OUT defaults to $OUT, else /tmp/gpu_suite_out. Each step writes OUT/NAME.txt (its tables),
# OUT/NAME.log (progress, warnings, errors) and, for module_speed and model_step,
# OUT/NAME.json; OUT/summary.md lists every step with its exit status and seconds after the
# machine's description, and OUT/tables.md holds every table. Each step has a time limit, and
# no step starts once SUITE_BUDGET seconds (default 540) are spent, so that the suite fits one
# 10-minute command; the summary lists the steps left out, and --only runs them later.
#
# The OpenMMLab stack: if `$PYTHON -c "import mmdet, mmseg, mmcv"` fails, the GPU kit's
# setup_site.sh is sourced from MMATTN_GPU_KIT, ./.gpu-kit, ./shared/gpu or ../shared/gpu
# (whichever holds it): mmcv-lite with torchvision's NMS and RoIAlign.
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT" || exit 1
PY="${PYTHON:-python3}"
MODE=cuda
DRY=0
ONLY=''
OUT_DIR="${OUT:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) MODE=cpu ;;
    --dry) DRY=1 ;;
    --only) shift; ONLY="${1:-}" ;;
    -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) echo "gpu_suite: unknown option $1" >&2; exit 2 ;;
    *) OUT_DIR="$1" ;;
  esac
  shift
done
OUT_DIR="${OUT_DIR:-/tmp/gpu_suite_out}"
BUDGET="${SUITE_BUDGET:-540}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

if [ "$DRY" = 0 ]; then
  mkdir -p "$OUT_DIR" || exit 1
  if ! "$PY" -c "import mmdet, mmseg, mmcv" 2>/dev/null; then
    for kit in "${MMATTN_GPU_KIT:-}" .gpu-kit shared/gpu ../shared/gpu; do
      if [ -n "$kit" ] && [ -f "$kit/setup_site.sh" ]; then
        echo "gpu_suite: the OpenMMLab stack is not importable; sourcing $kit/setup_site.sh"
        # shellcheck disable=SC1090,SC1091
        source "$kit/setup_site.sh" || { echo "gpu_suite: $kit/setup_site.sh failed" >&2; exit 1; }
        export PYTHONPATH="$ROOT:$PYTHONPATH"
        break
      fi
    done
  fi
  if [ "$MODE" = cuda ] && ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu_suite: torch sees no CUDA device; use --cpu for the CPU smoke test" >&2
    exit 1
  fi
fi

START=$(date +%s)
SUMMARY="$OUT_DIR/summary.md"
TABLES="$OUT_DIR/tables.md"
FAILED=0
if [ "$DRY" = 0 ]; then
  {
    echo "# gpu_suite.sh ($MODE), $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    "$PY" -c "import torch, platform; print('- torch', torch.__version__, '| CUDA', torch.version.cuda, '| cuDNN', torch.backends.cudnn.version(), '| python', platform.python_version()); print('- device:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA device')"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | sed 's/^/- nvidia-smi: /'
    echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
    echo
    echo "| step | exit | seconds | limit |"
    echo "|---|---|---|---|"
  } > "$SUMMARY"
  : > "$TABLES"
fi

# step NAME LIMIT_SECONDS COMMAND...: run one benchmark into OUT/NAME.txt under a time limit
step() {
  local name="$1" limit="$2"
  shift 2
  if [ -n "$ONLY" ] && ! echo "$name" | grep -Eq "$ONLY"; then
    return 0
  fi
  if [ "$DRY" = 1 ]; then
    echo "[$name, limit ${limit}s] $*"
    return 0
  fi
  local now left rc t0
  now=$(date +%s)
  left=$((BUDGET - (now - START)))
  if [ "$left" -lt 15 ]; then
    echo "| $name | skipped: suite budget of ${BUDGET}s spent | | $limit |" >> "$SUMMARY"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== $name (limit ${limit}s): $*"
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$OUT_DIR/$name.txt" 2> "$OUT_DIR/$name.log"
  rc=$?
  [ "$rc" = 0 ] || FAILED=$((FAILED + 1))
  echo "| $name | $rc$([ "$rc" = 124 ] && echo ' (time limit)') | $(( $(date +%s) - t0 )) | $limit |" >> "$SUMMARY"
  {
    echo "## $name"
    echo
    echo '`'"$*"'`'" (exit $rc)"
    echo
    cat "$OUT_DIR/$name.txt"  # the tables (progress and warnings went to NAME.log)
    if [ "$rc" != 0 ]; then
      echo
      echo "last lines of $name.log:"
      echo
      tail -n 5 "$OUT_DIR/$name.log" | sed 's/^/    /'
    fi
    echo
  } >> "$TABLES"
  tail -n 3 "$OUT_DIR/$name.txt"
  [ "$rc" = 0 ] || tail -n 3 "$OUT_DIR/$name.log"
}

BENCH=tools/benchmarks
if [ "$MODE" = cuda ]; then
  DEV=(--device cuda)
  # on a GPU the fast-path switch changes nothing, so the references replace the plain row
  MS_ARGS=(--impls mmattn timm mmcv mmseg --shape 8 256 56 56 --repeat 10 --budget 1
           --timeout 60)
  CM_ARGS=(--families PAM NonLocal --train-shapes 2x512x64x128 1x512x128x256 --eval-shapes
           --max-quadratic-gib 60 --repeat 5 --timeout 120)
  SH_ARGS=(--impls ours ours-explicit mmseg --repeat 5 --max-quadratic-gib 60 --timeout 120)
  DET_SHAPE=(--shape 800 1344 --batch 2 --steps 10 --warmup 3)
  SEG_SHAPE=(--shape 512 1024 --batch 2 --steps 10 --warmup 3)
  DET_BASE=mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py
  DET_CFGS=(se:configs/faster_rcnn_se_r50_coco.py cbam:configs/faster_rcnn_cbam_r50_coco.py
            nonlocal:configs/faster_rcnn_nonlocal_r50_coco.py gc:configs/faster_rcnn_gc_r50_coco.py
            simam:configs/faster_rcnn_simam_r50_coco.py)
  DANET=configs/danet_r50-d8_cityscapes-512x1024_40k.py
  # all stages training (mmdet's config freezes the stem and layer1)
  DET_OPTS=(--cfg-options model.backbone.frozen_stages=-1)
  PLAIN=()
  L_MS=130; L_MS_AMP=60; L_CM=60; L_SH=40; L_MODEL=35; L_TESTS=120
else
  DEV=(--device cpu)
  MS_ARGS=(--modules SE NonLocal --impls mmattn plain mmcv --shape 2 16 8 8 --repeat 3
           --budget 0.2 --threads 1 --timeout 120)
  CM_ARGS=(--channels 16 --families PAM NonLocal --train-shapes 1x16x8x8 --eval-shapes
           --repeat 2 --timeout 120)
  SH_ARGS=(--impls ours mmseg --in-channels 32 --channels 16 --pam-channels 4 --feat-size 8 16
           --repeat 1 --threads 1 --timeout 120)
  DET_SHAPE=(--shape 64 64 --batch 1 --steps 1 --warmup 1 --threads 1)
  SEG_SHAPE=(--shape 32 64 --batch 1 --steps 1 --warmup 1 --threads 1)
  DET_BASE=configs/toy/faster_rcnn_r50_toy-coco.py
  DET_CFGS=(se:configs/toy/faster_rcnn_se_r50_toy-coco.py
            cbam-nonlocal:configs/toy/faster_rcnn_cbam-nonlocal_r50_toy-coco.py)
  DANET=configs/toy/danet_r18-d8_toy-cityscapes.py
  DET_OPTS=()
  # on the CPU the switch matters: time the plain formula too, after checking it
  PLAIN=(--plain)
  L_MS=200; L_MS_AMP=200; L_CM=200; L_SH=200; L_MODEL=200; L_TESTS=600
  export OMP_NUM_THREADS=1
fi

# float32 first, then autocast (bf16 for modules, heads and DANet; fp16 for Faster R-CNN:
# torchvision's RoIAlign has no bfloat16 backward)
for prec in fp32 amp; do
  if [ "$prec" = fp32 ]; then AMP=(); DET_AMP=(); SEG_AMP=(); MEM=(); sfx=fp32; L=$L_MS
  else AMP=(--amp bf16); DET_AMP=(--amp fp16); SEG_AMP=(--amp bf16); MEM=(--skip-memory); sfx=amp; L=$L_MS_AMP
  fi
  step "module_speed_$sfx" "$L" \
    "$PY" $BENCH/module_speed.py "${DEV[@]}" "${AMP[@]}" "${MS_ARGS[@]}" "${MEM[@]}" \
    --json "$OUT_DIR/module_speed_$sfx.json"
  step "context_memory_$sfx" $L_CM \
    "$PY" $BENCH/context_memory.py "${DEV[@]}" "${AMP[@]}" "${CM_ARGS[@]}"
  step "seg_heads_$sfx" $L_SH \
    "$PY" $BENCH/seg_heads.py "${DEV[@]}" "${AMP[@]}" "${SH_ARGS[@]}"
  if [ "$MODE" = cpu ] && [ "$prec" = amp ]; then
    DET_STEPS=()  # mmcv's CPU NMS takes float32 only: no detector under autocast on the CPU
    [ "$DRY" = 0 ] && echo "| model_step_faster_rcnn_*_amp | skipped: mmcv's CPU NMS takes float32 only | | |" >> "$SUMMARY"
  else
    DET_STEPS=("r50:$DET_BASE" "${DET_CFGS[@]}")
  fi
  for entry in "${DET_STEPS[@]}"; do
    name="${entry%%:*}"; cfg="${entry#*:}"
    plain=("${PLAIN[@]}"); [ "$name" = r50 ] && plain=()
    step "model_step_faster_rcnn_${name}_$sfx" $L_MODEL \
      "$PY" $BENCH/model_step.py "$cfg" "${plain[@]}" "${DEV[@]}" "${DET_AMP[@]}" \
      "${DET_SHAPE[@]}" "${DET_OPTS[@]}" --json "$OUT_DIR/model_step_faster_rcnn_${name}_$sfx.json"
  done
  step "model_step_danet_ours_$sfx" $L_MODEL \
    "$PY" $BENCH/model_step.py $DANET "${PLAIN[@]}" "${DEV[@]}" "${SEG_AMP[@]}" "${SEG_SHAPE[@]}" \
    --json "$OUT_DIR/model_step_danet_ours_$sfx.json"
  step "model_step_danet_mmseg_$sfx" $L_MODEL \
    "$PY" $BENCH/model_step.py $DANET "${DEV[@]}" "${SEG_AMP[@]}" "${SEG_SHAPE[@]}" \
    --cfg-options model.decode_head.type=DAHead \
    --json "$OUT_DIR/model_step_danet_mmseg_$sfx.json"
done

# the CUDA tests (every module against a float64 CPU reference; they skip without a GPU),
# last: their result, not their time, is what the suite reports
step cuda_tests $L_TESTS \
  "$PY" -m pytest -q -p no:cacheprovider tests/test_models -k cuda

if [ "$DRY" = 0 ]; then
  echo >> "$SUMMARY"
  echo "$FAILED step(s) exited non-zero; total $(( $(date +%s) - START )) s" >> "$SUMMARY"
  cat "$SUMMARY"
fi
[ "$FAILED" = 0 ]
