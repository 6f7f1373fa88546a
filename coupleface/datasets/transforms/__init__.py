"""Transforms: loading, packing (masking and albumentations in their own files)."""
from coupleface.utils.seeding import (
    get_augment_epoch,
    get_augment_seed,
    sample_rng,
    set_augment_epoch,
    set_augment_seed,
)

from .albu import FaceAlbumentations, build_albumentations
from .alignment import AlignFace
from .flip import RandomFaceFlip
from .formatting import PackFaceInputs
from .loading import ImageDecodeError, LoadFaceImage, decode_face_image
from .mask_render import MASK_SHAPES, MASK_TEXTURES, MaskSpec, draw_mask
from .masking import MASK_COLORS, SyntheticMask
from .pack_face_arrays import PackFaceArrays
from .protocol_mask import ProtocolMask

__all__ = ['AlignFace', 'RandomFaceFlip', 'ImageDecodeError', 'LoadFaceImage',
           'PackFaceInputs', 'PackFaceArrays', 'decode_face_image',
           'FaceAlbumentations', 'build_albumentations', 'MASK_COLORS', 'MASK_SHAPES',
           'MASK_TEXTURES', 'MaskSpec', 'SyntheticMask', 'draw_mask', 'get_augment_epoch',
           'get_augment_seed', 'sample_rng', 'set_augment_epoch', 'set_augment_seed',
           'ProtocolMask']
