"""Utilities: config scope, safe checkpoints, distributed helpers, face template.

The bottom layer: nothing here imports another coupleface package (tests/test_layering.py).
"""
from .checkpoint_load import (
    SAFE_GLOBALS,
    CheckpointFormatError,
    UnsafeCheckpointError,
    install_safe_checkpoint_loading,
    safe_torch_load,
)
from .checkpoint_save import atomic_save, install_atomic_checkpoint_saving
from .checkpoint_state_dict import CheckpointKeyError, load_state_dict_flexible
from .config_scope import config_root, install_config_scope, resolve_config_path
from .dist import all_gather_no_grad, all_gather_with_grad, get_dist_info, init_cpu_distributed
from .file_hash import file_sha256

__all__ = [
    'SAFE_GLOBALS', 'CheckpointFormatError', 'CheckpointKeyError', 'UnsafeCheckpointError',
    'all_gather_no_grad', 'all_gather_with_grad', 'atomic_save', 'config_root',
    'file_sha256', 'get_dist_info', 'init_cpu_distributed', 'install_atomic_checkpoint_saving',
    'install_config_scope', 'install_safe_checkpoint_loading', 'load_state_dict_flexible',
    'resolve_config_path', 'safe_torch_load'
]
