#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install what coupleface
# needs, on a fresh machine, without hand steps. Idempotent: a second run only checks.
#
# What it keeps instead of replacing (docs/get_started.md "What the setup script does"):
# - a working torch/torchvision pair: the venv's own, or the base interpreter's (a cluster's
#   torch, a CUDA build matching the driver: the venv is then made with
#   --system-site-packages and installs no torch); "working" = scripts/check_torch_pair.py.
#   Otherwise requirements/torch.txt's pair is installed (from COUPLEFACE_TORCH_INDEX when set,
#   e.g. https://download.pytorch.org/whl/cpu for a 0.2 GB CPU-only build).
# - an importable mmcv (full or lite); otherwise mmcv-lite is installed without its
#   opencv-python/mmengine requirements, which runtime.txt already brings.
#
# Environment: COUPLEFACE_VENV (default .venv), PYTHON (default python3),
# COUPLEFACE_EXTRAS (comma list of extras beyond the dev set; "albu" is the only one),
# COUPLEFACE_REUSE_TORCH=0 (never reuse the base interpreter's torch).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${COUPLEFACE_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
EXTRAS="${COUPLEFACE_EXTRAS:-}"
STAMP="$VENV/.coupleface-deps"
want="$(cat "$ROOT"/requirements/*.txt "$ROOT/requirements.txt" "$ROOT/setup.py" \
        "$ROOT/scripts/setup_env.sh" | sha1sum | cut -d' ' -f1)-extras:$EXTRAS"

if [ ! -x "$VENV/bin/python" ]; then
  if [ "${COUPLEFACE_REUSE_TORCH:-1}" != 0 ] && "$PY" "$ROOT/scripts/check_torch_pair.py" >/dev/null 2>&1; then
    echo "[setup] creating virtual environment $VENV on $PY's torch ($("$PY" "$ROOT/scripts/check_torch_pair.py"))"
    "$PY" -m venv --system-site-packages "$VENV"
  else
    echo "[setup] creating virtual environment $VENV"
    "$PY" -m venv "$VENV"
  fi
fi
VPY="$VENV/bin/python"
# pip, quiet, without the local index's harmless "is ignored" lines; its failure stops the script
pip_() {
  local rc=0
  "$VPY" -m pip --disable-pip-version-check -q "$@" > "$VENV/pip.log" 2>&1 || rc=$?
  grep -v "is ignored: it is neither" "$VENV/pip.log" || true
  return $rc
}
has() { "$VPY" -m pip show -q "$1" >/dev/null 2>&1; }

if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing dependencies (first run: a few minutes)"
  # setuptools<80 keeps pkg_resources, which mmengine and mim still import.
  pip_ install --upgrade pip wheel "setuptools>=64,<80"
  if pair="$("$VPY" "$ROOT/scripts/check_torch_pair.py")"; then
    echo "[setup] keeping the working pair: ${pair#ok }"
  else
    echo "[setup] ${pair#no: }: installing requirements/torch.txt's pair"
    if [ -n "${COUPLEFACE_TORCH_INDEX:-}" ]; then
      pip_ install --index-url "$COUPLEFACE_TORCH_INDEX" -r "$ROOT/requirements/torch.txt"
    else
      pip_ install -r "$ROOT/requirements/torch.txt"
    fi
    "$VPY" "$ROOT/scripts/check_torch_pair.py" >/dev/null || {
      echo "[setup] error: $("$VPY" "$ROOT/scripts/check_torch_pair.py")" >&2; exit 1; }
  fi
  # Pin the pair for every later install, so no requirement can swap it.
  # (without the local label: the index's wheel is "2.13.0", torch.__version__ "2.13.0+cu130")
  "$VPY" -c 'import torch, torchvision; v = lambda m: m.__version__.split("+")[0]; print(f"torch=={v(torch)}\ntorchvision=={v(torchvision)}")' > "$VENV/torch-pair.txt"
  pip_ install -r "$ROOT/requirements.txt" -c "$VENV/torch-pair.txt"
  # mmcv: keep the user's (full or lite); otherwise mmcv-lite without its requirements
  # (mmengine and opencv-python come from runtime.txt; the rest from mmengine/matplotlib).
  if ! "$VPY" -c 'import mmcv' >/dev/null 2>&1; then
    spec="$(grep -E '^mmcv[<>=]' "$ROOT/requirements/mminstall.txt")"
    pip_ install --no-deps "mmcv-lite${spec#mmcv}"
  fi
  if [[ ",$EXTRAS," == *,albu,* ]]; then
    # albumentations/albucore require opencv-python-headless, a second build of the cv2
    # package beside opencv-python: install them without it (they run on either build).
    pip_ install --no-deps -r "$ROOT/requirements/albu.txt" albucore
    deps="$("$VPY" - <<'PY'
from importlib.metadata import requires
from packaging.requirements import Requirement
out = set()
for dist in ('albumentations', 'albucore'):
    for line in requires(dist) or []:
        r = Requirement(line)
        if r.name not in ('opencv-python-headless', 'albucore') and (
                r.marker is None or r.marker.evaluate({'extra': ''})):
            out.add(str(r).split(';')[0])
print(' '.join(sorted(out)))
PY
)"
    # shellcheck disable=SC2086
    pip_ install -c "$VENV/torch-pair.txt" $deps
  elif has albumentations; then
    pip_ uninstall -y albumentations albucore  # an older setup installed them by default
  fi
  # One OpenCV: opencv-python (mmengine's). An older setup kept opencv-python-headless;
  # the two share the cv2 folder, so removing one needs the other reinstalled.
  if has opencv-python-headless; then
    pip_ uninstall -y opencv-python-headless
    pip_ install --force-reinstall --no-deps "$("$VPY" -m pip show opencv-python | sed -n 's/^Version: /opencv-python==/p')"
  fi
  pip_ install --no-deps --no-build-isolation -e "$ROOT"
  # PEP 660 editable installs leave no coupleface/ folder in site-packages, where `mim`
  # (and pkg_resources-based lookups) search for the package and its .mim/ tools and
  # configs; a link to the source package closes that gap.
  SITE="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  [ -e "$SITE/coupleface" ] || ln -s "$ROOT/coupleface" "$SITE/coupleface"
  "$VPY" - <<'PY'
import coupleface  # first: it checks mmengine/mmcv/mmpretrain and names what is missing
import cv2, torch, torchvision, mmengine, mmcv, mmpretrain  # noqa
import mmpretrain.models  # imports torchvision ops: fails on a mismatched pair
print(f"[setup] torch {torch.__version__} torchvision {torchvision.__version__} "
      f"mmengine {mmengine.__version__} mmcv {mmcv.__version__} mmpretrain {mmpretrain.__version__} "
      f"cv2 {cv2.__version__}")
PY
  # pip check: clean, except albumentations' headless requirement when the albu extra is on
  check="$("$VPY" -m pip check 2>&1 | grep -v 'opencv-python-headless, which is not installed' || true)"
  if [ "$check" != "No broken requirements found." ] && [ -n "$check" ]; then
    echo "[setup] pip check: $check" >&2
    exit 1
  fi
  echo "$want" > "$STAMP"
fi
