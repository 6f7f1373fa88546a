"""Suite-wide fixtures."""
import pytest


@pytest.fixture
def default_augmentation_streams():
    """The test draws from the default augmentation seed and epoch.

    Without ``set_augment_seed``/``set_augment_epoch`` the epoch is read from MMEngine's
    current MessageHub (coupleface.utils.seeding), and a Runner test that ran earlier in the
    same process leaves its hub (and last epoch) behind. The hubs are hidden for the test and
    put back after it. Directories whose tests draw augmentations use it autouse.
    """
    from mmengine.logging import MessageHub

    from coupleface.utils.seeding import set_augment_epoch, set_augment_seed
    hubs = dict(MessageHub._instance_dict)
    MessageHub._instance_dict.clear()
    set_augment_seed(None)
    set_augment_epoch(None)
    yield
    set_augment_seed(None)
    set_augment_epoch(None)
    MessageHub._instance_dict.clear()
    MessageHub._instance_dict.update(hubs)
