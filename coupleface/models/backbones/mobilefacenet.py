"""MobileFaceNet, key-compatible with insightface arcface_torch's ``mbf`` / ``mbf_large``.

Follows "MobileFaceNets: Efficient CNNs for Accurate Real-Time Face Verification on Mobile
Devices" (Chen et al., 2018) in the variant of insightface
``recognition/arcface_torch/backbones/mobilefacenet.py`` (itself from cavaface): widths scaled
by ``scale``, PReLU activations, a 1x1 ``conv_sep`` to 512 channels and a global depthwise
convolution (GDC) head in ``features``. Module names, nesting and shapes match insightface, so
its released ``backbone.pth`` files load with ``strict=True``.

Differences from insightface, none of which changes a key: the input size is a parameter (the
GDC kernel equals the last feature map, 7x7 at 112 px), and blocks can be
gradient-checkpointed.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from torch import nn
from torch.utils.checkpoint import checkpoint

from coupleface.registry import MODELS

from .input_size import as_pair as _pair
from .input_size import stride2_output_size as _stride2_output_size


class ConvBlock(nn.Module):
    """Conv (no bias) → BN → PReLU, held in ``layers`` as insightface does."""

    #: Whether ``layers`` ends with a PReLU (``layers.2``).
    activate: bool = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size=1, stride=1, padding=0,
                 groups: int = 1) -> None:
        super().__init__()
        layers = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups,
                      bias=False),
            nn.BatchNorm2d(out_channels)]
        if self.activate:
            layers.append(nn.PReLU(out_channels))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class LinearBlock(ConvBlock):
    """Conv (no bias) → BN without activation (a linear bottleneck projection)."""

    activate = False


class DepthWise(nn.Module):
    """Inverted bottleneck: 1x1 expand → 3x3 depthwise (stride) → 1x1 linear projection.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        mid_channels (int): Width of the depthwise convolution (insightface calls this
            ``groups``; it is fixed per stage and does not follow ``scale``).
        stride (int): Stride of the depthwise convolution.
        residual (bool): Add the input to the output (needs equal shapes).
    """

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int, stride: int = 1,
                 residual: bool = False) -> None:
        super().__init__()
        self.residual = residual
        self.layers = nn.Sequential(
            ConvBlock(in_channels, mid_channels, 1),
            ConvBlock(mid_channels, mid_channels, 3, stride, 1, groups=mid_channels),
            LinearBlock(mid_channels, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(x)
        return x + out if self.residual else out


class Residual(nn.Module):
    """A stage of ``num_blocks`` stride-1 residual :class:`DepthWise` blocks."""

    def __init__(self, channels: int, num_blocks: int, mid_channels: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(*[
            DepthWise(channels, channels, mid_channels, stride=1, residual=True)
            for _ in range(num_blocks)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class GDC(nn.Module):
    """Global depthwise conv head: k x k depthwise conv + BN → flatten → Linear → BN1d."""

    def __init__(self, channels: int, embedding_size: int, kernel_size: Tuple[int, int]) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            LinearBlock(channels, channels, kernel_size, groups=channels),
            nn.Flatten(),
            nn.Linear(channels, embedding_size, bias=False),
            nn.BatchNorm1d(embedding_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


@MODELS.register_module()
class MobileFaceNet(BaseModule):
    """MobileFaceNet face embedding backbone (insightface arcface_torch layout).

    ``layers`` holds eight entries: stem conv (stride 2), a depthwise conv (or a residual stage
    when ``blocks[0] > 1``), then three times a stride-2 :class:`DepthWise` followed by a
    :class:`Residual` stage; then ``conv_sep`` (1x1 to 512) and the :class:`GDC` head
    ``features``.

    Args:
        arch (str): ``'mbf'`` (``blocks=(1, 4, 6, 2)``, ``scale=2``, insightface ``mbf``) or
            ``'mbf_large'`` (``blocks=(2, 8, 12, 4)``, ``scale=4``). Defaults to ``'mbf'``.
        num_features (int, optional): Embedding dimension (insightface's name). Defaults to
            512.
        blocks (Sequence[int], optional): Blocks per stage; overrides the arch's.
        scale (int, optional): Width multiplier of the stages; overrides the arch's.
        input_size (int | tuple[int, int]): Input image size; the GDC kernel is the last
            feature map, ``ceil(input_size / 16)`` (7 at 112 px). Defaults to 112.
        embedding_size (int, optional): Alias of ``num_features``.
        with_cp (bool): Gradient-checkpoint each entry of ``layers`` while training.
            Defaults to False.
        init_cfg (dict | list[dict], optional): MMEngine init config. Defaults to None, which
            keeps insightface's initialisation (Kaiming normal, fan_out).

    Returns (forward):
        tuple[Tensor]: ``(embedding,)`` of shape ``B x num_features``, raw (not normalised).

    Examples:
        >>> import torch
        >>> from coupleface.models.backbones import MobileFaceNet
        >>> model = MobileFaceNet(input_size=64, embedding_size=128).eval()
        >>> model(torch.rand(2, 3, 64, 64))[0].shape
        torch.Size([2, 128])
        >>> # config: backbone=dict(type='MobileFaceNet', arch='mbf_large')
    """

    arch_settings = {
        'mbf': dict(blocks=(1, 4, 6, 2), scale=2),
        'mbf_large': dict(blocks=(2, 8, 12, 4), scale=4),
    }
    # insightface's fixed widths, independent of ``scale``: groups of the stride-1 depthwise
    # conv in ``layers[1]`` (when ``blocks[0] == 1``) and the depthwise width of ``layers[1..7]``
    stem_dw_groups = 64
    mid_channels = (128, 128, 128, 256, 256, 512, 256)
    conv_sep_channels = 512

    def __init__(self,
                 arch: str = 'mbf',
                 num_features: Optional[int] = None,
                 blocks: Optional[Sequence[int]] = None,
                 scale: Optional[int] = None,
                 input_size: Union[int, Sequence[int]] = 112,
                 embedding_size: Optional[int] = None,
                 with_cp: bool = False,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if arch not in self.arch_settings:
            raise ValueError(f'MobileFaceNet arch must be one of {sorted(self.arch_settings)}, '
                             f'got {arch!r}')
        if (num_features is not None and embedding_size is not None
                and num_features != embedding_size):
            raise ValueError(f'MobileFaceNet got num_features={num_features} and '
                             f'embedding_size={embedding_size}; they are aliases, give one')
        blocks = tuple(blocks if blocks is not None else self.arch_settings[arch]['blocks'])
        if len(blocks) != 4 or min(blocks) < 1:
            raise ValueError(f'MobileFaceNet blocks must be 4 positive ints, got {blocks}')
        scale = scale if scale is not None else self.arch_settings[arch]['scale']
        self.embedding_size = embedding_size or num_features or 512
        self.blocks, self.scale = blocks, scale
        self.input_size = _pair(input_size)
        self.with_cp = with_cp

        c1, c2 = 64 * scale, 128 * scale
        mid = self.mid_channels
        if blocks[0] == 1:
            stage1 = ConvBlock(c1, c1, 3, 1, 1, groups=self.stem_dw_groups)
        else:
            stage1 = Residual(c1, blocks[0], mid[0])
        self.layers = nn.ModuleList([
            ConvBlock(3, c1, 3, 2, 1),
            stage1,
            DepthWise(c1, c1, mid[1], stride=2),
            Residual(c1, blocks[1], mid[2]),
            DepthWise(c1, c2, mid[3], stride=2),
            Residual(c2, blocks[2], mid[4]),
            DepthWise(c2, c2, mid[5], stride=2),
            Residual(c2, blocks[3], mid[6]),
        ])
        self.conv_sep = ConvBlock(c2, self.conv_sep_channels, 1)
        gdc_kernel = tuple(_stride2_output_size(s, 4) for s in self.input_size)
        self.features = GDC(self.conv_sep_channels, self.embedding_size, gdc_kernel)

        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        for layer in self.layers:
            if self.with_cp and self.training:
                x = checkpoint(layer, x, use_reentrant=False)
            else:
                x = layer(x)
        x = self.conv_sep(x)
        kernel = self.features.layers[0].layers[0].kernel_size
        if tuple(x.shape[2:]) != tuple(kernel):
            raise ValueError(f'MobileFaceNet built for input_size={self.input_size} (GDC kernel '
                             f'{tuple(kernel)}) got a {tuple(x.shape[2:])} last feature map; '
                             'set input_size to the image size')
        return (self.features(x), )
