"""AugmentSeedHook hands the runner's seed and epoch to the augmentation seeding, and the
seed to the model (set_run_seed)."""
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


def test_the_model_gets_the_seed_through_set_run_seed():
    class _Model:
        def set_run_seed(self, seed):
            self.seed = seed

    model = _Model()
    AugmentSeedHook().before_train(SimpleNamespace(seed=77, model=model))
    assert model.seed == 77 and get_augment_seed() == 77
    AugmentSeedHook().before_train(SimpleNamespace(seed=None, model=model))
    assert model.seed == 0
    AugmentSeedHook().before_train(SimpleNamespace(seed=5, model=object()))  # no method: fine
