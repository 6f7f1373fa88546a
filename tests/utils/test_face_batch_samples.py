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


def test_pickles_its_fields_by_value_not_as_shared_tensors():
    import io
    import pickle
    from multiprocessing.reduction import ForkingPickler

    import torch.multiprocessing  # noqa: F401  registers torch's tensor reducers there

    from coupleface.utils import face_batch_samples as fbs
    s = FaceBatchSamples(gt_label=[3, 1, 4], sample_idx=[7, 2, 9], flip=[1, 0, 1],
                         masked=[0, 0, 1])
    assert s.__reduce_ex__(4)[0] is fbs._rebuild
    buf = io.BytesIO()
    ForkingPickler(buf, 4).dump(s)  # what a DataLoader worker's queue uses
    back = pickle.loads(buf.getvalue())
    assert isinstance(back, FaceBatchSamples)
    for name in ('gt_label', 'sample_idx', 'flip', 'masked'):
        assert torch.equal(getattr(back, name), getattr(s, name))
        assert getattr(back, name).dtype == getattr(s, name).dtype
    assert not back.gt_label.is_shared()  # a plain copy, no segment to map
    s.set_metainfo(dict(note='x'))  # anything else: the usual pickling
    assert s.__reduce_ex__(4)[0] is not fbs._rebuild
    again = pickle.loads(pickle.dumps(s))
    assert again.note == 'x' and torch.equal(again.flip, s.flip)
