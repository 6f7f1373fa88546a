"""AugmentSeedHook hands the runner's seed and epoch to the augmentation seeding."""
from types import SimpleNamespace

from coupleface.engine.hooks import AugmentSeedHook
from coupleface.utils.seeding import get_augment_epoch, get_augment_seed


def test_seed_and_epoch_reach_the_seeding_module():
    hook = AugmentSeedHook()
    hook.before_train(SimpleNamespace(seed=1234))
    hook.before_train_epoch(SimpleNamespace(epoch=3))
    assert get_augment_seed() == 1234 and get_augment_epoch() == 3
    hook.before_train_epoch(SimpleNamespace(epoch=0))
    assert get_augment_epoch() == 0
