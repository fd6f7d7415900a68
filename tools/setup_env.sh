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
# ops too (it needs nvcc matching that torch).
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

log "installing mmengine, mmdet, mmseg and mmattn"
# ftfy and regex: mmseg imports them without declaring them.
# torch is named again so that no dependency can swap it for another build: the mmcv wheel is
# bound to the torch it was compiled against.
"${PIP[@]}" -q -e "$ROOT[tests]" 'mmengine==0.10.7' 'mmdet==3.3.0' 'mmsegmentation==1.2.2' \
  ftfy regex 'numpy<2' "torch==$TORCH_VERSION"
"$PY" -c "import torch, sys; sys.exit(torch.__version__ != '$TORCH_VERSION')" \
  || { log "torch changed during the install; the mmcv wheel needs torch $TORCH_VERSION"; exit 1; }
"$PY" -c 'import mmcv.ops, mmdet.models, mmseg.models, mmattn' >/dev/null
echo "$REQ_HASH" > "$STAMP"
log "done: $VENV"
