"""Pure numpy/scikit-learn verification evaluation: k-fold accuracy, ROC, TAR@FAR, AUC, EER,
all-pairs TAR@FAR, seed statistics."""
from .all_pairs import ALL_PAIRS_FARS, all_pairs_tar_at_far
from .ijb_identification import evaluate_identification, identification, read_template_subject_csv
from .ijb_templates import aggregate_templates, select_templates
from .ijb_verification import score_template_pairs
from .roc import DEFAULT_FARS, auc, eer, is_measurable, roc_curve, tar_at_far
from .seed_statistics import mean_std, paired_difference
from .verification import (
    INSIGHTFACE_THRESHOLDS,
    kfold_accuracy,
    kfold_accuracy_from_scores,
    pair_distances,
)

__all__ = [
    'ALL_PAIRS_FARS', 'all_pairs_tar_at_far', 'mean_std', 'paired_difference',
    'DEFAULT_FARS', 'INSIGHTFACE_THRESHOLDS', 'auc', 'eer', 'is_measurable', 'kfold_accuracy',
    'kfold_accuracy_from_scores', 'pair_distances', 'roc_curve', 'tar_at_far',
    'aggregate_templates', 'evaluate_identification', 'identification',
    'read_template_subject_csv', 'score_template_pairs', 'select_templates'
]
