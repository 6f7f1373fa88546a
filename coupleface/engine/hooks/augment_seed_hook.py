"""Pass the run's seed and the current epoch to the seeded augmentations and the model.

Random augmentations (SyntheticMask, FaceAlbumentations) draw from
``(global seed, epoch, sample_idx)`` (docs/architecture.md §4 Randomness): reproducible runs, a new
draw every epoch. They run in DataLoader workers, forked when an epoch's iterator is
created (after ``before_train_epoch``), so the values reach them as module values of
``coupleface.utils.seeding`` set here in the main process; with
``persistent_workers=True`` they would keep the first epoch's value.

The model gets the seed explicitly: a model with ``set_run_seed(seed)`` (the
``CoupleFaceDistiller``, for its per-iteration teacher-bank partner draw) is called with
``runner.seed`` in ``before_train``.
"""
from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from coupleface.registry import HOOKS
from coupleface.utils.seeding import set_augment_epoch, set_augment_seed


@HOOKS.register_module()
class AugmentSeedHook(Hook):
    """Set the augmentation seed (and the model's run seed) before training and the epoch
    before each epoch.

    Examples:
        >>> custom_hooks = [dict(type='AugmentSeedHook')]
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        seed = int(runner.seed) if runner.seed is not None else 0
        set_augment_seed(seed)
        model = getattr(runner, 'model', None)
        if is_model_wrapper(model):
            model = model.module
        if hasattr(model, 'set_run_seed'):
            model.set_run_seed(seed)

    def before_train_epoch(self, runner) -> None:
        set_augment_epoch(int(runner.epoch))
