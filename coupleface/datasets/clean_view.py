"""A training set seen through a non-augmenting pipeline (the teacher's clean view).

Teacher embeddings for relation mining and for the teacher bank are computed on
the training images exactly as the teacher sees them during distillation: decoded
and resized like the training pipeline's ``LoadFaceImage``, with no random
augmentation (the bank stores the mirror as a second view instead).
:func:`clean_view_embeddings` is the one teacher pass over such a view that the mining
hook, ``tools/extract_embeddings.py`` and ``tools/analysis_tools/plot_relations.py`` share.
"""
from __future__ import annotations

import os.path as osp
from collections.abc import Mapping
from typing import Any, Iterator, List, Optional, Sequence

import torch
from mmcv.transforms import Compose
from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader, Dataset

from coupleface.registry import TRANSFORMS

from .transforms.loading import LoadFaceImage


def teacher_view_size(pipeline: Any) -> Optional[int]:
    """The image size of the teacher's clean view of a training pipeline.

    The rule (docs/architecture.md §2.2): the teacher sees a training image decoded and
    resized exactly as the pipeline's **first** ``LoadFaceImage`` does, and nothing else
    (no flip, mask or other augmentation); its ``size`` is the view's size. This is the
    one place that reads it, for the mining hook, ``tools/extract_embeddings.py`` and
    ``tools/analysis_tools/plot_relations.py``.

    Args:
        pipeline: The pipeline as configured (a list of dicts; ``type`` may carry a
            scope, ``'coupleface.LoadFaceImage'``) or as built (a ``Compose`` or a list
            of transforms, matched with ``isinstance``).

    Returns:
        int or None: The ``size`` of that ``LoadFaceImage`` (``None``: source size kept).

    Raises:
        ValueError: The pipeline has no ``LoadFaceImage`` (one line naming its steps).
    """
    steps = list(getattr(pipeline, 'transforms', pipeline) or [])
    for step in steps:
        if isinstance(step, LoadFaceImage):
            return step.size
        if isinstance(step, Mapping) and \
                str(step.get('type', '')).split('.')[-1] == 'LoadFaceImage':
            return step.get('size', 112)  # LoadFaceImage's default size
    names = [str(s.get('type')) if isinstance(s, Mapping) else type(s).__name__ for s in steps]
    raise ValueError(f'cannot derive the teacher\'s clean view: the training pipeline has no '
                     f'LoadFaceImage (steps: {names})')


def dataset_identity(dataset) -> str:
    """A short string naming a training set: type, root and length.

    Recorded in teacher banks and relation files so a file made for another
    dataset is refused.
    """
    root = getattr(dataset, 'data_root', '') or ''
    return f'{type(dataset).__name__}:{osp.abspath(root) if root else ""}:{len(dataset)}'


class CleanViewDataset(Dataset):
    """Samples of an mmengine dataset through ``LoadFaceImage(size)`` + ``PackFaceInputs``.

    Args:
        dataset: A dataset with ``get_data_info(idx)`` (any mmengine BaseDataset).
        indices: The dataset indices to serve (e.g. one rank's shard).
        size: Image size of the teacher view.
    """

    def __init__(self, dataset, indices: Sequence[int], size: Optional[int] = 112) -> None:
        self.dataset = dataset
        self.indices = list(indices)
        self.pipeline = Compose([TRANSFORMS.build(dict(type='LoadFaceImage', size=size)),
                                 TRANSFORMS.build(dict(type='PackFaceInputs'))])

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        return self.pipeline(self.dataset.get_data_info(self.indices[i]))


@torch.no_grad()
def clean_view_embeddings(dataset, indices: Sequence[int], size: Optional[int], preprocessor,
                          models: Sequence[torch.nn.Module], batch_size: int = 256,
                          num_workers: int = 0, flip: bool = False,
                          desc: Optional[str] = None) -> Iterator[List[torch.Tensor]]:
    """Embed the clean view of ``indices`` with each model, batch by batch, in order.

    Args:
        dataset: The training set (``get_data_info``).
        indices: Dataset indices to embed, in output order.
        size: Image size of the view (:func:`teacher_view_size` of the training pipeline).
        preprocessor: The model's data preprocessor (``preprocessor(batch, False)``).
        models: Modules with ``extract_feat(inputs)`` (a frozen teacher, a student).
        batch_size: Images per forward pass.
        num_workers: DataLoader workers.
        flip: Also embed the mirrored image (a teacher bank's second view).
        desc: Show a progress bar with this label (None: silent).

    Yields:
        list: One fp32 CPU tensor per model, ``b x D`` (``b x 2 x D``, original and
        mirrored, with ``flip``).
    """
    loader = DataLoader(CleanViewDataset(dataset, indices, size), batch_size=batch_size,
                        num_workers=num_workers, collate_fn=pseudo_collate, shuffle=False)
    progress = None
    if desc is not None:
        from tqdm import tqdm
        progress = tqdm(total=len(indices), desc=desc, unit='img', dynamic_ncols=True)
    try:
        for batch in loader:
            inputs = preprocessor(batch, False)['inputs']
            out = []
            for model in models:
                emb = model.extract_feat(inputs).float()
                if flip:
                    emb = torch.stack([emb, model.extract_feat(inputs.flip(-1)).float()], 1)
                out.append(emb.cpu())
            if progress is not None:
                progress.update(len(inputs))
            yield out
    finally:
        if progress is not None:
            progress.close()

