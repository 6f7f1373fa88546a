"""A face recognizer: data preprocessor + backbone (+ neck) + margin head.

Backbones (and necks) return raw embeddings; the head normalises inside
(docs/architecture.md §4 Embeddings). ``predict`` stores the raw embedding in each data sample, the
sum over the image and its mirror when ``flip_test=True``; metrics normalise.
"""
from __future__ import annotations

from typing import List, Optional, Union

import torch
from mmengine.model import BaseModel
from mmpretrain.structures import DataSample
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from coupleface.registry import MODELS
from coupleface.utils.dist import mark_rank_local_params_for_ddp
from coupleface.utils.face_batch_samples import FaceBatchSamples, batch_field

from .memory_format import to_channels_last


def freeze_batch_norm(module: nn.Module) -> None:
    """Put every BatchNorm layer of ``module`` in eval mode (running stats fixed)."""
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            m.eval()


@MODELS.register_module()
class FaceRecognizer(BaseModel):
    """Face recognition model trained with a margin-softmax head.

    Args:
        backbone: Backbone config (``IResNet``, ``MobileFaceNet`` or any
            mmpretrain backbone followed by an ``EmbeddingNeck``).
        neck: Optional neck config.
        head: Margin head config (``ArcFaceHead`` ...). Optional for models that
            only embed (teachers, deployment).
        data_preprocessor: Defaults to ``FaceDataPreprocessor``.
        flip_test: In ``predict``, embed ``f(x) + f(flip(x))``.
        freeze_bn: Keep BatchNorm layers in eval mode while training (frozen
            statistics, e.g. for exact multi-rank agreement or fine-tuning).
        channels_last: Keep 4-D weights and the input batch in channels-last
            (NHWC) memory: same values, usually faster convolutions on GPUs with
            tensor cores (with AMP); its CPU speed depends on the CPU (docs/benchmarks.md,
            Channels-last). Convolutions with fewer than 16 input channels stay NCHW on
            the CPU, where torch's channels-last backward corrupts the heap
            (:mod:`coupleface.models.recognizers.memory_format`). Works for students
            and frozen teachers alike.
        init_cfg: Initialisation config.

    Examples:
        >>> model = dict(
        ...     type='FaceRecognizer',
        ...     backbone=dict(type='IResNet', arch=50),
        ...     head=dict(type='ArcFaceHead', num_classes=85742, in_channels=512),
        ...     flip_test=True)
    """

    def __init__(self, backbone: dict, neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 flip_test: bool = False, freeze_bn: bool = False,
                 channels_last: bool = False, init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='FaceDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.head = MODELS.build(head) if head is not None else None
        self.flip_test = flip_test
        self.freeze_bn = freeze_bn
        self.channels_last = channels_last
        self._apply_memory_format()
        mark_rank_local_params_for_ddp(self)  # e.g. PartialFC's class-center shards

    def _apply_memory_format(self) -> None:
        # Only 4-D parameters and buffers change layout. Later in-place init and
        # load_state_dict (copy_) and .to(device) keep it.
        if self.channels_last:
            to_channels_last(self)  # narrow convolutions stay NCHW on the CPU (a torch bug)

    def init_weights(self) -> None:
        super().init_weights()
        self._apply_memory_format()  # in case an initialiser replaced a tensor

    @property
    def num_classes(self) -> Optional[int]:
        """Number of identities of the head, or ``None`` without a head."""
        return getattr(self.head, 'num_classes', None)

    def train(self, mode: bool = True) -> 'FaceRecognizer':
        super().train(mode)
        if mode and self.freeze_bn:
            freeze_batch_norm(self)
        return self

    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        """Raw embeddings ``B×d`` of normalised image batches ``B×3×H×W``."""
        # on the CPU the 3-channel stem is a guarded (NCHW) convolution: no conversion
        if self.channels_last and inputs.dim() == 4 and inputs.device.type != 'cpu':
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        x = self.backbone(inputs)
        if self.neck is not None:
            x = self.neck(x)
        if isinstance(x, (tuple, list)):
            x = x[-1]
        return x

    def forward(self, inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor', **kwargs):
        """Dispatch to ``loss``, ``predict`` or plain embedding (``tensor``).

        Extra keys of the preprocessed batch (``teacher_inputs``) are ignored:
        a plain recognizer trains on the student view only.
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.extract_feat(inputs)
        raise RuntimeError(f'Invalid mode "{mode}": expected loss, predict or tensor')

    @staticmethod
    def gt_labels(data_samples: Union[List[DataSample], FaceBatchSamples],
                  device: torch.device) -> torch.Tensor:
        """The ``B`` labels as a long tensor: the ``gt_label`` of each data sample, or the
        label vector of a ``FaceBatchSamples`` (fast path, docs/architecture.md §2.1)."""
        return batch_field(data_samples, 'gt_label').to(device=device, dtype=torch.long)

    def loss(self, inputs: torch.Tensor,
             data_samples: Union[List[DataSample], FaceBatchSamples]) -> dict:
        """Margin-softmax loss of the batch."""
        if self.head is None:
            raise RuntimeError('FaceRecognizer without a head cannot compute a loss')
        feats = self.extract_feat(inputs)
        return self.head.loss(feats, self.gt_labels(data_samples, feats.device))

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """Raw embeddings, with flip fusion (sum) when ``flip_test`` is set."""
        feats = self.extract_feat(inputs)
        if self.flip_test:
            feats = feats + self.extract_feat(inputs.flip(-1))
        return feats

    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None) -> List[DataSample]:
        """Put each sample's raw embedding in its data sample as ``embedding``."""
        feats = self.embed(inputs).detach()
        if data_samples is None:
            data_samples = [DataSample() for _ in range(feats.shape[0])]
        elif isinstance(data_samples, FaceBatchSamples):
            data_samples = data_samples.to_data_samples()
        for sample, feat in zip(data_samples, feats):
            sample.set_field(feat, 'embedding')
        return data_samples
