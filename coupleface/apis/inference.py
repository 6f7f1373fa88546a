"""Embed and verify faces with a trained recognizer or distilled student (docs/architecture.md §1).

:class:`FaceEmbedder` is the deployment-side twin of the evaluation path: it builds the
recognizer of a config (the ``student`` of a ``CoupleFaceDistiller`` config; no teacher is
built or loaded), loads a recognizer checkpoint, a distiller checkpoint (``student.*`` keys)
or a bare insightface ``backbone.pth`` strictly, and prepares images exactly as the test
pipeline and ``FaceDataPreprocessor`` do (decode to BGR uint8, ``LoadFaceImage`` resize to
the configured size, RGB, ``(x - 127.5) / 127.5``). Faces that are not aligned yet are aligned
from their 5 landmarks (insightface template, :mod:`coupleface.utils.face_alignment`) first.

Embeddings are L2-normalised by default and, with flip fusion, the normalised sum of the
raw embeddings of the image and its mirror, as ``FaceRecognizer.predict`` + the verification
metric compute them. :meth:`FaceEmbedder.verify` compares two faces by cosine similarity
against a threshold calibrated for a target FAR on an insightface ``.bin`` pair set
(:mod:`coupleface.apis.calibration`) or given by hand.

Examples:
    >>> from coupleface.apis import FaceEmbedder
    >>> embedder = FaceEmbedder('configs/arcface/mobilefacenet_1xb128_synthfaces-56px.py',
    ...                         'work_dirs/mbf/epoch_8.pth')
    >>> emb = embedder.embed(['a.jpg', 'b.jpg'])           # (2, 128) float32, unit norm
    >>> embedder.calibrate('data/synthfaces/val.bin', far=1e-3)
    >>> embedder.verify('a.jpg', 'b.jpg')
    {'score': 0.71, 'same': True, 'threshold': 0.43, 'far': 0.001}
"""
from __future__ import annotations

import copy
import os
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config

from coupleface.datasets.transforms.loading import (
    ImageDecodeError,
    LoadFaceImage,
    decode_face_image,
)
from coupleface.utils.checkpoint_state_dict import (
    CheckpointKeyError,
    load_state_dict_flexible,
)
from coupleface.utils.recognizer_checkpoint import (
    read_recognizer_checkpoint,
)

from .calibration import calibrate_threshold

__all__ = [
    'FaceEmbedder', 'build_recognizer', 'configured_input_size', 'cosine_similarity',
    'init_recognizer', 'load_config', 'load_recognizer_checkpoint', 'read_face_image',
    'read_recognizer_checkpoint', 'recognizer_model_config'
]

ImageLike = Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray]
ConfigLike = Union[str, os.PathLike, Config, Mapping]



# ---------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------

def load_config(config: ConfigLike) -> Config:
    """A :class:`mmengine.config.Config` from a path (``coupleface::`` resolved) or dict.

    Args:
        config: A config file path, ``coupleface::rel/path.py``, a ``Config`` or a dict
            holding at least ``model``.

    Returns:
        Config: The config (a copy when a dict was given).
    """
    import coupleface  # noqa: F401  (makes coupleface:: _base_ paths resolvable)
    from coupleface.utils.config_scope import resolve_config_path

    if isinstance(config, Config):
        cfg = config
    elif isinstance(config, Mapping):
        cfg = Config(copy.deepcopy(dict(config)))
    elif isinstance(config, (str, os.PathLike)):
        path = resolve_config_path(os.fspath(config))
        if not osp.isfile(path):
            raise FileNotFoundError(f'config not found: {path}')
        cfg = Config.fromfile(path)
    else:
        raise ValueError(f'config must be a path, a Config or a dict, got {type(config).__name__}')
    if not isinstance(cfg.get('model'), Mapping):
        raise ValueError(f'config {getattr(cfg, "filename", None) or "<dict>"} has no model')
    return cfg


def _is_distiller(model_cfg: Mapping) -> bool:
    return isinstance(model_cfg.get('student'), Mapping)


def recognizer_model_config(cfg: Config, with_head: bool = False) -> dict:
    """The recognizer config to deploy: the model, or a distiller's ``student``.

    A distiller's own ``data_preprocessor`` (what it trained with) is given to a student
    config that has none.

    Args:
        cfg: The full config.
        with_head: Keep the margin head (inference never needs it). Defaults to False.

    Returns:
        dict: A ``FaceRecognizer`` config.
    """
    model_cfg = cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else dict(cfg.model)
    if _is_distiller(model_cfg):
        student = copy.deepcopy(dict(model_cfg['student']))
        if model_cfg.get('data_preprocessor') is not None and \
                student.get('data_preprocessor') is None:
            student['data_preprocessor'] = copy.deepcopy(model_cfg['data_preprocessor'])
        model_cfg = student
    model_cfg = copy.deepcopy(model_cfg)
    if not with_head:
        model_cfg.pop('head', None)
    model_cfg.pop('init_cfg', None)  # weights come from the checkpoint
    return model_cfg


def _find_load_face_image(node: Any) -> Optional[dict]:
    """The first ``LoadFaceImage`` transform config inside a dataloader/dataset config."""
    if isinstance(node, Mapping):
        if str(node.get('type', '')).split('.')[-1] == 'LoadFaceImage':
            return dict(node)
        for key in ('pipeline', 'dataset', 'datasets'):
            if key in node:
                found = _find_load_face_image(node[key])
                if found is not None:
                    return found
    elif isinstance(node, (list, tuple)):
        for item in node:
            found = _find_load_face_image(item)
            if found is not None:
                return found
    return None


def _test_loader_config(cfg: Config) -> Optional[dict]:
    for key in ('test_dataloader', 'val_dataloader', 'test_pipeline', 'val_pipeline'):
        found = _find_load_face_image(cfg.get(key))
        if found is not None:
            return found
    return None


def _backbone_input_size(model_cfg: Mapping) -> Optional[int]:
    size = dict(model_cfg.get('backbone') or {}).get('input_size')
    if isinstance(size, int):
        return size
    if isinstance(size, (list, tuple)) and len(size) == 2 and size[0] == size[1]:
        return int(size[0])
    return None


def configured_input_size(cfg: Config) -> int:
    """Side of the images the model takes: the test pipeline's ``LoadFaceImage.size``.

    Falls back to the backbone's ``input_size`` and then to 112 (the canonical aligned face)
    when the config has no test pipeline or its ``LoadFaceImage`` keeps the source size.

    Args:
        cfg: The full config.

    Returns:
        int: The square input side in pixels.
    """
    loader = _test_loader_config(cfg)
    if loader is not None and loader.get('size') is not None:
        return int(loader['size'])
    return _backbone_input_size(recognizer_model_config(cfg)) or 112


def _image_loader(cfg: Config) -> LoadFaceImage:
    """The test pipeline's ``LoadFaceImage`` (same size and interpolation), raising on error."""
    loader_cfg = _test_loader_config(cfg) or {}
    kwargs = {k: v for k, v in loader_cfg.items() if k in ('interpolation', )}
    return LoadFaceImage(size=configured_input_size(cfg), on_error='raise', **kwargs)


# ---------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------

def _one_line(err: CheckpointKeyError, source: str, model: torch.nn.Module) -> str:
    lines = [ln.strip() for ln in str(err).splitlines()[1:] if ln.strip()]
    backbone = type(getattr(model, 'backbone', model)).__name__
    return (f'checkpoint {source} does not fit the configured {backbone} model (another '
            f'architecture or size?): ' + '; '.join(lines))


def load_recognizer_checkpoint(model: torch.nn.Module, checkpoint: Union[str, os.PathLike,
                                                                           Mapping],
                               source: Optional[str] = None) -> Dict[str, Any]:
    """Load a recognizer, distiller or bare backbone checkpoint strictly into ``model``.

    Margin-head keys are ignored when ``model`` has no head (deployment needs none); every
    other key must match in name and shape (:func:`load_state_dict_flexible`, strict).

    Args:
        model: A ``FaceRecognizer`` (typically without head).
        checkpoint: A path or a loaded checkpoint (see :func:`read_recognizer_checkpoint`).
        source: Name of an in-memory checkpoint in messages.

    Returns:
        dict: The ``info`` of :func:`read_recognizer_checkpoint`.

    Raises:
        CheckpointKeyError: the keys or shapes differ (another architecture); the one-line
            message lists the missing, unexpected and reshaped keys.
    """
    state, info = read_recognizer_checkpoint(checkpoint, source)
    if getattr(model, 'head', None) is None:
        head = [k for k in state if k.startswith('head.')]
        for key in head:
            del state[key]
        info['dropped'] += head
    try:
        load_state_dict_flexible(model, state, strict=True, prefix_map={}, source=info['source'])
    except CheckpointKeyError as err:
        raise CheckpointKeyError(_one_line(err, info['source'], model)) from None
    return info


def build_recognizer(config: ConfigLike, with_head: bool = False) -> torch.nn.Module:
    """Build the (untrained) recognizer of a config: the model or a distiller's student.

    Args:
        config: Config path, ``Config`` or dict.
        with_head: Keep the margin head. Defaults to False.

    Returns:
        FaceRecognizer: The model (training mode, random weights).
    """
    from coupleface.registry import MODELS
    from coupleface.setup_env import register_all_modules

    register_all_modules(init_default_scope=False)
    cfg = load_config(config)
    return MODELS.build(recognizer_model_config(cfg, with_head=with_head))


def init_recognizer(config: ConfigLike, checkpoint: Union[str, os.PathLike, Mapping],
                    device: Union[str, torch.device] = 'cpu') -> torch.nn.Module:
    """Build the recognizer of ``config``, load ``checkpoint`` strictly, eval mode, fp32.

    Args:
        config: Config path, ``Config`` or dict (a distiller config gives its student).
        checkpoint: Recognizer, distiller or bare insightface backbone checkpoint.
        device: Where to put the model. Defaults to ``'cpu'``.

    Returns:
        FaceRecognizer: The loaded model, with ``checkpoint_info`` (see
        :func:`read_recognizer_checkpoint`) and ``input_size`` attributes.
    """
    cfg = load_config(config)
    model = build_recognizer(cfg)
    info = load_recognizer_checkpoint(model, checkpoint)
    model.checkpoint_info = info
    model.input_size = configured_input_size(cfg)
    return model.float().to(device).eval()


# ---------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------

def read_face_image(image: ImageLike, source: Optional[str] = None) -> np.ndarray:
    """Decode an image path, encoded bytes or a BGR array to a ``H×W×3`` uint8 BGR array.

    Args:
        image: A file path, encoded file bytes (or a 1-D uint8 array of them), or a decoded
            ``H×W×3`` (BGR) / ``H×W`` uint8 array.
        source: Name used in error messages (defaults to the path).

    Returns:
        np.ndarray: The BGR image.

    Raises:
        FileNotFoundError: the path does not exist (the message names it).
        ImageDecodeError: the file/bytes are not a decodable image (the message names the
            path or source).
    """
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        try:
            with open(path, 'rb') as f:
                data = f.read()
        except FileNotFoundError:
            raise FileNotFoundError(f'image not found: {path}') from None
        except OSError as err:
            raise ImageDecodeError(f'{path}: cannot read image file ({err.strerror})') from None
        try:
            return decode_face_image(data, source=path)
        except ImageDecodeError as err:
            raise ImageDecodeError(f'{err} (not a readable image file)') from None
    if isinstance(image, (bytes, bytearray, memoryview, np.ndarray)):
        return decode_face_image(image, source=source or f'<{type(image).__name__}>')
    raise ValueError(f'{source or "image"}: expected a path, encoded bytes or a uint8 BGR '
                     f'array, got {type(image).__name__}')


def _as_image_list(images: Any) -> List[Any]:
    if isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview)):
        return [images]
    if isinstance(images, np.ndarray):
        return list(images) if images.ndim == 4 else [images]
    return list(images)


def _check_landmarks(points: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(points, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(f'landmarks of {what} are not a numeric 5x2 array: {points!r}') from None
    if arr.shape != (5, 2):
        raise ValueError(f'landmarks of {what} have shape {tuple(arr.shape)}; expected '
                         '(5, 2): (x, y) of left eye, right eye, nose, left and right mouth '
                         'corners')
    if not np.all(np.isfinite(arr)):
        raise ValueError(f'landmarks of {what} are not finite: {arr.tolist()}')
    return arr


def _landmark_list(landmarks: Any, num_images: int) -> List[Optional[np.ndarray]]:
    """Per-image ``5×2`` landmarks (``None``: the face is already aligned)."""
    if landmarks is None:
        return [None] * num_images
    per_image = isinstance(landmarks, (list, tuple)) and any(lm is None for lm in landmarks)
    if not per_image:
        try:
            arr = np.asarray(landmarks, dtype=np.float32)
        except (TypeError, ValueError):  # ragged: report the offending image below
            per_image = True
    if not per_image:
        if arr.ndim == 2 and num_images == 1:
            arr = arr[None]  # the landmarks of the only image
        if arr.ndim != 3:
            raise ValueError(f'landmarks have shape {tuple(arr.shape)}; expected '
                             f'({num_images}, 5, 2): 5 (x, y) points per image')
        items = list(arr)
    else:
        items = list(landmarks)
    if len(items) != num_images:
        raise ValueError(f'{len(items)} landmark sets for {num_images} images')
    return [None if lm is None else _check_landmarks(lm, f'image {i}')
            for i, lm in enumerate(items)]


def cosine_similarity(emb1: np.ndarray, emb2: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of raw embeddings, in float64 (as VerificationMetric).

    Args:
        emb1: ``N×d`` (or ``d``) embeddings.
        emb2: Same shape as ``emb1``.

    Returns:
        np.ndarray: ``N`` similarities (a 0-d array for 1-D inputs).
    """
    e1 = np.asarray(emb1, dtype=np.float64)
    e2 = np.asarray(emb2, dtype=np.float64)
    if e1.shape != e2.shape:
        raise ValueError(f'embedding shapes differ: {e1.shape} vs {e2.shape}')
    tiny = np.finfo(np.float64).tiny
    e1 = e1 / np.maximum(np.linalg.norm(e1, axis=-1, keepdims=True), tiny)
    e2 = e2 / np.maximum(np.linalg.norm(e2, axis=-1, keepdims=True), tiny)
    return np.sum(e1 * e2, axis=-1)


# ---------------------------------------------------------------------------
# The embedder
# ---------------------------------------------------------------------------

class FaceEmbedder:
    """Face embeddings and 1:1 verification from a config and a checkpoint.

    Args:
        config: Config path (``coupleface::`` allowed), ``Config`` or dict. For a
            ``CoupleFaceDistiller`` config only the student is built.
        checkpoint: A recognizer checkpoint, a distiller checkpoint (``student.*`` keys) or a
            bare insightface ``backbone.pth``; loaded strictly (the margin head is not needed
            and ignored).
        device: Torch device. Defaults to ``'cpu'``.
        flip_test: Fuse the embeddings of the image and its mirror (sum of raw embeddings).
            ``None`` takes the model config's ``flip_test``.
        batch_size: Images per forward pass. Defaults to 64.

    Attributes:
        model: The loaded ``FaceRecognizer`` (eval mode).
        input_size: Side of the model's input images (the test pipeline's).
        threshold: The cosine threshold set by :meth:`calibrate` (``None`` before).
        far: The target FAR of that threshold.
        checkpoint_info: What the checkpoint was (``kind``, ``meta``, ``teacher``...).

    Examples:
        >>> embedder = FaceEmbedder(
        ...     'coupleface::arcface/mobilefacenet_1xb128_synthfaces-56px.py',
        ...     'work_dirs/mbf/epoch_8.pth')
        >>> embedder.embed('face.jpg').shape
        (1, 128)
        >>> embedder.embed('photo.jpg', landmarks=[[[190, 240], [260, 238], [226, 280],
        ...                                        [200, 320], [255, 318]]])
        >>> embedder.calibrate('data/synthfaces/val.bin', far=1e-3)['threshold']
        >>> embedder.verify('a.jpg', 'b.jpg')['same']
    """

    def __init__(self, config: ConfigLike, checkpoint: Union[str, os.PathLike, Mapping],
                 device: Union[str, torch.device] = 'cpu', flip_test: Optional[bool] = None,
                 batch_size: int = 64) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'batch_size must be a positive int, got {batch_size!r}')
        self.cfg = load_config(config)
        self.device = torch.device(device)
        self.model = init_recognizer(self.cfg, checkpoint, device=self.device)
        self.checkpoint_info: Dict[str, Any] = self.model.checkpoint_info
        if flip_test is None:
            flip_test = bool(recognizer_model_config(self.cfg).get('flip_test', False))
        self.flip_test = bool(flip_test)
        self.model.flip_test = self.flip_test
        self.batch_size = batch_size
        self.input_size = configured_input_size(self.cfg)
        self._loader = _image_loader(self.cfg)
        self.threshold: Optional[float] = None
        self.far: Optional[float] = None
        self.calibration: Optional[Dict[str, Any]] = None

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(backbone={type(self.model.backbone).__name__}, '
                f'input_size={self.input_size}, flip_test={self.flip_test}, '
                f'threshold={self.threshold}, far={self.far})')

    # -- images ---------------------------------------------------------------------------
    def prepare_image(self, image: ImageLike, landmarks: Optional[Any] = None,
                      source: Optional[str] = None) -> np.ndarray:
        """The BGR uint8 ``input_size²`` face the model sees (aligned first with landmarks).

        Args:
            image: Path, encoded bytes or BGR uint8 array.
            landmarks: Optional ``5×2`` landmarks of the face in ``image``; without them the
                image must already be an aligned face (any size: it is resized as the test
                pipeline does).
            source: Name used in error messages.

        Returns:
            np.ndarray: ``input_size × input_size × 3`` uint8 BGR.
        """
        img = read_face_image(image, source)
        if landmarks is not None:
            from coupleface.utils.face_alignment import align_face

            # Align at the canonical 112 px, then resize like the test pipeline: the
            # training faces were aligned at 112 and resized by LoadFaceImage.
            img = align_face(img, _check_landmarks(landmarks, source or 'the image'), size=112)
        return self._loader.transform(dict(img_bytes=img, img_path=source))['img']

    @torch.no_grad()
    def _forward(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        inputs = [torch.from_numpy(np.ascontiguousarray(f.transpose(2, 0, 1))) for f in faces]
        data = self.model.data_preprocessor(dict(inputs=inputs), False)
        return self.model.embed(data['inputs']).float().cpu().numpy()

    def embed(self, images: Union[ImageLike, Sequence[ImageLike]],
              landmarks: Optional[Any] = None, raw: bool = False) -> np.ndarray:
        """Embed faces.

        Args:
            images: One image or a sequence of them: paths, encoded bytes, BGR uint8 arrays
                (an ``N×H×W×3`` array is N images). Aligned faces of any size (resized to
                ``input_size``), or any photo of a face with ``landmarks``.
            landmarks: ``N×5×2`` array, or a list with one ``5×2`` array (or ``None`` for an
                already aligned face) per image.
            raw: Return the raw embeddings (flip-summed with flip test) instead of
                L2-normalised ones.

        Returns:
            np.ndarray: ``N×D`` float32 embeddings, L2-normalised unless ``raw``.
        """
        items = _as_image_list(images)
        marks = _landmark_list(landmarks, len(items))
        out = []
        for start in range(0, len(items), self.batch_size):
            faces = [
                self.prepare_image(img, lm, source=os.fspath(img)
                                   if isinstance(img, (str, os.PathLike)) else
                                   f'image {start + i}')
                for i, (img, lm) in enumerate(zip(items[start:start + self.batch_size],
                                                  marks[start:start + self.batch_size]))
            ]
            out.append(self._forward(faces))
        dim = self.embedding_size
        emb = np.concatenate(out) if out else np.zeros((0, dim or 0), np.float32)
        if raw:
            return emb.astype(np.float32)
        norms = np.linalg.norm(emb.astype(np.float64), axis=1, keepdims=True)
        return (emb / np.maximum(norms, np.finfo(np.float64).tiny)).astype(np.float32)

    @property
    def embedding_size(self) -> Optional[int]:
        """Embedding dimension of the model (``None`` if it does not say)."""
        for part in (getattr(self.model, 'neck', None), self.model.backbone):
            size = getattr(part, 'embedding_size', None)
            if size is not None:
                return int(size)
        return None

    # -- verification ---------------------------------------------------------------------
    def similarity(self, image1: ImageLike, image2: ImageLike, landmarks1: Optional[Any] = None,
                   landmarks2: Optional[Any] = None) -> float:
        """Cosine similarity of two faces (of their flip-fused embeddings with flip test)."""
        raw = self.embed([image1, image2], landmarks=[landmarks1, landmarks2], raw=True)
        return float(cosine_similarity(raw[0], raw[1]))

    def verify(self, image1: ImageLike, image2: ImageLike, threshold: Optional[float] = None,
               landmarks1: Optional[Any] = None,
               landmarks2: Optional[Any] = None) -> Dict[str, Any]:
        """Decide whether two faces show the same person.

        Args:
            image1, image2: The faces (see :meth:`embed`).
            threshold: Cosine threshold; defaults to the one set by :meth:`calibrate`.
            landmarks1, landmarks2: Optional ``5×2`` landmarks of unaligned faces.

        Returns:
            dict: ``score`` (cosine similarity), ``same`` (``score >= threshold``),
            ``threshold`` and ``far`` (the calibrated target FAR; ``None`` for a threshold
            given by hand).

        Raises:
            ValueError: no threshold was given and none was calibrated.
        """
        far = None
        if threshold is None:
            if self.threshold is None:
                raise ValueError('no verification threshold: call calibrate(<pairs.bin>, '
                                 'far=...) first or pass threshold=')
            threshold, far = self.threshold, self.far
        threshold = float(threshold)
        score = self.similarity(image1, image2, landmarks1, landmarks2)
        return dict(score=score, same=bool(score >= threshold), threshold=threshold, far=far)

    def pair_scores(self, images: Sequence[ImageLike]) -> np.ndarray:
        """Cosine scores of consecutive pairs ``(2i, 2i+1)`` of aligned faces (``.bin`` order).

        Args:
            images: ``2P`` images.

        Returns:
            np.ndarray: ``P`` float64 scores.
        """
        items = _as_image_list(images)
        if len(items) % 2:
            raise ValueError(f'{len(items)} images do not form pairs (2 per pair)')
        raw = self.embed(items, raw=True)
        return cosine_similarity(raw[0::2], raw[1::2])

    def calibrate(self, pairs: Any, far: float = 1e-3,
                  set_name: Optional[str] = None) -> Dict[str, Any]:
        """Set :attr:`threshold` for a target FAR from a labelled pair set.

        The threshold is the lowest cosine score whose FAR on the pairs is ``<= far``
        (:func:`coupleface.apis.calibration.calibrate_threshold`).

        Args:
            pairs: An insightface ``.bin`` path, a ``VerificationBinDataset`` (its encoded
                images are used, not its pipeline: the embedder prepares them), or a tuple
                ``(images, issame)`` with ``2P`` aligned faces and ``P`` flags.
            far: Target false accept rate. Defaults to ``1e-3``.
            set_name: With a dataset of several sets, the one to use (default: all pooled).

        Returns:
            dict: ``threshold``, ``far``, ``far_actual``, ``tar``, ``num_pairs``,
            ``num_negatives``, and the pair ``scores`` and ``issame``.
        """
        images, issame = self._pair_set(pairs, set_name)
        if len(images) != 2 * len(issame):
            raise ValueError(f'{len(images)} images for {len(issame)} pairs; need 2 per pair')
        scores = self.pair_scores(images)
        result = calibrate_threshold(scores, issame, far)
        self.threshold, self.far = result['threshold'], result['far']
        result.update(scores=scores, issame=issame)
        self.calibration = result
        return result

    @staticmethod
    def _pair_set(pairs: Any, set_name: Optional[str]) -> Tuple[List[Any], np.ndarray]:
        if isinstance(pairs, (str, os.PathLike)):
            from coupleface.datasets.bin_io import read_bin

            path = os.fspath(pairs)
            if not osp.isfile(path):
                raise FileNotFoundError(f'pair set not found: {path}')
            images, issame = read_bin(path)
            return list(images), np.asarray(issame, dtype=bool)
        if isinstance(pairs, tuple) and len(pairs) == 2:
            return list(pairs[0]), np.asarray(pairs[1], dtype=bool).reshape(-1)
        if hasattr(pairs, 'get_data_info') and hasattr(pairs, 'metainfo'):
            if hasattr(pairs, 'full_init'):
                pairs.full_init()
            pair_sets = pairs.metainfo.get('pair_sets') or {}
            names = list(pair_sets) if set_name is None else [set_name]
            unknown = [n for n in names if n not in pair_sets]
            if unknown or not names:
                raise ValueError(f'pair set {unknown or names} not in the dataset '
                                 f'({sorted(pair_sets)})')
            by_set: Dict[str, Dict[int, Any]] = {n: {} for n in names}
            for i in range(len(pairs)):
                info = pairs.get_data_info(i)
                if info.get('set_name') in by_set:
                    by_set[info['set_name']][int(info['sample_idx'])] = info['img_bytes']
            images: List[Any] = []
            flags: List[bool] = []
            for name in names:
                num = int(pair_sets[name]['num_images'])
                if sorted(by_set[name]) != list(range(num)):
                    raise ValueError(f'set {name!r}: images missing from the dataset')
                images += [by_set[name][i] for i in range(num)]
                flags += [bool(x) for x in pair_sets[name]['issame']]
            return images, np.asarray(flags, dtype=bool)
        raise ValueError('pairs must be a .bin path, a VerificationBinDataset or '
                         f'(images, issame), got {type(pairs).__name__}')
