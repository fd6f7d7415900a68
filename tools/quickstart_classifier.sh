#!/usr/bin/env bash
# README: set up (once), then train the SE-ResNet-50 toy classifier on the bundled toy ImageNet
# (handwritten digits, mmpretrain's ImageNet layout) through tools/train.py, evaluate it through
# tools/test.py with mmpretrain's accuracy, and print its top-1. With --detector, go on from its
# checkpoint: fine-tune the toy SE Faster R-CNN (init_cfg Pretrained, prefix='backbone.') and
# print its box mAP. Other arguments go to the classifier's tools/train.py.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DETECTOR=0
ARGS=()
for arg in "$@"; do
  if [[ "$arg" == --detector ]]; then DETECTOR=1; else ARGS+=("$arg"); fi
done
bash tools/setup_env.sh
# one thread unless the caller sets OMP_NUM_THREADS (see tools/quickstart.sh)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export MKL_NUM_THREADS="${MKL_NUM_THREADS:-$OMP_NUM_THREADS}"
echo "[quickstart] OMP_NUM_THREADS=$OMP_NUM_THREADS (set it to use more threads)" >&2
PY="$ROOT/.venv/bin/python"
CONFIG=configs/toy/resnet50_se_toy-imagenet.py
DET_CONFIG=configs/toy/faster_rcnn_se_r50_toy-coco_ft-cls.py
WORK_DIR=${WORK_DIR:-work_dirs/quickstart_classifier/$(date +%Y%m%d_%H%M%S)}

"$PY" tools/dataset_converters/make_toy_imagenet.py --out data/toy_imagenet
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR/classifier" ${ARGS[@]+"${ARGS[@]}"}
CKPT=$(cat "$WORK_DIR/classifier/last_checkpoint")
"$PY" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK_DIR/classifier" \
  | tee "$WORK_DIR/classifier/test_output.txt"
TOP1=$(grep -E '^  accuracy/top1: ' "$WORK_DIR/classifier/test_output.txt" | awk '{print $2}')
echo
echo "SE-ResNet-50 on toy ImageNet (10 classes): top-1 = ${TOP1} % (checkpoint: $CKPT)"
if [[ "$DETECTOR" == 1 ]]; then
  "$PY" tools/dataset_converters/make_toy_coco.py --out data/toy_coco
  "$PY" tools/train.py "$DET_CONFIG" --work-dir "$WORK_DIR/detector" \
    --cfg-options "model.backbone.init_cfg.checkpoint=$CKPT"
  DET_CKPT=$(cat "$WORK_DIR/detector/last_checkpoint")
  "$PY" tools/test.py "$DET_CONFIG" "$DET_CKPT" --work-dir "$WORK_DIR/detector" \
    | tee "$WORK_DIR/detector/test_output.txt"
  MAP=$(grep -E '^  coco/bbox_mAP: ' "$WORK_DIR/detector/test_output.txt" | awk '{print $2}')
  echo
  echo "SE-ResNet-50 on toy ImageNet: top-1 = ${TOP1} %"
  echo "Faster R-CNN fine-tuned from it on toy COCO: box mAP = ${MAP} (checkpoint: $DET_CKPT)"
fi
