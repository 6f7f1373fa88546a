"""Write SynthFaces to disk: a training set (RecordIO or image folders) and ``.bin`` pair sets.

* :func:`write_record_file` writes ``<prefix>.rec``, ``<prefix>.idx`` and a
  ``property`` file in insightface's RecordIO layout (that of MS1M's
  ``train.rec``), read by :class:`coupleface.datasets.MXFaceDataset`.
* :func:`write_image_folder` writes ``root/<identity>/<image>.jpg``, the layout
  :class:`coupleface.datasets.ImageFolderFaceDataset` reads.
* :func:`make_pair_set` builds a verification set in LFW's View-2 layout
  (``num_folds`` contiguous folds, each ``P / (2 * num_folds)`` positive
  pairs followed by as many negative pairs, pair ``i`` = images ``2i`` and
  ``2i + 1``) and writes it as an insightface ``.bin``
  (:func:`coupleface.datasets.bin_io.write_bin`). Its identities are
  ``id_offset + ...``: pick offsets far apart (the tool uses 1,000,000 for
  validation and 2,000,000 for test) so they never meet training ids.

Images are rendered on the fly; a process pool is used when ``workers > 1``.
"""
from __future__ import annotations

import functools
import multiprocessing
import os
import os.path as osp
from dataclasses import dataclass
from multiprocessing.pool import Pool
from typing import Any, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from tqdm import tqdm

from ..bin_io import write_bin
from ..mx_record_writer import write_insightface_rec
from .generator import SynthFacesConfig, get_identity_family, render_identity_jpeg
from .identity import TAG_PAIRS

CfgLike = Union[None, SynthFacesConfig, Mapping[str, Any]]
Size = Union[int, Sequence[int]]
Workers = Union[int, Pool]

#: Default first identity id of a validation / test pair set.
VAL_ID_OFFSET = 1_000_000
TEST_ID_OFFSET = 2_000_000
#: First identities of the labelled all-pairs validation and test sets (unseen identities).
ALL_PAIRS_VAL_ID_OFFSET = 3_000_000
ALL_PAIRS_TEST_ID_OFFSET = 4_000_000


def _init_worker() -> None:
    # One OpenCV thread per worker process: the pool provides the parallelism.
    cv2.setNumThreads(1)


def make_worker_pool(workers: int) -> Pool:
    """A process pool for the writers (``spawn``: safe when torch/OpenMP run in this process).

    Forked workers deadlock in OpenCV/OpenMP calls when the parent has already
    used those thread pools (e.g. after ``import torch``), so the workers start
    fresh. Starting one costs an import of coupleface (a few seconds): pass the
    same pool to several writer calls to pay it once.
    """
    return multiprocessing.get_context('spawn').Pool(workers, initializer=_init_worker)


def _parallel_map(func, items: Sequence[Any], workers: Workers, desc: str, unit: str,
                  progress: bool, chunksize: int = 1) -> Iterator[Any]:
    """``map`` in order, in a process pool for ``workers > 1``, with a progress bar."""
    bar = tqdm(total=len(items), desc=desc, unit=unit, disable=not progress)
    own_pool = None
    try:
        if isinstance(workers, Pool):
            pool = workers
        elif workers > 1 and len(items) > 1:
            pool = own_pool = make_worker_pool(min(workers, len(items)))
        else:
            for item in items:
                yield func(item)
                bar.update(1)
            return
        for result in pool.imap(func, items, chunksize=chunksize):
            yield result
            bar.update(1)
    finally:
        bar.close()
        if own_pool is not None:
            own_pool.terminate()
            own_pool.join()


def _checked_training_args(num_identities: int, images_per_identity: int,
                           cfg: CfgLike) -> SynthFacesConfig:
    """Validate the counts both training-set writers take; the difficulty config."""
    if num_identities < 1 or images_per_identity < 1:
        raise ValueError('num_identities and images_per_identity must be >= 1, got '
                         f'{num_identities}, {images_per_identity}')
    return SynthFacesConfig.from_any(cfg)


def _write_identity(task: Tuple[int, str, int, int, Size, SynthFacesConfig, int]) -> int:
    identity_id, folder, num_images, seed, size, cfg, width = task
    os.makedirs(folder, exist_ok=True)
    for image_id in range(num_images):
        data, _ = render_identity_jpeg(identity_id, image_id, seed, size, cfg)
        with open(osp.join(folder, f'{image_id:0{width}d}.jpg'), 'wb') as f:
            f.write(data)
    return num_images


def write_image_folder(root: str, num_identities: int, images_per_identity: int,
                       seed: int = 0, size: Size = 112, cfg: CfgLike = None,
                       id_offset: int = 0, workers: Workers = 1, progress: bool = True) -> int:
    """Render identities ``id_offset .. id_offset + num_identities - 1`` into folders.

    Writes ``root/<identity id, 5+ digits>/<image id, 3+ digits>.jpg``; the
    zero padding grows with the largest id so that sorted folder names follow
    identity order. Each JPEG is encoded once at its nuisance quality
    (decoding it gives ``render_identity_image`` of the same arguments).

    Args:
        root (str): Output folder (created).
        num_identities (int): Number of identities.
        images_per_identity (int): Images per identity (image ids 0..n-1).
        seed (int): World seed. Defaults to 0.
        size (int | tuple[int, int]): Image side or ``(height, width)``.
        cfg (SynthFacesConfig | dict, optional): Difficulty.
        id_offset (int): First identity id. Defaults to 0.
        workers (int | Pool): Processes (1 = in this process), or a pool from
            :func:`make_worker_pool` to reuse. Defaults to 1.
        progress (bool): Show a tqdm progress bar. Defaults to True.

    Returns:
        int: Number of images written.
    """
    cfg = _checked_training_args(num_identities, images_per_identity, cfg)
    os.makedirs(root, exist_ok=True)
    id_width = max(5, len(str(id_offset + num_identities - 1)))
    img_width = max(3, len(str(images_per_identity - 1)))
    tasks = [(id_offset + i, osp.join(root, f'{id_offset + i:0{id_width}d}'),
              images_per_identity, seed, size, cfg, img_width)
             for i in range(num_identities)]
    total = 0
    for n in _parallel_map(_write_identity, tasks, workers, f'SynthFaces {osp.basename(root)}',
                           'id', progress, chunksize=2):
        total += n
    return total


def _render_identity(task: Tuple[int, int, int, Size, SynthFacesConfig]) -> List[bytes]:
    identity_id, num_images, seed, size, cfg = task
    return [render_identity_jpeg(identity_id, image_id, seed, size, cfg)[0]
            for image_id in range(num_images)]


def write_record_file(out_prefix: str, num_identities: int, images_per_identity: int,
                      seed: int = 0, size: Size = 112, cfg: CfgLike = None,
                      id_offset: int = 0, workers: Workers = 1, progress: bool = True) -> int:
    """Render identities ``id_offset .. id_offset + num_identities - 1`` into RecordIO.

    Writes ``<out_prefix>.rec``, ``<out_prefix>.idx`` and ``property`` (next
    to them) with :func:`coupleface.datasets.write_insightface_rec`: identity
    ``id_offset + i`` gets label ``i``, its images are records in image-id
    order, so sample ``k`` is the same image as in :func:`write_image_folder`
    of the same arguments (the JPEG bytes are identical). Both files appear
    under their final names only once complete. The arguments after ``out_prefix`` are
    those of :func:`write_image_folder` and return the same count.

    Args:
        out_prefix (str): Output path without extension, e.g. ``data/synthfaces/train``.
    """
    cfg = _checked_training_args(num_identities, images_per_identity, cfg)
    tasks = [(id_offset + i, images_per_identity, seed, size, cfg)
             for i in range(num_identities)]
    rendered = _parallel_map(_render_identity, tasks, workers,
                             f'SynthFaces {osp.basename(out_prefix)}.rec', 'id', progress,
                             chunksize=2)
    samples = ((label, data) for label, images in enumerate(rendered) for data in images)
    info = write_insightface_rec(out_prefix, samples, num_classes=num_identities)
    return int(info['num_images'])


@dataclass
class PairSet:
    """A planned (and possibly rendered) verification pair set.

    Attributes:
        issame (np.ndarray): ``P`` bools; pair ``i`` = images ``2i``, ``2i+1``.
        identities (np.ndarray): ``2P`` int64 identity ids of the images.
        image_ids (np.ndarray): ``2P`` int64 image ids within each identity.
        num_folds (int): Number of contiguous folds.
        landmarks (np.ndarray, optional): ``2P x 5 x 2`` float32 landmarks of
            the rendered images (``make_pair_set(return_landmarks=True)``).
    """
    issame: np.ndarray
    identities: np.ndarray
    image_ids: np.ndarray
    num_folds: int = 10
    landmarks: Optional[np.ndarray] = None


def plan_pairs(num_pairs: int, seed: int = 0, cfg: CfgLike = None,
               id_offset: int = VAL_ID_OFFSET, num_folds: int = 10,
               images_per_identity: int = 10, hard_negative_ratio: float = 0.5) -> PairSet:
    """Choose the pairs of a verification set (no rendering).

    Fold ``f`` uses its own identities ``id_offset + f * 2h + [0, 2h)`` with
    ``h = num_pairs / (2 * num_folds)``: ``h`` positive pairs (one identity
    each, two different image ids) then ``h`` negative pairs (two identities
    of the fold; with probability ``hard_negative_ratio`` the second is taken
    from the first one's family when the fold has another member).

    Args:
        num_pairs (int): ``P``; a positive multiple of ``2 * num_folds``.
        seed (int): World seed (the same as the training images').
        cfg (SynthFacesConfig | dict, optional): Difficulty (families).
        id_offset (int): First identity id of the set.
        num_folds (int): Number of folds. Defaults to 10.
        images_per_identity (int): Image ids are drawn from ``[0, n)``.
        hard_negative_ratio (float): Share of same-family negatives.

    Returns:
        PairSet: The plan (``landmarks`` is None).
    """
    if num_folds < 1 or num_pairs < 1 or num_pairs % (2 * num_folds):
        raise ValueError(f'num_pairs must be a positive multiple of 2 * num_folds = '
                         f'{2 * num_folds} (each of the {num_folds} folds holds as many '
                         f'positive as negative pairs), got {num_pairs}')
    if images_per_identity < 2:
        raise ValueError(f'images_per_identity must be >= 2, got {images_per_identity}')
    cfg = SynthFacesConfig.from_any(cfg)
    half = num_pairs // (2 * num_folds)
    pool = 2 * half
    rng = np.random.default_rng([seed, TAG_PAIRS, id_offset, num_pairs, num_folds])
    identities = np.empty((num_pairs, 2), np.int64)
    image_ids = np.empty((num_pairs, 2), np.int64)
    issame = np.zeros(num_pairs, bool)
    for fold in range(num_folds):
        ids = id_offset + fold * pool + np.arange(pool)
        families = np.array([get_identity_family(int(i), seed, cfg) for i in ids])
        start = fold * 2 * half
        for j in range(half):
            k = start + j
            identities[k] = ids[j]
            image_ids[k] = rng.choice(images_per_identity, 2, replace=False)
            issame[k] = True
        for j in range(half):
            k = start + half + j
            a = int(rng.integers(pool))
            same_family = np.flatnonzero((families == families[a]) & (np.arange(pool) != a))
            if rng.random() < hard_negative_ratio and same_family.size:
                b = int(rng.choice(same_family))
            else:
                b = int(rng.integers(pool - 1))
                b += b >= a
            identities[k] = (ids[a], ids[b])
            image_ids[k] = rng.integers(images_per_identity, size=2)
    return PairSet(issame=issame, identities=identities.reshape(-1),
                   image_ids=image_ids.reshape(-1), num_folds=num_folds)


def _render_jpeg_task(task: Tuple[int, int], seed: int, size: Size,
                      cfg: SynthFacesConfig) -> Tuple[bytes, np.ndarray]:
    return render_identity_jpeg(task[0], task[1], seed, size, cfg)


def make_pair_set(path: str, num_pairs: int, seed: int = 0, size: Size = 112,
                  cfg: CfgLike = None, id_offset: int = VAL_ID_OFFSET, num_folds: int = 10,
                  images_per_identity: int = 10, hard_negative_ratio: float = 0.5,
                  workers: Workers = 1, return_landmarks: bool = False,
                  progress: bool = True) -> PairSet:
    """Plan a pair set (:func:`plan_pairs`), render it and write an insightface ``.bin``.

    Args:
        path (str): Output ``.bin`` file.
        num_pairs (int): ``P``, a positive multiple of ``2 * num_folds``.
        seed, size, cfg: As for the training images.
        id_offset, num_folds, images_per_identity, hard_negative_ratio: See
            :func:`plan_pairs`.
        workers (int | Pool): Rendering processes, or a pool from
            :func:`make_worker_pool`. Defaults to 1.
        return_landmarks (bool): Keep the ``2P x 5 x 2`` landmarks in the
            result. Defaults to False.
        progress (bool): Show a progress bar. Defaults to True.

    Returns:
        PairSet: What was written (with landmarks when asked).
    """
    cfg = SynthFacesConfig.from_any(cfg)
    plan = plan_pairs(num_pairs, seed, cfg, id_offset, num_folds, images_per_identity,
                      hard_negative_ratio)
    tasks = list(zip(plan.identities.tolist(), plan.image_ids.tolist()))
    func = functools.partial(_render_jpeg_task, seed=seed, size=size, cfg=cfg)
    images: List[bytes] = []
    landmarks: List[np.ndarray] = []
    for data, lm in _parallel_map(func, tasks, workers, f'SynthFaces {osp.basename(path)}',
                                  'img', progress, chunksize=64):
        images.append(data)
        if return_landmarks:
            landmarks.append(lm)
    write_bin(path, images, plan.issame)
    if return_landmarks:
        plan.landmarks = np.stack(landmarks).astype(np.float32)
    return plan
