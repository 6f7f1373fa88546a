"""Metrics registered in ``coupleface.registry.METRICS``."""
from .all_pairs_metric import AllPairsVerificationMetric
from .ijb_metric import IJBMetric
from .verification_metric import VerificationMetric, format_far

__all__ = ['AllPairsVerificationMetric', 'IJBMetric', 'VerificationMetric', 'format_far']
