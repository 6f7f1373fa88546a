"""IJB templates: aggregate image embeddings into template features, select templates.

Template aggregation follows insightface's ``recognition/_evaluation_/ijb/ijb_11.py``
(``image2template_feature`` and the N/D/F test modes): the image embeddings (raw; with flip
test the sum of image and mirror, done upstream by the model) are optionally L2-normalised
(``use_norm_score=False``; the default keeps the norm as a quality weight), multiplied by the
detector's faceness score (``use_detector_score``), averaged within each media (video frames or
a still), summed over the media of a template and L2-normalised. Unlike insightface, a template
whose weighted sum is zero keeps a zero feature (scores 0) instead of NaN, and aggregation is
vectorised (no Python loop over templates).

1:1 verification of template pairs: :mod:`.ijb_verification`; 1:N identification:
:mod:`.ijb_identification`. Both use the input checks here.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

__all__ = [
    'aggregate_templates', 'as_features', 'as_ids', 'l2_normalize_rows', 'select_templates'
]

_TINY = np.finfo(np.float64).tiny


def as_ids(ids: Any, num: int, what: str) -> np.ndarray:
    """``ids`` as a 1-D int64 array of length ``num`` (one-line ``ValueError`` naming ``what``)."""
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f'{what} must be 1-D, got shape {ids.shape}')
    if ids.size != num:
        raise ValueError(f'length mismatch: {num} rows but {ids.size} {what}')
    if ids.dtype.kind not in 'iu':
        if ids.size and not np.all(np.equal(np.mod(ids, 1), 0)):
            raise ValueError(f'{what} must be integers')
        ids = ids.astype(np.int64)
    return ids.astype(np.int64, copy=False)


def as_features(x: Any, what: str) -> np.ndarray:
    """``x`` as a non-empty 2-D float array (fp32 unless already floating point)."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f'{what} must be a non-empty 2-D array, got shape {x.shape}')
    if x.dtype.kind != 'f':
        x = x.astype(np.float32)
    return x


def l2_normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` divided by their L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, _TINY)


def aggregate_templates(embeddings: Any,
                        template_ids: Any,
                        media_ids: Any,
                        faceness: Optional[Any] = None,
                        use_norm_score: bool = True,
                        use_detector_score: bool = True,
                        mean_within_media: bool = True,
                        normalize: bool = True,
                        chunk_rows: int = 16384) -> Tuple[np.ndarray, np.ndarray]:
    """Template features from image embeddings (insightface IJB aggregation).

    Args:
        embeddings (array-like): ``N x D`` raw image embeddings (already flip-summed when flip
            test is used).
        template_ids (array-like): ``N`` template id of each image.
        media_ids (array-like): ``N`` media id of each image.
        faceness (array-like, optional): ``N`` detector scores; needed when
            ``use_detector_score``.
        use_norm_score (bool): keep the embedding norms as weights (insightface N1); False
            L2-normalises each embedding first. Defaults to True.
        use_detector_score (bool): weight each embedding by its faceness (D1). Defaults to True.
        mean_within_media (bool): average the images of a media before summing the media
            (insightface); False sums every image. Defaults to True.
        normalize (bool): L2-normalise the template features. Defaults to True.
        chunk_rows (int): images processed at once (memory bound). Defaults to 16384.

    Returns:
        tuple[np.ndarray, np.ndarray]: the sorted unique template ids ``[T]`` (int64) and
        their features ``[T, D]`` (float32; computed in float64).

    Examples:
        >>> emb = np.array([[1., 0.], [3., 0.], [0., 2.]])
        >>> tids, feats = aggregate_templates(emb, [7, 7, 7], [1, 1, 2],
        ...                                   use_detector_score=False, normalize=False)
        >>> tids.tolist(), feats.tolist()
        ([7], [[2.0, 2.0]])
    """
    emb = as_features(embeddings, 'embeddings')
    num, dim = emb.shape
    tids = as_ids(template_ids, num, 'template_ids')
    mids = as_ids(media_ids, num, 'media_ids')
    weights = None
    if use_detector_score:
        if faceness is None:
            raise ValueError('use_detector_score=True needs the faceness scores')
        weights = np.asarray(faceness, dtype=np.float64).reshape(-1)
        if weights.size != num:
            raise ValueError(f'length mismatch: {num} embeddings but {weights.size} faceness')
        if not np.all(np.isfinite(weights)):
            raise ValueError('faceness scores contain non-finite values')
    if chunk_rows < 1:
        raise ValueError(f'chunk_rows must be >= 1, got {chunk_rows}')

    order = np.lexsort((mids, tids))  # by template, then media
    t_sorted, m_sorted = tids[order], mids[order]
    new_template = np.empty(num, bool)
    new_template[0] = True
    np.not_equal(t_sorted[1:], t_sorted[:-1], out=new_template[1:])
    new_media = new_template.copy()
    new_media[1:] |= m_sorted[1:] != m_sorted[:-1]
    template_starts = np.flatnonzero(new_template)
    unique_templates = t_sorted[template_starts]
    bounds = np.append(template_starts, num)  # rows of template k: bounds[k]:bounds[k + 1]

    out = np.empty((unique_templates.size, dim), np.float32)
    first = 0
    while first < unique_templates.size:
        # As many whole templates as fit in chunk_rows (at least one).
        last = int(np.searchsorted(bounds, bounds[first] + chunk_rows, side='right')) - 1
        last = max(last, first + 1)
        lo, hi = int(bounds[first]), int(bounds[last])
        rows = order[lo:hi]
        x = emb[rows].astype(np.float64)
        if not np.all(np.isfinite(x)):
            raise ValueError('embeddings contain non-finite values (NaN/inf)')
        if not use_norm_score:
            x = l2_normalize_rows(x)
        if weights is not None:
            x *= weights[rows, None]
        media_starts = np.flatnonzero(new_media[lo:hi])
        media_feats = np.add.reduceat(x, media_starts, axis=0)
        if mean_within_media:
            counts = np.diff(np.append(media_starts, hi - lo))
            media_feats /= counts[:, None]
        media_template_starts = np.flatnonzero(new_template[lo:hi][media_starts])
        feats = np.add.reduceat(media_feats, media_template_starts, axis=0)
        if normalize:
            feats = l2_normalize_rows(feats)
        out[first:last] = feats
        first = last
    return unique_templates, out


def _template_rows(template_ids: np.ndarray, wanted: np.ndarray, what: str) -> np.ndarray:
    """Row of each wanted id in ``template_ids`` (error naming the first unknown one)."""
    sorter = np.argsort(template_ids, kind='stable')
    sorted_ids = template_ids[sorter]
    pos = np.searchsorted(sorted_ids, wanted)
    pos_c = np.minimum(pos, sorted_ids.size - 1)
    bad = np.flatnonzero(sorted_ids[pos_c] != wanted)
    if bad.size:
        raise ValueError(f'{what}: template id {int(wanted[bad[0]])} (entry {int(bad[0])}) has '
                         f'no features ({bad.size} unknown)')
    return sorter[pos_c]


def select_templates(template_ids: Any, template_feats: Any, wanted_ids: Any,
                     source: str = 'templates') -> np.ndarray:
    """Rows of ``template_feats`` for ``wanted_ids`` (error naming ``source`` if one is absent).

    Args:
        template_ids (array-like): ``T`` unique template ids.
        template_feats (array-like): ``T x D`` features.
        wanted_ids (array-like): ids to select.
        source (str): where the wanted ids come from, for the error message.

    Returns:
        np.ndarray: ``len(wanted_ids) x D`` features.
    """
    ids = np.asarray(template_ids, dtype=np.int64)
    wanted = np.asarray(wanted_ids, dtype=np.int64).reshape(-1)
    return np.asarray(template_feats)[_template_rows(ids, wanted, source)]
