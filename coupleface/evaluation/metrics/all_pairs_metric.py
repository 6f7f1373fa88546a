"""AllPairsVerificationMetric: TAR@FAR over every pair of a labelled set of unseen identities.

The ``.bin`` protocols score a few thousand fixed pairs, too few impostors for FAR=1e-3 and
below; this metric scores all pairs among the images of a labelled evaluation set (e.g. the
SynthFaces ``test_all_pairs.rec``, a few hundred identities never seen in training) with
:func:`coupleface.evaluation.functional.all_pairs_tar_at_far`, in chunks, so TAR@FAR=1e-4
rests on hundreds of impostor pairs.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from coupleface.registry import METRICS

from ..functional import ALL_PAIRS_FARS, all_pairs_tar_at_far
from .verification_metric import format_far, sample_embedding


@METRICS.register_module()
class AllPairsVerificationMetric(BaseMetric):
    """TAR@FAR over all ``N (N - 1) / 2`` pairs of a labelled image set.

    Each processed sample must hold ``embedding`` (raw; normalised here), ``gt_label`` and
    ``sample_idx`` (duplicates that DDP padding adds are dropped by ``sample_idx``).

    Reported (keys ``{prefix}/...``): ``tar@far={far}`` (conservative TAR in percent, NaN when
    the set has fewer than ``1 / far`` impostor pairs), ``far_actual@far={far}`` (percent),
    ``num_genuine``, ``num_impostor`` and ``num_images``.

    Args:
        fars (Sequence[float]): target FARs. Defaults to ``(1e-2, 1e-3, 1e-4)``.
        chunk_size (int): similarity rows scored at once. Defaults to 2048.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): key prefix. Defaults to ``'all_pairs'``.

    Examples:
        >>> test_evaluator = dict(type='AllPairsVerificationMetric', prefix='synth_all')
        >>> # with a labelled dataset (MXFaceDataset of unseen identities) ->
        >>> # {'synth_all/tar@far=1e-04': 41.2, 'synth_all/num_impostor': 1990000, ...}
    """

    default_prefix: Optional[str] = 'all_pairs'

    def __init__(self, fars: Sequence[float] = ALL_PAIRS_FARS, chunk_size: int = 2048,
                 collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.fars = tuple(float(f) for f in fars)
        self.chunk_size = int(chunk_size)

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Store ``(sample_idx, gt_label, embedding)`` of each sample."""
        for sample in data_samples:
            sample, emb = sample_embedding(sample)
            label = sample['gt_label']
            label = int(label.reshape(-1)[0]) if hasattr(label, 'reshape') else int(label)
            self.results.append(dict(sample_idx=int(sample['sample_idx']), label=label,
                                     embedding=emb))

    def compute_metrics(self, results: list) -> dict:
        """The all-pairs figures of the gathered results (see the class docstring)."""
        unique = {}
        for res in results:
            unique.setdefault(res['sample_idx'], res)  # DDP padding repeats samples
        order = sorted(unique)
        emb = np.stack([unique[i]['embedding'] for i in order])
        labels = np.array([unique[i]['label'] for i in order])
        figures = all_pairs_tar_at_far(emb, labels, fars=self.fars, chunk_size=self.chunk_size)
        out = dict(num_images=len(order), num_genuine=figures['num_genuine'],
                   num_impostor=figures['num_impostor'])
        for far in self.fars:
            name = format_far(far)
            out[f'tar@far={name}'] = 100.0 * figures[far]['tar']
            out[f'far_actual@far={name}'] = 100.0 * figures[far]['far_actual']
        return out
