#!/usr/bin/env bash
# Idempotent set-up shared by the README's commands: a virtual environment in .venv with the
# pinned OpenMMLab stack and mmattn installed in editable mode.
#
# mmcv 2.1.0 (the newest release mmdet 3.3.0 and mmseg 1.2.2 accept) has no wheel for current
# torch, so it is built from source once (about 20 minutes on 2 cores) and the wheel is kept in
# $MMATTN_CACHE (default ~/.cache/mmattn), keyed by the torch version it was built against.
#
# GPU users: set TORCH_SPEC to a CUDA build (e.g. TORCH_SPEC="torch==2.5.1" with the matching
# --index-url in PIP_EXTRA_INDEX_URL) before the first run; the mmcv build then compiles the CUDA
# ops too (it needs nvcc matching that torch). TORCHVISION_SPEC names the torchvision of that
# build (e.g. "torchvision==0.20.1"); by default the release paired with the installed torch.
#
# torchvision: mmengine needs it for init_cfg checkpoints 'torchvision://resnet50' (every
# Faster R-CNN config). It is installed where a build for the installed torch exists and works;
# PyPI's torchvision wheels are linked against PyPI's CUDA torch ("operator torchvision::nms
# does not exist" beside a CPU build), so with the CPU torch the set-up leaves it out and says so.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMATTN_VENV:-$ROOT/.venv}"
CACHE="${MMATTN_CACHE:-$HOME/.cache/mmattn}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
MMCV_VERSION=2.1.0
STAMP="$VENV/.mmattn-setup-done"

log() { echo "[setup] $*" >&2; }

# The stamp records what was installed; a changed requirement list re-runs the install.
REQ_HASH=$(cat "$ROOT/tools/setup_env.sh" "$ROOT/setup.py" | sha1sum | cut -c1-12)
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$REQ_HASH" ]]; then
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check)

log "installing $TORCH_SPEC"
"${PIP[@]}" -q --upgrade pip
# mmcv 2.1.0's setup.py imports pkg_resources, which setuptools 81 dropped; torch 2.13 needs
# setuptools >= 77.0.3. Both hold for 77.0.3 <= setuptools < 81.
"${PIP[@]}" -q "$TORCH_SPEC" 'numpy<2' 'setuptools>=77.0.3,<81' wheel ninja

TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__)')
WHEEL_DIR="$CACHE/mmcv-$MMCV_VERSION-torch$TORCH_VERSION"
if ! ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
  log "building mmcv $MMCV_VERSION with its compiled ops against torch $TORCH_VERSION (about 20 minutes, once per machine)"
  mkdir -p "$WHEEL_DIR.part"
  MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$PY" -m pip wheel --no-deps --no-build-isolation \
    --no-binary mmcv -w "$WHEEL_DIR.part" "mmcv==$MMCV_VERSION"
  rm -rf "$WHEEL_DIR" && mv "$WHEEL_DIR.part" "$WHEEL_DIR"
fi
"${PIP[@]}" -q "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl

log "installing mmengine, mmdet, mmseg, mmpretrain and mmattn"
# ftfy and regex: mmseg imports them without declaring them. mmpretrain 1.2.0, the last release
# that accepts mmcv 2.1, imports torchvision throughout (datasets, metrics, model utilities): its
# configs need the torchvision below.
# torch is named again so that no dependency can swap it for another build: the mmcv wheel is
# bound to the torch it was compiled against.
"${PIP[@]}" -q -e "$ROOT[tests]" 'mmengine==0.10.7' 'mmdet==3.3.0' 'mmsegmentation==1.2.2' \
  'mmpretrain==1.2.0' ftfy regex 'numpy<2' "torch==$TORCH_VERSION"
check_torch_kept() {
  "$PY" -c "import torch, sys; sys.exit(torch.__version__ != '$TORCH_VERSION')" \
    || { log "torch changed during the install; the mmcv wheel needs torch $TORCH_VERSION"
         exit 1; }
}
check_torch_kept

# torchvision 0.N+15 is released with torch 2.N and pins it exactly; naming torch again keeps
# pip from "upgrading" torch to the build that torchvision was made for.
TV_SPEC="${TORCHVISION_SPEC:-}"
if [[ -z "$TV_SPEC" && "$TORCH_VERSION" =~ ^2\.([0-9]+)\. ]]; then
  TV_SPEC="torchvision==0.$((BASH_REMATCH[1] + 15)).*"
fi
tv_error() {  # prints nothing if torchvision imports and runs its compiled ops, else its error
  local out
  if ! out=$("$PY" -W ignore -c 'import torch, torchvision
torchvision.ops.nms(torch.zeros(1, 4), torch.ones(1), 0.5)' 2>&1); then
    echo "${out##*$'\n'}"
  fi
}
TV_NOTE=""
if [[ -z "$(tv_error)" ]]; then
  : # a working torchvision is already there
elif [[ -z "$TV_SPEC" ]]; then
  TV_NOTE="no torchvision release is known to pair with torch $TORCH_VERSION; set TORCHVISION_SPEC"
else
  log "installing $TV_SPEC for torch $TORCH_VERSION"
  if TV_OUT=$("${PIP[@]}" -q "torch==$TORCH_VERSION" "$TV_SPEC" 'numpy<2' 2>&1); then
    check_torch_kept
    TV_ERR=$(tv_error)
    if [[ -n "$TV_ERR" ]]; then
      TV_NOTE="$TV_SPEC installs but does not work with torch $TORCH_VERSION ($TV_ERR)"
    fi
  else
    TV_WHY=$(echo "$TV_OUT" | grep -m1 -E '^ERROR' || echo "$TV_OUT" | tail -n 1)
    TV_NOTE="pip found no $TV_SPEC for torch $TORCH_VERSION: $TV_WHY"
  fi
fi
if [[ -n "$TV_NOTE" ]]; then
  # A torchvision that cannot import is worse than none: mmdet, timm and mmengine then fail
  # on "import torchvision" instead of doing without it.
  "$PY" -m pip uninstall -q -y torchvision >/dev/null 2>&1 || true
  if [[ -n "${TORCHVISION_SPEC:-}" ]]; then
    log "error: TORCHVISION_SPEC=$TORCHVISION_SPEC: $TV_NOTE"
    exit 1
  fi
  log "note: torchvision is not installed: $TV_NOTE."
  log "note: configs whose init_cfg asks for 'torchvision://...' weights (every"
  log "      configs/faster_rcnn_*) cannot load them here; tools/train.py says so and how to"
  log "      give the weights as a file."
  log "      mmpretrain imports torchvision, so its configs (configs/imagenet/, the toy"
  log "      classifier) cannot run here either; tools/train.py says so."
  log "      The detection and segmentation toy configs and the tests need no torchvision."
  log "      For a CUDA or CPU pair from"
  log "      download.pytorch.org: TORCH_SPEC=... TORCHVISION_SPEC=... PIP_EXTRA_INDEX_URL=..."
fi
"$PY" -c 'import mmcv.ops, mmdet.models, mmseg.models, mmattn' >/dev/null
if [[ -z "$TV_NOTE" ]]; then
  "$PY" -c 'import mmpretrain.models, mmpretrain.datasets, mmpretrain.evaluation' >/dev/null
fi
echo "$REQ_HASH" > "$STAMP"
log "done: $VENV"
