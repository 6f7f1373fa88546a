"""coupleface: CoupleFace face-recognition distillation on the OpenMMLab stack.

Importing the package makes ``coupleface::`` config paths resolvable by MMEngine
(see :mod:`coupleface.utils.config_scope`) and applies the safe checkpoint
loading of :mod:`coupleface.utils.checkpoint_load` and the atomic checkpoint saving of
:mod:`coupleface.utils.checkpoint_save`.
"""
import os
import warnings

# albumentations checks PyPI for a newer version on import; training needs no network.
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

# mmcv-lite has no compiled ops; we use none, so its import warning is noise.
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

from .utils.dependencies import check_openmmlab  # noqa: E402

check_openmmlab()  # before anything imports mmcv: a missing one gets the install line

from .utils.checkpoint_load import install_safe_checkpoint_loading  # noqa: E402
from .utils.checkpoint_save import install_atomic_checkpoint_saving  # noqa: E402
from .utils.config_scope import install_config_scope  # noqa: E402
from .version import __version__  # noqa: E402

install_config_scope()
install_safe_checkpoint_loading()
install_atomic_checkpoint_saving()

__all__ = ['__version__']
