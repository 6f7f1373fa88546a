"""Checks of the OpenMMLab packages and of the optional extras, with errors that say what to
install.

``import coupleface`` calls :func:`check_openmmlab` first. mmcv is not an install requirement
(requirements/runtime.txt says why): the full mmcv and its op-less build mmcv-lite install the
same ``mmcv`` package folder, so requiring one would overwrite a user's other one. Either works
(coupleface uses no compiled op); both installed at once is a conflict worth a warning, since
uninstalling either deletes files of the other.

The version ranges below must equal the requirement files' (tests/utils/test_dependencies.py
compares them), which stay the single place a range is chosen.
"""
from __future__ import annotations

import importlib
import importlib.metadata as metadata
import re
import warnings
from types import ModuleType
from typing import Dict, Optional, Tuple

#: package -> (lower bound inclusive, upper bound exclusive), as in requirements/*.txt
OPENMMLAB_RANGES: Dict[str, Tuple[str, str]] = {
    'mmengine': ('0.10.6', '1.0.0'),  # requirements/runtime.txt
    'mmcv': ('2.0.0', '2.3.0'),  # requirements/mminstall.txt
    'mmpretrain': ('1.2.0', '1.3.0'),  # requirements/runtime.txt
}

#: extra -> (module it provides, requirement file)
EXTRAS: Dict[str, Tuple[str, str]] = {
    'albu': ('albumentations', 'requirements/albu.txt'),
    'onnx': ('onnxruntime', 'requirements/onnx.txt'),
    'tensorboard': ('tensorboard', 'requirements/tensorboard.txt'),
}


def release(version: str) -> Tuple[int, ...]:
    """The numeric release of a version string: ``'2.2.0rc1+cu118'`` -> ``(2, 2, 0)``."""
    return tuple(int(p) for p in re.findall(r'\d+', version.split('+')[0])[:3])


def _installed(dist: str) -> Optional[str]:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def check_openmmlab() -> None:
    """Raise ImportError naming the fix when mmengine, mmcv or mmpretrain is missing or out of
    range; warn when both mmcv and mmcv-lite are installed."""
    for name, (low, high) in OPENMMLAB_RANGES.items():
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            raise ImportError(f'coupleface needs {name}>={low},<{high}, which does not import '
                              f'({e}): {_install_hint(name, low, high)}') from e
        version = getattr(module, '__version__', '0')
        if not release(low) <= release(version) < release(high):
            raise ImportError(f'coupleface needs {name}>={low},<{high}; {name} {version} is '
                              f'installed: {_install_hint(name, low, high)}')
    full, lite = _installed('mmcv'), _installed('mmcv-lite')
    if full and lite:
        warnings.warn(
            f'both mmcv {full} and mmcv-lite {lite} are installed; they share the mmcv/ package '
            'folder, so the one installed last wins and uninstalling either breaks the other. '
            'Keep one: `pip uninstall -y mmcv-lite && pip install --force-reinstall --no-deps '
            f'mmcv=={full}` (full mmcv) or `pip uninstall -y mmcv mmcv-lite && pip install '
            f'--no-deps mmcv-lite=={lite}`', stacklevel=2)


def _install_hint(name: str, low: str, high: str) -> str:
    if name == 'mmcv':
        return (f"pip install --no-deps 'mmcv-lite>={low},<{high}' (no compiled ops, all "
                "coupleface needs) or the full mmcv (`mim install 'mmcv>={low},<{high}'`)")
    return f"pip install '{name}>={low},<{high}'"


def require_extra(extra: str, feature: str) -> ModuleType:
    """Import the module an optional extra provides, or raise ImportError naming the extra.

    Args:
        extra: A key of :data:`EXTRAS` (``'albu'``, ``'onnx'``, ``'tensorboard'``).
        feature: What needs it, for the message (e.g. ``'FaceAlbumentations'``).

    Returns:
        The imported module.
    """
    module, req_file = EXTRAS[extra]
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{feature} needs {module} (coupleface's '{extra}' extra), which does "
                          f"not import ({e}): pip install 'coupleface[{extra}]' or "
                          f'pip install -r {req_file}') from e
