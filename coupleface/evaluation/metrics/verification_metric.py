"""VerificationMetric: pair verification on several ``.bin`` sets in one val/test loop.

Follows insightface's ``verification.py`` for the accuracy (10 contiguous folds, squared L2 of
normalised embeddings, threshold grid ``0.00 .. 3.99``, see
:mod:`coupleface.evaluation.functional.verification`) and its XNorm (mean raw embedding norm).
Differs from insightface: several sets are evaluated from one dataloader (each sample carries
``set_name`` and ``sample_idx``), the embeddings may arrive in any order and with the duplicate
samples MMEngine's ``DefaultSampler`` pads under DDP (they are removed by ``sample_idx``), a
missing image is an error, and the ROC metrics (TAR@FAR, AUC, EER on cosine similarities, see
:mod:`coupleface.evaluation.functional.roc`) are reported too.

Masked-face protocols (ICCV 2021 MFR challenge style): a set listed by
``VerificationBinDataset(protocols=...)`` as ``name@masked_unmasked`` or
``name@masked_masked`` is evaluated as a set of its own, and a summary per base set
compares it with the clean set at one FAR (see :func:`mfr_summary`).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
from mmengine.evaluator import BaseMetric

from coupleface.datasets.mask_protocols import (
    MASK_PROTOCOLS,
    masks_image,
    split_protocol_set_name,
)
from coupleface.registry import METRICS

from ..functional import auc, eer, kfold_accuracy, tar_at_far


def format_far(far: float) -> str:
    """Short exact name of a FAR for metric keys: ``1e-03``, ``5e-03``, ``1.5e-02``.

    Args:
        far (float): a false accept rate.

    Returns:
        str: the shortest ``e`` notation that reads back as the same float.
    """
    for precision in range(0, 16):
        text = f'{far:.{precision}e}'
        if float(text) == far:
            return text
    return repr(far)


def sample_embedding(sample: Any) -> Tuple[dict, np.ndarray]:
    """A model output (``DataSample`` or dict) as a dict, and its ``embedding`` as float32.

    Args:
        sample: What ``predict`` returned for one image.

    Returns:
        tuple: the sample as a dict and its 1-D float32 embedding.
    """
    if hasattr(sample, 'to_dict'):
        sample = sample.to_dict()
    emb = sample['embedding']
    if hasattr(emb, 'detach'):
        emb = emb.detach().float().cpu().numpy()
    return sample, np.asarray(emb, dtype=np.float32).reshape(-1)


def mfr_summary(set_figures: Mapping[str, Mapping[str, float]]) -> Dict[str, dict]:
    """Masked-vs-clean summary of each base set that has masked protocol variants.

    The ICCV 2021 MFR challenge ranks models by TAR@FAR=1e-4 on masked probes against
    unmasked galleries; for pair sets the closest reading is the ``masked_unmasked`` protocol
    (first image of each pair masked). This summary puts its TAR next to the clean set's and
    reports how much is lost.

    Args:
        set_figures (Mapping[str, Mapping[str, float]]): per set name (``lfw``,
            ``lfw@masked_unmasked``, ...) a mapping with ``tar`` (TAR at the summary's FAR,
            percent, NaN when not measurable) and ``accuracy`` (percent).

    Returns:
        dict[str, dict]: per base set with at least one masked variant:
        ``{'tar': {protocol: TAR}, 'tar_drop': {masked protocol: clean TAR - its TAR},
        'accuracy_drop': {masked protocol: clean accuracy - its accuracy}}`` (percentage
        points); the drops only when the clean set is evaluated too.

    Examples:
        >>> s = mfr_summary({'lfw': dict(tar=99.0, accuracy=99.5),
        ...                  'lfw@masked_unmasked': dict(tar=90.0, accuracy=97.0)})['lfw']
        >>> s['tar']
        {'clean': 99.0, 'masked_unmasked': 90.0}
        >>> s['tar_drop'], s['accuracy_drop']
        ({'masked_unmasked': 9.0}, {'masked_unmasked': 2.5})
    """
    by_base: Dict[str, Dict[str, Mapping[str, float]]] = defaultdict(dict)
    for set_name, figures in set_figures.items():
        base, protocol = split_protocol_set_name(set_name)
        by_base[base][protocol] = figures
    out: Dict[str, dict] = {}
    for base, variants in by_base.items():
        masked = [p for p in MASK_PROTOCOLS[1:] if p in variants]
        if not masked:
            continue
        summary: dict = dict(tar={p: float(variants[p]['tar'])
                                  for p in MASK_PROTOCOLS if p in variants})
        if 'clean' in variants:
            clean = variants['clean']
            summary['tar_drop'] = {p: float(clean['tar']) - float(variants[p]['tar'])
                                   for p in masked}
            summary['accuracy_drop'] = {
                p: float(clean['accuracy']) - float(variants[p]['accuracy']) for p in masked}
        out[base] = summary
    return out


def _check_protocol_masks(set_name: str, samples: Mapping[int, dict]) -> None:
    """A masked protocol's images must have been masked (a ProtocolMask in the pipeline)."""
    protocol = split_protocol_set_name(set_name)[1]
    if protocol == 'clean':
        return
    unmasked = [i for i, res in sorted(samples.items())
                if masks_image(protocol, i) and res.get('masked') is False]
    if unmasked:
        raise ValueError(f"set '{set_name}': images {unmasked[:5]} should wear a mask under "
                         f"the '{protocol}' protocol but were not masked; put "
                         "dict(type='ProtocolMask') after LoadFaceImage in the test pipeline")


@METRICS.register_module()
class VerificationMetric(BaseMetric):
    """Face verification metric for one or several pair sets (LFW, CFP-FP, AgeDB-30, ...).

    Each processed sample must hold ``embedding`` (1-D raw embedding; with flip test the sum of
    the image's and its mirror's), ``set_name`` and ``sample_idx`` (the index of the image in
    its set; pair ``i`` is images ``2i`` and ``2i + 1``). The labels come from
    ``dataset_meta['pair_sets'][set_name]['issame']``.

    Reported per set (keys ``{set_name}/...``): ``accuracy`` and ``accuracy_std`` (percent,
    k-fold), ``best_threshold`` (mean best squared-L2 threshold over folds), ``xnorm`` (mean raw
    embedding norm), ``tar@far={far}`` (conservative TAR in percent, NaN when the set has fewer
    than ``1 / far`` negative pairs), ``auc`` and ``eer`` (percent); plus ``mean_accuracy`` over
    the sets when there are several (masked protocol variants included).

    Masked-face protocols: sets named ``{name}@masked_unmasked`` / ``{name}@masked_masked``
    (``VerificationBinDataset(protocols=...)``) are reported like any set, and each base set
    with such variants gets an MFR summary at ``mfr_far`` (see :func:`mfr_summary`):
    ``{name}/mfr/tar@far={far}/{protocol}`` (conservative TAR of every protocol evaluated),
    and when the clean set is evaluated too ``{name}/mfr/tar_drop@far={far}/{protocol}`` and
    ``{name}/mfr/accuracy_drop/{protocol}`` (clean minus masked, percentage points) for each
    masked protocol.

    With ``keep_scores=True`` the last evaluation's pair scores stay in
    :attr:`last_scores` (on the rank that computed the metrics), for reports and plots:
    ``{set_name: {'scores': cosine similarities [P], 'issame': bool [P]}}``.

    Args:
        n_folds (int): folds of the k-fold accuracy. Defaults to 10.
        fars (Sequence[float]): target FARs of the TAR@FAR keys. Defaults to
            ``(1e-4, 1e-3, 1e-2)``.
        collect_device (str): device used to gather results across ranks, ``'cpu'`` or
            ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): prefix of the metric keys. Defaults to None (keys are
            ``lfw/accuracy``, ...).
        mfr_far (float, optional): FAR of the masked-protocol summary. Defaults to None:
            1e-4 (the ICCV 2021 MFR figure) when it is in ``fars``, else the first of
            ``fars``.
        keep_scores (bool): keep the pair scores of the last evaluation in
            :attr:`last_scores`. Defaults to False.

    Examples:
        >>> val_evaluator = dict(type='VerificationMetric', fars=(1e-3, 1e-2))
        >>> # in a config with default_scope='coupleface'; the val dataset's metainfo holds
        >>> # pair_sets={'lfw': {'issame': [...], 'num_images': 12000}, 'cfp_fp': {...}}
        >>> # -> {'lfw/accuracy': 99.8, 'lfw/accuracy_std': 0.2, 'lfw/xnorm': 22.6,
        >>> #     'lfw/tar@far=1e-03': 99.7, ..., 'mean_accuracy': 98.9}
        >>> # with VerificationBinDataset(protocols=('clean', 'masked_unmasked')):
        >>> # -> {..., 'lfw@masked_unmasked/accuracy': 97.1, ...,
        >>> #     'lfw/mfr/tar@far=1e-03/clean': 99.7,
        >>> #     'lfw/mfr/tar@far=1e-03/masked_unmasked': 91.2,
        >>> #     'lfw/mfr/tar_drop@far=1e-03/masked_unmasked': 8.5,
        >>> #     'lfw/mfr/accuracy_drop/masked_unmasked': 2.7}
    """

    default_prefix: Optional[str] = None

    def __init__(self,
                 n_folds: int = 10,
                 fars: Sequence[float] = (1e-4, 1e-3, 1e-2),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 mfr_far: Optional[float] = None,
                 keep_scores: bool = False) -> None:
        # BaseMetric warns when no prefix is set; our keys are already namespaced by set name.
        super().__init__(collect_device=collect_device, prefix=prefix or 'verification')
        self.prefix = prefix
        self.n_folds = int(n_folds)
        self.fars = tuple(float(f) for f in fars)
        if mfr_far is None:
            mfr_far = 1e-4 if 1e-4 in self.fars or not self.fars else self.fars[0]
        self.mfr_far = float(mfr_far)
        if not 0 < self.mfr_far <= 1:
            raise ValueError(f'mfr_far must be in (0, 1], got {mfr_far!r}')
        self.keep_scores = bool(keep_scores)
        #: ``{set_name: {'scores': np.ndarray, 'issame': np.ndarray}}`` of the last
        #: evaluation, filled when ``keep_scores`` is True.
        self.last_scores: Dict[str, Dict[str, np.ndarray]] = {}

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Store ``(set_name, sample_idx, embedding, raw norm, masked)`` of each sample.

        Args:
            data_batch (Any): the batch from the dataloader (unused).
            data_samples (Sequence[dict]): model outputs as dicts with keys ``embedding``,
                ``set_name`` and ``sample_idx``.
        """
        for sample in data_samples:
            sample, emb = sample_embedding(sample)
            self.results.append(
                dict(set_name=str(sample['set_name']),
                     sample_idx=int(sample['sample_idx']),
                     embedding=emb,
                     norm=float(np.linalg.norm(emb.astype(np.float64))),
                     # None when the pipeline does not say (no PackFaceInputs meta)
                     masked=None if sample.get('masked') is None else bool(sample['masked'])))

    def _pair_sets(self) -> dict:
        meta = self.dataset_meta or {}
        if 'pair_sets' not in meta:
            raise ValueError("VerificationMetric needs dataset_meta['pair_sets'] "
                             '({set_name: {"issame": [...], "num_images": 2P}})')
        return meta['pair_sets']

    def compute_metrics(self, results: list) -> dict:
        """Compute the per-set metrics from the gathered results.

        Args:
            results (list): the dicts stored by :meth:`process`, from all ranks.

        Returns:
            dict: metric name to value (see the class docstring).
        """
        pair_sets = self._pair_sets()
        by_set: dict[str, dict[int, dict]] = defaultdict(dict)
        for res in results:
            if res['set_name'] not in pair_sets:
                raise ValueError(f"got embeddings of set '{res['set_name']}' which is not in "
                                 f"dataset_meta['pair_sets'] ({sorted(pair_sets)})")
            # setdefault keeps the first copy: DDP padding repeats samples.
            by_set[res['set_name']].setdefault(res['sample_idx'], res)

        metrics: dict[str, float] = {}
        accuracies = []
        mfr_figures: dict[str, dict] = {}
        self.last_scores = {}
        for set_name, info in pair_sets.items():
            issame = np.asarray(info['issame'], dtype=bool)
            num_images = int(info.get('num_images', 2 * issame.size))
            if num_images != 2 * issame.size:
                raise ValueError(f"set '{set_name}': num_images={num_images} but "
                                 f'{issame.size} pairs need {2 * issame.size}')
            samples = by_set.get(set_name, {})
            out_of_range = [i for i in samples if not 0 <= i < num_images]
            if out_of_range:
                raise ValueError(f"set '{set_name}': sample_idx {out_of_range[:5]} outside "
                                 f'[0, {num_images})')
            if len(samples) != num_images:
                raise ValueError(f"set '{set_name}': {num_images - len(samples)} of "
                                 f'{num_images} images missing from the results')
            _check_protocol_masks(set_name, samples)
            embeddings = np.stack([samples[i]['embedding'] for i in range(num_images)])
            norms = np.array([samples[i]['norm'] for i in range(num_images)])
            try:
                figures, cosine = self._evaluate_set(set_name, embeddings, norms, issame)
            except ValueError as err:
                raise ValueError(f"set '{set_name}': {err}") from err
            metrics.update(figures)
            accuracies.append(metrics[f'{set_name}/accuracy'])
            mfr_figures[set_name] = dict(
                accuracy=metrics[f'{set_name}/accuracy'],
                tar=100.0 * tar_at_far(cosine, issame, (self.mfr_far,))[self.mfr_far]['tar'])
            if self.keep_scores:
                self.last_scores[set_name] = dict(scores=cosine, issame=issame)
        if len(accuracies) > 1:
            metrics['mean_accuracy'] = float(np.mean(accuracies))
        metrics.update(self._flat_mfr_summary(mfr_figures))
        return metrics

    def _flat_mfr_summary(self, mfr_figures: dict) -> dict:
        far = format_far(self.mfr_far)
        out = {}
        for base, summary in mfr_summary(mfr_figures).items():
            for protocol, value in summary['tar'].items():
                out[f'{base}/mfr/tar@far={far}/{protocol}'] = value
            for protocol, value in summary.get('tar_drop', {}).items():
                out[f'{base}/mfr/tar_drop@far={far}/{protocol}'] = value
            for protocol, value in summary.get('accuracy_drop', {}).items():
                out[f'{base}/mfr/accuracy_drop/{protocol}'] = value
        return out

    def _evaluate_set(self, set_name: str, embeddings: np.ndarray, norms: np.ndarray,
                      issame: np.ndarray) -> tuple[dict, np.ndarray]:
        """The set's metric keys and its pair cosine similarities."""
        emb1, emb2 = embeddings[0::2], embeddings[1::2]
        kfold = kfold_accuracy(emb1, emb2, issame, n_folds=self.n_folds)
        # Cosine similarity of normalised embeddings = 1 - dist / 2: same order as the k-fold
        # distance, in the "higher is more similar" convention of the ROC functions.
        e = embeddings.astype(np.float64)
        e /= np.maximum(np.linalg.norm(e, axis=1, keepdims=True), np.finfo(np.float64).tiny)
        cosine = np.sum(e[0::2] * e[1::2], axis=1)
        out = {
            f'{set_name}/accuracy': 100.0 * kfold['accuracy_mean'],
            f'{set_name}/accuracy_std': 100.0 * kfold['accuracy_std'],
            f'{set_name}/best_threshold': kfold['best_threshold_mean'],
            f'{set_name}/xnorm': float(np.mean(norms)),
        }
        for far, res in tar_at_far(cosine, issame, self.fars).items():
            out[f'{set_name}/tar@far={format_far(far)}'] = 100.0 * res['tar']
        out[f'{set_name}/auc'] = 100.0 * auc(cosine, issame)
        out[f'{set_name}/eer'] = 100.0 * eer(cosine, issame)
        return out, cosine
