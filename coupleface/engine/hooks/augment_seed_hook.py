"""Pass the run's seed and the current epoch to the seeded augmentations.

Random augmentations (SyntheticMask, FaceAlbumentations) draw from
``(global seed, epoch, sample_idx)`` (docs/architecture.md §4 Randomness): reproducible runs, a new
draw every epoch. DataLoader workers are forked when an epoch's iterator is
created (after ``before_train_epoch``), so they see the values set here; with
``persistent_workers=True`` they would keep the first epoch's value.
"""
from __future__ import annotations

from mmengine.hooks import Hook

from coupleface.registry import HOOKS
from coupleface.utils.seeding import set_augment_epoch, set_augment_seed


@HOOKS.register_module()
class AugmentSeedHook(Hook):
    """Set the augmentation seed before training and the epoch before each epoch.

    Examples:
        >>> custom_hooks = [dict(type='AugmentSeedHook')]
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        set_augment_seed(int(runner.seed) if runner.seed is not None else 0)

    def before_train_epoch(self, runner) -> None:
        set_augment_epoch(int(runner.epoch))
