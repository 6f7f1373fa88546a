"""ResumableSampler: MMEngine's ``DefaultSampler`` that can resume inside an epoch.

MMEngine 0.10.7 resumes an ``EpochBasedTrainLoop`` at the checkpoint's iteration but
restarts the epoch's data iterator: after a mid-epoch (iteration-interval) checkpoint the
batches already trained on are trained on again and the epoch runs longer than
``len(dataloader)``. This sampler yields the same per-epoch order as ``DefaultSampler``
(a ``torch.randperm`` seeded by ``seed + epoch``, padded and strided over ranks) and can
skip the samples already consumed in the current epoch; ``ExactResumeHook`` tells it how
many (:meth:`ResumableSampler.load_state_dict`, the same interface as ``RelationSampler``).
"""
from __future__ import annotations

from typing import Iterator, Optional, Sized

from mmengine.dataset import DefaultSampler

from coupleface.registry import DATA_SAMPLERS

from .resume_position import ResumePositionMixin


@DATA_SAMPLERS.register_module()
class ResumableSampler(ResumePositionMixin, DefaultSampler):
    """``DefaultSampler`` with a resume position inside the epoch.

    The order is exactly ``DefaultSampler``'s. After :meth:`load_state_dict`, the next
    ``__iter__`` of that epoch skips ``samples_yielded`` indices; a :meth:`set_epoch` to
    another epoch drops the position. On every rank the first ``m`` indices of an epoch
    are the global positions ``rank, rank + W, ...``, so after ``k`` batches of ``B`` on
    ``W`` ranks the consumed samples are the first ``k * B * W`` of the epoch's global
    order, whatever ``W`` is; ``ExactResumeHook`` uses this to resume on another number
    of ranks.

    Args:
        dataset (Sized): The dataset.
        shuffle (bool): Shuffle every epoch (``seed + epoch``). Defaults to True.
        seed (int, optional): Seed shared by all ranks; ``None`` draws one and syncs it.
        round_up (bool): Pad the epoch so every rank gets the same number of samples.
            Defaults to True.

    Examples:
        >>> train_dataloader = dict(
        ...     batch_size=128,
        ...     sampler=dict(type='ResumableSampler', shuffle=True),
        ...     dataset=dict(type='MXFaceDataset', data_root='data/faces_emore'))
        >>> custom_hooks = [dict(type='ExactResumeHook')]
    """

    def __init__(self, dataset: Sized, shuffle: bool = True, seed: Optional[int] = None,
                 round_up: bool = True) -> None:
        super().__init__(dataset, shuffle=shuffle, seed=seed, round_up=round_up)
        self._reset_position()

    def __iter__(self) -> Iterator[int]:
        """Yield this rank's indices of the epoch, minus the resumed ones."""
        skip = self._take_skip()
        yield from self._resumed(list(super().__iter__())[skip:])

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch (``DistSamplerSeedHook``); a resume position of another epoch is dropped.

        Args:
            epoch (int): Epoch number.
        """
        self._new_epoch(epoch)
        super().set_epoch(epoch)

