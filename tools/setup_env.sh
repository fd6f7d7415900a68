#!/usr/bin/env bash
# Idempotent set-up shared by the README's commands: a virtual environment in .venv with the
# pinned OpenMMLab stack and mmattn installed in editable mode.
#
# mmcv 2.1.0 (the newest release mmdet 3.3.0 and mmseg 1.2.2 accept) has no wheel for current
# torch, so it is built from source once (about 20 minutes on 2 cores) and the wheel is kept in
# $MMATTN_CACHE (default ~/.cache/mmattn), keyed by the torch version it was built against.
#
# torch: PyPI's torch 2.13.0 build (TORCH_SPEC, default 'torch===2.13.0': the exact version,
# so that pip does not take a '+cpu' build from a local wheel folder). It ships the CUDA runtime
# as packages (about 4 GB in all) and runs on machines without a GPU as well; its CPU results are
# those of the CPU-only build. It is the build PyPI's torchvision is made for, and torchvision is
# needed by mmpretrain (which imports it everywhere) and by 'torchvision://' checkpoints; no
# torchvision on PyPI loads beside a CPU-only torch ("operator torchvision::nms does not exist").
#
# Another torch (a CUDA build from download.pytorch.org, say): set TORCH_SPEC, TORCHVISION_SPEC
# and the index in PIP_EXTRA_INDEX_URL before the first run, e.g. TORCH_SPEC="torch==2.5.1"
# TORCHVISION_SPEC="torchvision==0.20.1" PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cu121;
# with a matching nvcc on the PATH the mmcv build then compiles the CUDA ops too.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMATTN_VENV:-$ROOT/.venv}"
CACHE="${MMATTN_CACHE:-$HOME/.cache/mmattn}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch===2.13.0}"
MMCV_VERSION=2.1.0
STAMP="$VENV/.mmattn-setup-done"

log() { echo "[setup] $*" >&2; }

# torchvision 0.N+15 is released with torch 2.N.P as 0.N+15.P, and pins it exactly
if [[ -n "${TORCHVISION_SPEC:-}" ]]; then
  TV_SPEC="$TORCHVISION_SPEC"
elif [[ "$TORCH_SPEC" =~ ^torch(={2,3})2\.([0-9]+)\.([0-9]+)$ ]]; then
  TV_SPEC="torchvision${BASH_REMATCH[1]}0.$((BASH_REMATCH[2] + 15)).${BASH_REMATCH[3]}"
else
  log "error: TORCH_SPEC=$TORCH_SPEC: set TORCHVISION_SPEC to the torchvision of that build"
  exit 1
fi

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

log "installing $TORCH_SPEC and $TV_SPEC"
"${PIP[@]}" -q --upgrade pip
# mmcv 2.1.0's setup.py imports pkg_resources, which setuptools 81 dropped; torch 2.13 needs
# setuptools >= 77.0.3. Both hold for 77.0.3 <= setuptools < 81.
"${PIP[@]}" -q "$TORCH_SPEC" "$TV_SPEC" 'numpy<2' 'setuptools>=77.0.3,<81' wheel ninja

TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__)')
# the version pip knows the installed build by (torch.__version__ may add a local label, as
# '2.13.0+cu130' for PyPI's '2.13.0'); later installs name it exactly, so that no dependency
# swaps the build the mmcv wheel is compiled against
TORCH_PIN="torch===$("$PY" -c 'import importlib.metadata as m; print(m.version("torch"))')"
WHEEL_DIR="$CACHE/mmcv-$MMCV_VERSION-torch$TORCH_VERSION"
if ! ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
  log "building mmcv $MMCV_VERSION with its compiled ops against torch $TORCH_VERSION (about 20 minutes, once per machine)"
  mkdir -p "$WHEEL_DIR.part"
  # --no-cache-dir: pip's own wheel cache would hand back a wheel built against another torch
  MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$PY" -m pip wheel --no-deps --no-build-isolation \
    --no-cache-dir --no-binary mmcv -w "$WHEEL_DIR.part" "mmcv==$MMCV_VERSION"
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
  'mmpretrain==1.2.0' ftfy regex 'numpy<2' "$TORCH_PIN"
check_torch_kept() {
  "$PY" -c "import torch, sys; sys.exit(torch.__version__ != '$TORCH_VERSION')" \
    || { log "torch changed during the install; the mmcv wheel needs torch $TORCH_VERSION"
         exit 1; }
}
check_torch_kept

# torchvision must import and run its compiled ops beside this torch: mmpretrain imports it
TV_ERR=$("$PY" -W ignore -c 'import torch, torchvision
torchvision.ops.nms(torch.zeros(1, 4), torch.ones(1), 0.5)' 2>&1 | tail -n 1) || {
  log "error: $TV_SPEC does not work beside torch $TORCH_VERSION: $TV_ERR"
  log "       install the torchvision built for this torch (TORCHVISION_SPEC, from the index"
  log "       the torch came from)"
  exit 1
}
"$PY" -c 'import mmcv.ops, mmdet.models, mmseg.models, mmpretrain.models, mmattn' >/dev/null
echo "$REQ_HASH" > "$STAMP"
log "done: $VENV"
