"""Hooks."""
from .augment_seed_hook import AugmentSeedHook
from .config_check_hook import ConfigCheckHook
from .exact_resume_hook import ExactResumeHook
from .nan_guard_hook import NanGuardHook, NonFiniteLossError
from .partial_fc_checkpoint_hook import PartialFCCheckpointHook
from .relation_mining_hook import RelationMiningHook

__all__ = ['AugmentSeedHook', 'ConfigCheckHook', 'ExactResumeHook', 'NanGuardHook',
           'NonFiniteLossError', 'PartialFCCheckpointHook', 'RelationMiningHook']
