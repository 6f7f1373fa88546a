"""Verification pair sets from insightface ``.bin`` files (LFW, CFP-FP, AgeDB-30, ...).

One dataset holds one or more pair sets: the images of all sets are flattened
into one data list (set after set), each item keeping its set name and its
index inside its own set, which is what the verification metric pairs on
(pair ``i`` of a set = its images ``2i`` and ``2i + 1``). The issame labels
are in ``metainfo['pair_sets']``. Images stay encoded: the pipeline's
``LoadFaceImage`` decodes ``img_bytes``.

Masked-face protocols (ICCV 2021 MFR style, see
:mod:`coupleface.datasets.transforms.protocol_mask`): with ``protocols``, every
set is listed once per protocol (``lfw``, ``lfw@masked_unmasked``,
``lfw@masked_masked``), each a pair set of its own with the same issame list;
the items carry ``mask_protocol`` and a ``ProtocolMask`` transform in the
pipeline draws the masks. The encoded images are repeated per protocol, so the
memory of the dataset grows with the number of protocols.
"""
from __future__ import annotations

import copy
import os.path as osp
import pickle
from typing import Any, List, Optional, Sequence, Union

from mmengine.dataset import BaseDataset, force_full_init

from coupleface.registry import DATASETS

from .bin_io import read_bin
from .mask_protocols import MASK_PROTOCOLS, protocol_set_name
from .missing_data import check_exists


@DATASETS.register_module()
class VerificationBinDataset(BaseDataset):
    """Images of one or more ``.bin`` pair sets, for ``ValLoop``/``TestLoop``.

    Each item is ``dict(img_bytes=<bytes or 1-D uint8 array>, set_name=str,
    sample_idx=<index in its own set>, global_idx=<index in this dataset>,
    mask_protocol=str, base_set_name=str)``. ``metainfo['pair_sets']`` is
    ``{set_name: {'issame': [bool] * P, 'num_images': 2P}}`` and
    ``metainfo['set_names']`` lists the set names (available once the dataset
    is fully initialised).

    With several ``protocols`` each file is listed once per protocol, protocol
    after protocol within a file: set names ``name`` (``'clean'``),
    ``name@masked_unmasked`` and ``name@masked_masked``
    (:func:`~coupleface.datasets.transforms.protocol_set_name`).

    Args:
        ann_files (str | Sequence[str]): ``.bin`` files, relative to
            ``data_root`` unless absolute.
        names (Sequence[str], optional): One name per file. Defaults to the
            file stems (``lfw.bin`` -> ``'lfw'``).
        data_root (str): Folder the files are relative to. Defaults to ''.
        pipeline (Sequence[dict | Callable]): Transforms, starting with
            ``LoadFaceImage``.
        protocols (Sequence[str]): Verification protocols of every set, a
            subset of ``('clean', 'masked_unmasked', 'masked_masked')``; the
            masked ones need a ``ProtocolMask`` after ``LoadFaceImage`` in the
            pipeline. Defaults to ``('clean',)``.
        test_mode (bool): Defaults to True.
        lazy_init (bool): Defer reading the files to ``full_init``.
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments
            (``metainfo``, ``indices``, ``serialize_data``).

    Examples:
        >>> # the dataset of a val_dataloader (shuffle=False)
        >>> dataset = dict(type='VerificationBinDataset', data_root='data/faces_emore',
        ...                ann_files=['lfw.bin', 'cfp_fp.bin', 'agedb_30.bin'],
        ...                pipeline=[dict(type='LoadFaceImage'), dict(type='PackFaceInputs')])
        >>> # the same with the masked-face protocols (sets lfw and lfw@masked_unmasked)
        >>> masked = dict(dataset, ann_files=['lfw.bin'], protocols=('clean', 'masked_unmasked'),
        ...               pipeline=[dict(type='LoadFaceImage'), dict(type='ProtocolMask'),
        ...                         dict(type='PackFaceInputs')])
    """

    def __init__(self,
                 ann_files: Union[str, Sequence[str]],
                 names: Optional[Sequence[str]] = None,
                 data_root: str = '',
                 pipeline: Sequence[Any] = (),
                 protocols: Sequence[str] = ('clean',),
                 test_mode: bool = True,
                 lazy_init: bool = False,
                 **kwargs):
        if isinstance(ann_files, str):
            ann_files = [ann_files]
        ann_files = [str(f) for f in ann_files]
        if not ann_files:
            raise ValueError('VerificationBinDataset needs at least one .bin file')
        if names is None:
            names = [osp.splitext(osp.basename(f))[0] for f in ann_files]
        names = [str(n) for n in names]
        if len(names) != len(ann_files):
            raise ValueError(f'{len(names)} names for {len(ann_files)} ann_files')
        if len(set(names)) != len(names):
            raise ValueError(f'set names must be unique, got {names}')
        protocols = [protocols] if isinstance(protocols, str) else list(protocols)
        unknown = [p for p in protocols if p not in MASK_PROTOCOLS]
        if not protocols or unknown or len(set(protocols)) != len(protocols):
            raise ValueError(f'protocols must be distinct values of {MASK_PROTOCOLS}, '
                             f'got {tuple(protocols)}')
        self.protocols = tuple(protocols)
        variant_names = [protocol_set_name(n, p) for n in names for p in self.protocols]
        if len(set(variant_names)) != len(variant_names):
            raise ValueError(f'set names must be unique, got {variant_names}')
        self.ann_files = [f if osp.isabs(f) or not data_root else osp.join(data_root, f)
                          for f in ann_files]
        self.set_names = names
        super().__init__(ann_file='', data_root=data_root, pipeline=list(pipeline),
                         test_mode=test_mode, lazy_init=lazy_init, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read every ``.bin`` file; record each set's issame list in metainfo."""
        data_list: List[dict] = []
        pair_sets = {}
        for name, path in zip(self.set_names, self.ann_files):
            check_exists(path, 'verification pair set')
            bins, issame = read_bin(path)
            for protocol in self.protocols:
                set_name = protocol_set_name(name, protocol)
                pair_sets[set_name] = dict(issame=issame.tolist(), num_images=len(bins))
                data_list.extend(
                    dict(img_bytes=img, set_name=set_name, sample_idx=i, mask_protocol=protocol,
                         base_set_name=name) for i, img in enumerate(bins))
        self._metainfo.update(pair_sets=pair_sets, set_names=list(pair_sets))
        return data_list

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        """Item ``idx``; unlike BaseDataset, ``sample_idx`` stays the in-set index.

        The index in this dataset is ``global_idx``.
        """
        if idx < 0:
            idx += len(self)
        if self.serialize_data:
            start = 0 if idx == 0 else self.data_address[idx - 1].item()
            end = self.data_address[idx].item()
            data_info = pickle.loads(memoryview(self.data_bytes[start:end]))
        else:
            data_info = copy.deepcopy(self.data_list[idx])
        data_info['global_idx'] = idx
        return data_info
