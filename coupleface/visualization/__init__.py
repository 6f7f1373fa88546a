"""coupleface.visualization: verification plots (ROC curves, score histograms) and
training curves from MMEngine JSON logs.

matplotlib is imported when a plot is made, not when this package is imported.
"""
from .roc_plot import new_figure, plot_roc, save_figure
from .score_histogram import plot_score_histogram
from .training_curves import available_keys, load_json_log, plot_curves, train_time

__all__ = ['available_keys', 'load_json_log', 'new_figure', 'plot_curves', 'plot_roc',
           'plot_score_histogram', 'save_figure', 'train_time']
