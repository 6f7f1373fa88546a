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

The model is read by :mod:`coupleface.apis.model_source` (a config + checkpoint, an
``.onnx`` file under onnxruntime, or a config-less arcface_torch ``backbone.pth``), images and
landmarks by :mod:`coupleface.apis.image_input`; this module holds the embedder and its
cosine score.

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

import os
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .calibration import calibrate_threshold
from .image_input import ImageLike, as_image_list, check_landmarks, landmark_list, read_face_image
from .model_loading import ConfigLike
from .model_source import is_onnx, load_embedding_model

__all__ = ['FaceEmbedder', 'cosine_similarity']


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


class FaceEmbedder:
    """Face embeddings and 1:1 verification from a config and a checkpoint, or an ONNX model.

    Args:
        config: Config path (``coupleface::`` allowed), ``Config`` or dict. For a
            ``CoupleFaceDistiller`` config only the student is built. Optional for an
            ``.onnx`` model and a bare ``backbone.pth``; ``FaceEmbedder('model.onnx')`` and
            ``FaceEmbedder('backbone.pth')`` take the file as the model
            (:mod:`coupleface.apis.model_source`).
        checkpoint: A recognizer checkpoint, a distiller checkpoint (``student.*`` keys), a
            bare insightface ``backbone.pth`` (loaded strictly; the margin head is ignored) or
            an ``.onnx`` model (onnxruntime, the ``onnx`` extra).
        device: Torch device. Defaults to ``'cpu'``.
        flip_test: Fuse the embeddings of the image and its mirror (sum of raw embeddings).
            ``None`` takes the model config's ``flip_test`` (False without a config).
        batch_size: Images per forward pass. Defaults to 64.
        network: arcface_torch name (``r50``, ``mbf``...) of a config-less ``backbone.pth``;
            None: read from the weights' shapes.
        input_size: Input side of a config-less model (None: the ONNX graph's, or 112).

    Attributes:
        model: The loaded ``FaceRecognizer`` or ``OnnxRecognizer`` (eval mode).
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

    def __init__(self, config: Optional[ConfigLike] = None,
                 checkpoint: Union[str, os.PathLike, Mapping, None] = None,
                 device: Union[str, torch.device] = 'cpu', flip_test: Optional[bool] = None,
                 batch_size: int = 64, network: Optional[str] = None,
                 input_size: Optional[int] = None) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'batch_size must be a positive int, got {batch_size!r}')
        if checkpoint is None and isinstance(config, (str, os.PathLike)) and (
                is_onnx(config) or os.fspath(config).endswith(('.pth', '.pt'))):
            config, checkpoint = None, config  # FaceEmbedder('w600k_r50.onnx')
        if checkpoint is None:
            raise ValueError('FaceEmbedder needs a model: an .onnx file, a checkpoint with '
                             'its config, or a bare backbone.pth (network= optional)')
        self.device = torch.device(device)
        source = load_embedding_model(checkpoint, config, network=network,
                                      input_size=input_size, device=self.device,
                                      flip_test=flip_test)
        self.source = source
        self.model = source.model
        self.checkpoint_info: Dict[str, Any] = source.info
        self.flip_test = bool(self.model.flip_test)
        self.batch_size = batch_size
        self.input_size = source.input_size
        self._loader = source.loader
        self.threshold: Optional[float] = None
        self.far: Optional[float] = None
        self.calibration: Optional[Dict[str, Any]] = None

    def __repr__(self) -> str:
        model = getattr(self.model, 'backbone', self.model)
        return (f'{type(self).__name__}(backbone={type(model).__name__}, '
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
            img = align_face(img, check_landmarks(landmarks, source or 'the image'), size=112)
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
        items = as_image_list(images)
        marks = landmark_list(landmarks, len(items))
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
        return self.source.embedding_size

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
        items = as_image_list(images)
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
