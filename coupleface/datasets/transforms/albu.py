"""Albumentations on the student view, with per-sample reproducible randomness.

mmpretrain's ``Albumentations`` transform runs with albumentations 2.x and
leaves ``teacher_img`` alone, but it does not meet our seeding contract
(docs/architecture.md §4 Randomness): its ``Compose`` draws from a generator seeded once at build
time from OS entropy, so runs are not reproducible, and DataLoader workers,
forked with copies of that generator, repeat each other's augmentation
streams. It also hands the whole sample dict to albumentations, which then
treats any key named like a target (``mask``, ``bboxes``, ...) as one.

``FaceAlbumentations`` takes the same config format (mmpretrain's, itself
mmdet's): a list of dicts whose ``type`` is an albumentations class name, with
nested ``transforms`` for ``OneOf``/``SomeOf``/``Sequential``. Before each
sample it sets the pipeline's random state from
:func:`~.seeding.sample_rng` (global seed, epoch, ``sample_idx``, salt), and it
passes albumentations only the image keys it is told to transform.
"""
from __future__ import annotations

import inspect
import os
import random
from typing import Any, Dict, List, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from coupleface.registry import TRANSFORMS
from coupleface.utils.dependencies import require_extra
from coupleface.utils.seeding import sample_rng


def _albumentations():
    # albumentations asks PyPI for a newer version on import (up to 2 s, in every
    # DataLoader worker that imports it first) unless told not to.
    os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')
    return require_extra('albu', 'FaceAlbumentations')


def build_albumentations(cfg: Dict[str, Any]):
    """Build one albumentations transform (or composition) from a config dict.

    Args:
        cfg (dict): ``type`` (an albumentations class name or class) and its
            keyword arguments; ``transforms`` (a list of such dicts) for
            compositions such as ``OneOf``.

    Returns:
        The albumentations object.

    Examples:
        >>> build_albumentations(dict(type='OneOf', p=0.5, transforms=[
        ...     dict(type='Blur', blur_limit=3), dict(type='MedianBlur', blur_limit=3)]))
    """
    albu = _albumentations()
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f'each albumentations transform must be a dict with "type", got {cfg!r}')
    args = dict(cfg)
    obj_type = args.pop('type')
    if isinstance(obj_type, str):
        obj_cls = getattr(albu, obj_type, None)
        if obj_cls is None:
            raise ValueError(f'albumentations {albu.__version__} has no transform {obj_type!r}')
    elif inspect.isclass(obj_type):
        obj_cls = obj_type
    else:
        raise TypeError(f'type must be a str or a class, got {type(obj_type)}')
    if 'transforms' in args:
        args['transforms'] = [build_albumentations(t) for t in args['transforms']]
    return obj_cls(**args)


@TRANSFORMS.register_module()
class FaceAlbumentations(BaseTransform):
    """Apply an albumentations pipeline to the student view, reproducibly.

    Only ``keys`` are transformed (default the student ``img``; a clean
    ``teacher_img`` is left as it is). With several keys, all get the same
    sampled parameters (albumentations ``additional_targets``). The draw is a
    pure function of (global seed, epoch, ``sample_idx``, ``seed_salt``).

    Required keys: ``keys``, ``sample_idx``.
    Modified keys: ``keys``, ``img_shape`` (when ``'img'`` is in ``keys``).

    Args:
        transforms (list[dict]): Albumentations transform configs (mmpretrain's
            ``Albumentations`` format).
        keys (Sequence[str]): Image keys to transform with shared parameters.
            Defaults to ``('img',)``.
        seed_salt (str): Salt of the random stream. Defaults to ``'albu'``.

    Examples:
        >>> pipeline = [
        ...     dict(type='LoadFaceImage', size=112),
        ...     dict(type='SyntheticMask', p=0.5, keep_teacher_view=True),
        ...     dict(type='FaceAlbumentations', transforms=[
        ...         dict(type='RandomBrightnessContrast', brightness_limit=0.2,
        ...              contrast_limit=0.2, p=0.5),
        ...         dict(type='OneOf', p=0.2, transforms=[
        ...             dict(type='GaussianBlur', blur_limit=(3, 5)),
        ...             dict(type='ImageCompression', quality_range=(40, 90))])]),
        ...     dict(type='PackFaceInputs'),
        ... ]
    """

    def __init__(self, transforms: List[Dict[str, Any]], keys: Sequence[str] = ('img',),
                 seed_salt: str = 'albu') -> None:
        if not isinstance(transforms, (list, tuple)):
            raise TypeError(f'transforms must be a list of dicts, got {type(transforms)}')
        keys = (keys,) if isinstance(keys, str) else tuple(keys)
        if not keys or len(set(keys)) != len(keys):
            raise ValueError(f'keys must be non-empty and distinct, got {keys}')
        albu = _albumentations()
        self.transforms = [dict(t) for t in transforms]
        self.keys = keys
        self.seed_salt = str(seed_salt)
        # Albumentations names the first image 'image'; the others are extra image targets.
        self._targets = {key: ('image' if i == 0 else f'image{i}') for i, key in enumerate(keys)}
        self.aug = albu.Compose(
            [build_albumentations(t) for t in self.transforms],
            additional_targets={name: 'image' for name in list(self._targets.values())[1:]})

    def transform(self, results: dict) -> dict:
        missing = [k for k in self.keys if results.get(k) is None]
        if missing:
            raise KeyError(f'FaceAlbumentations: the sample has no {missing}')
        rng = sample_rng(results, self.seed_salt)
        py_seed = int(rng.integers(1 << 62))
        # One shared stream for every transform of the pipeline, in call order.
        self.aug.set_random_state(rng, random.Random(py_seed))
        out = self.aug(**{name: results[key] for key, name in self._targets.items()})
        for key, name in self._targets.items():
            results[key] = np.ascontiguousarray(out[name])
        if 'img' in self.keys:
            results['img_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(transforms={self.transforms}, keys={self.keys}, '
                f'seed_salt={self.seed_salt!r})')
