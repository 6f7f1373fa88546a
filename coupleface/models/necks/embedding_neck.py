"""EmbeddingNeck: the insightface IResNet output layer as a neck for any backbone.

Turns the last feature map of an mmpretrain backbone (ResNet, ConvNeXt, ...) into a face
embedding the way insightface arcface_torch's IResNet does after its last stage
(``bn2`` → dropout → flatten → ``fc`` → ``features``), i.e. BatchNorm2d → Dropout → Flatten →
Linear → BatchNorm1d, keeping the spatial layout (no global pooling), as is usual in face
recognition.
"""
from typing import Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from torch import nn

from coupleface.registry import MODELS


@MODELS.register_module()
class EmbeddingNeck(BaseModule):
    """BN-Dropout-Flatten-FC-BN embedding layer on the last feature map of a backbone.

    ``forward`` embeds the last feature map (a tensor, or the last of the backbone's tuple)
    and returns ``(embedding,)``, ``B x embedding_size``, raw (not normalised).

    Args:
        in_channels (int): Channels of the last feature map.
        feat_size (int | tuple[int, int]): Spatial size ``(h, w)`` of the last feature map
            (an int for square maps), e.g. 4 for mmpretrain ResNet at 112 px.
        embedding_size (int): Output embedding dimension. Defaults to 512.
        dropout (float): Dropout probability before the linear layer. Defaults to 0.
        init_cfg (dict | list[dict], optional): MMEngine init config. Defaults to None.

    Examples:
        >>> # config: backbone=dict(type='ResNet', depth=18),
        >>> #         neck=dict(type='EmbeddingNeck', in_channels=512, feat_size=4)
        >>> neck = EmbeddingNeck(in_channels=512, feat_size=4).eval()
        >>> neck((torch.rand(2, 512, 4, 4), ))[0].shape
        torch.Size([2, 512])
    """

    def __init__(self,
                 in_channels: int,
                 feat_size: Union[int, Sequence[int]],
                 embedding_size: int = 512,
                 dropout: float = 0.0,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(feat_size, int):
            feat_size = (feat_size, feat_size)
        self.in_channels = in_channels
        self.feat_size = tuple(int(s) for s in feat_size)
        self.embedding_size = embedding_size
        self.bn = nn.BatchNorm2d(in_channels, eps=1e-5)
        self.dropout = nn.Dropout(p=dropout)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(in_channels * self.feat_size[0] * self.feat_size[1],
                            embedding_size)
        self.features = nn.BatchNorm1d(embedding_size, eps=1e-5)
        # as insightface's IResNet: the embedding BN's scale stays 1, only its shift is learnt
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False

    def forward(self, inputs: Union[torch.Tensor, Sequence[torch.Tensor]]
                ) -> Tuple[torch.Tensor]:
        x = inputs if isinstance(inputs, torch.Tensor) else inputs[-1]
        expected = (self.in_channels, *self.feat_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f'EmbeddingNeck expects a last feature map of shape B x '
                             f'{expected[0]} x {expected[1]} x {expected[2]} (in_channels, '
                             f'feat_size), got {tuple(x.shape)}')
        x = self.features(self.fc(self.flatten(self.dropout(self.bn(x)))))
        return (x, )
