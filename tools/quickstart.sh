#!/usr/bin/env bash
# README command 1: set up (once), then train Faster R-CNN with SE on the bundled toy COCO data
# through tools/train.py, evaluate it through tools/test.py with mmdet's COCO metric, and print
# the box mAP. Extra arguments go to tools/train.py (e.g. --cfg-options ...).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
# One thread unless the caller sets OMP_NUM_THREADS: torch's default of one thread per core
# slows this small model many times over when other jobs hold the cores, and one thread also
# makes the mAP repeatable (float sums are split among the threads, so another thread count
# gives other, equally valid, numbers).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export MKL_NUM_THREADS="${MKL_NUM_THREADS:-$OMP_NUM_THREADS}"
echo "[quickstart] OMP_NUM_THREADS=$OMP_NUM_THREADS (set it to use more threads)" >&2
PY="$ROOT/.venv/bin/python"
CONFIG=${CONFIG:-configs/toy/faster_rcnn_se_r50_toy-coco.py}
WORK_DIR=${WORK_DIR:-work_dirs/quickstart/$(date +%Y%m%d_%H%M%S)}

"$PY" tools/dataset_converters/make_toy_coco.py --out data/toy_coco
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" "$@"
CKPT=$(cat "$WORK_DIR/last_checkpoint")
"$PY" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK_DIR" | tee "$WORK_DIR/test_output.txt"
MAP=$(grep -E '^  coco/bbox_mAP: ' "$WORK_DIR/test_output.txt" | awk '{print $2}')
echo
echo "Faster R-CNN R50-FPN with SE on toy COCO: box mAP = ${MAP} (checkpoint: $CKPT)"
