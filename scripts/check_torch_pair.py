"""Exit 0 when this interpreter has a torch/torchvision pair coupleface can use.

"Usable" means: both import, the versions lie in requirements/runtime.txt's range, a
convolution runs (forward and backward) and ``torchvision.ops.nms`` exists (mmpretrain's
model package imports torchvision ops; a torchvision wheel built for another torch fails
there with "operator torchvision::nms does not exist"). ``scripts/setup_env.sh`` keeps such a
pair (a cluster's own torch, a CUDA build matching the driver) instead of installing the pinned
one from requirements/torch.txt.

Runs before coupleface is installed, so it uses the standard library and torch only.
Prints one line: ``ok torch X torchvision Y`` or ``no: <reason>``.
"""
from __future__ import annotations

import os.path as osp
import re
import sys

HERE = osp.dirname(osp.abspath(__file__))


def _bounds(name: str) -> tuple:
    """(lower, upper) release tuples of ``name`` in requirements/runtime.txt."""
    with open(osp.join(HERE, '..', 'requirements', 'runtime.txt'), encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            m = re.match(rf'{re.escape(name)}\s*>=\s*([\d.]+)\s*,\s*<\s*([\d.]+)$', line)
            if m:
                return _release(m.group(1)), _release(m.group(2))
    raise SystemExit(f'no: requirements/runtime.txt has no ">=x,<y" line for {name}')


def _release(version: str) -> tuple:
    """``'2.13.0+cu130'`` -> ``(2, 13, 0)``."""
    return tuple(int(p) for p in re.findall(r'\d+', version.split('+')[0])[:3])


def check() -> str:
    """Return ``''`` when the pair is usable, else the reason it is not."""
    try:
        import torch
        import torchvision
    except Exception as e:  # noqa: BLE001 - any import failure means "not usable"
        return f'cannot import torch/torchvision ({type(e).__name__}: {e})'
    for mod, name in ((torch, 'torch'), (torchvision, 'torchvision')):
        low, high = _bounds(name)
        if not low <= _release(mod.__version__) < high:
            return f'{name} {mod.__version__} is outside requirements/runtime.txt\'s range'
    try:
        x = torch.randn(1, 3, 8, 8, requires_grad=True)
        torch.nn.functional.conv2d(x, torch.randn(4, 3, 3, 3)).sum().backward()
        torchvision.ops.nms(torch.tensor([[0., 0., 1., 1.]]), torch.tensor([1.]), 0.5)
    except Exception as e:  # noqa: BLE001
        return f'torch {torch.__version__} + torchvision {torchvision.__version__} do not ' \
               f'work together ({type(e).__name__}: {str(e).splitlines()[0]})'
    return ''


def main() -> int:
    reason = check()
    if reason:
        print(f'no: {reason}')
        return 1
    import torch
    import torchvision
    print(f'ok torch {torch.__version__} torchvision {torchvision.__version__}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
