"""Datasets, samplers and transforms."""
from . import samplers, synthfaces, transforms  # noqa: F401
from .bin_io import BinFormatError, UnsafeFileError, read_bin, write_bin
from .face_batch_collate import face_batch_collate
from .ijb import IJB_META_KEYS, IJBDataset, IJBFormatError, ijb_meta_files, ijb_test_pipeline
from .image_folder import ImageFolderFaceDataset
from .mask_protocols import MASK_PROTOCOLS, masks_image, protocol_set_name, split_protocol_set_name
from .mx_face_dataset import MXFaceDataset, read_property_file
from .mx_record import MXIndexedRecordIO
from .mx_record_codec import IRHeader, RecordIOError, pack, unpack
from .mx_record_writer import MXIndexedRecordIOWriter, write_insightface_rec
from .verification_bin import VerificationBinDataset

__all__ = [
    'IJB_META_KEYS', 'IJBDataset', 'IJBFormatError', 'ijb_meta_files', 'ijb_test_pipeline',
    'BinFormatError', 'IRHeader', 'ImageFolderFaceDataset', 'MXFaceDataset', 'MXIndexedRecordIO',
    'MXIndexedRecordIOWriter', 'RecordIOError', 'UnsafeFileError', 'VerificationBinDataset',
    'pack', 'read_bin', 'read_property_file', 'unpack', 'write_bin', 'write_insightface_rec',
    'face_batch_collate',
    'MASK_PROTOCOLS', 'masks_image', 'protocol_set_name', 'split_protocol_set_name'
]
