"""FaceBatchSamples: one B-long tensor per field, moves like a data sample, converts back."""
import pytest
import torch
from mmpretrain.structures import DataSample

from coupleface.utils.face_batch_samples import FaceBatchSamples, batch_field


def _samples():
    return FaceBatchSamples(gt_label=[3, 1], sample_idx=[7, 2], flip=[1, 0], masked=[0, 1])


def test_fields_dtypes_len_and_to():
    s = _samples()
    assert len(s) == 2 and len(FaceBatchSamples()) == 0
    assert s.gt_label.dtype == s.sample_idx.dtype == torch.int64
    assert s.flip.dtype == s.masked.dtype == torch.bool
    moved = s.to('cpu')
    assert isinstance(moved, FaceBatchSamples) and moved.flip.tolist() == [True, False]
    with pytest.raises(ValueError, match='B-long'):
        FaceBatchSamples(gt_label=[1, 2], sample_idx=[1], flip=[0, 0], masked=[0, 0])
    with pytest.raises(ValueError, match='all of'):
        FaceBatchSamples(gt_label=[1])


def test_batch_field_agrees_with_a_list_of_data_samples():
    s = _samples()
    listed = s.to_data_samples()
    assert all(isinstance(d, DataSample) for d in listed)
    assert listed[1].sample_idx == 2 and listed[0].flip is True and listed[1].masked is True
    for name in ('gt_label', 'sample_idx', 'flip', 'masked'):
        assert torch.equal(batch_field(s, name), batch_field(listed, name))
