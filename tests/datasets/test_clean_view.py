"""The teacher's clean view of a training set and the one teacher pass over it."""
import cv2
import numpy as np
import pytest
import torch

from coupleface.datasets.clean_view import (
    CleanViewDataset,
    clean_view_embeddings,
    teacher_view_size,
)
from coupleface.registry import MODELS


class _Images:
    """get_data_info over PNG files, one per index (what the view reads of a dataset)."""

    def __init__(self, tmp_path, n=5, size=20):
        rng = np.random.default_rng(0)
        self.paths = []
        for i in range(n):
            path = tmp_path / f'{i}.png'
            cv2.imwrite(str(path), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
            self.paths.append(str(path))

    def get_data_info(self, i):
        return dict(img_path=self.paths[i], gt_label=i % 2, sample_idx=i)


class _Probe(torch.nn.Module):
    """extract_feat = per-channel mean and the left-minus-right half difference."""

    def extract_feat(self, x):
        half = x.shape[-1] // 2
        return torch.cat([x.mean((2, 3)), (x[..., :half].mean((2, 3))
                                           - x[..., half:].mean((2, 3)))], 1).double()


def test_teacher_view_size_is_the_first_loader_size():
    pipe = [dict(type='LoadFaceImage', size=56), dict(type='RandomFaceFlip'),
            dict(type='LoadFaceImage', size=112)]
    assert teacher_view_size(pipe) == 56
    assert teacher_view_size([dict(type='coupleface.LoadFaceImage', size=None)]) is None
    assert teacher_view_size([dict(type='RandomFaceFlip'), dict(type='LoadFaceImage')]) == 112


def test_teacher_view_size_of_a_built_pipeline():
    from mmcv.transforms import Compose

    from coupleface.registry import TRANSFORMS

    pipe = Compose([TRANSFORMS.build(dict(type=name, **kw)) for name, kw in (
        ('RandomFaceFlip', {}), ('LoadFaceImage', dict(size=48)), ('PackFaceInputs', {}))])
    assert teacher_view_size(pipe) == 48 and teacher_view_size(pipe.transforms) == 48


@pytest.mark.parametrize('pipeline', [[], None, [dict(type='PackFaceInputs')]])
def test_no_loader_is_a_one_line_error(pipeline):
    with pytest.raises(ValueError, match=r"cannot derive the teacher's clean view: the "
                       r'training pipeline has no LoadFaceImage \(steps: \[') as err:
        teacher_view_size(pipeline)
    assert '\n' not in str(err.value)


def test_view_is_resized_and_unaugmented(tmp_path):
    data = _Images(tmp_path)
    view = CleanViewDataset(data, [3, 1], size=16)
    assert len(view) == 2
    first, again = view[0], view[0]
    assert tuple(first['inputs'].shape) == (3, 16, 16)
    assert torch.equal(first['inputs'], again['inputs'])  # no random augmentation
    assert first['data_samples'].sample_idx == 3


@pytest.mark.parametrize('batch_size', [1, 2, 4])
def test_embeddings_in_index_order_with_the_mirror(tmp_path, batch_size):
    data = _Images(tmp_path)
    pre = MODELS.build(dict(type='FaceDataPreprocessor'))
    indices = [4, 0, 2]
    batches = list(clean_view_embeddings(data, indices, 16, pre, [_Probe(), _Probe()],
                                         batch_size=batch_size, flip=True))
    assert [len(b[0]) for b in batches] == [min(batch_size, 3 - i)
                                           for i in range(0, 3, batch_size)]
    first = torch.cat([b[0] for b in batches])
    assert first.shape == (3, 2, 6) and first.dtype == torch.float32
    assert torch.equal(first, torch.cat([b[1] for b in batches]))  # both models, same input
    # by hand: the preprocessed image of each index, and its mirror
    for row, idx in enumerate(indices):
        x = pre(dict(inputs=[CleanViewDataset(data, [idx], 16)[0]['inputs']],
                     data_samples=None), False)['inputs']
        want = _Probe().extract_feat(x).float()[0]
        torch.testing.assert_close(first[row, 0], want)
        mirrored = _Probe().extract_feat(x.flip(-1)).float()[0]
        torch.testing.assert_close(first[row, 1], mirrored)
        torch.testing.assert_close(first[row, 1, 3:], -first[row, 0, 3:])  # halves swap
    plain = torch.cat([b[0] for b in clean_view_embeddings(data, indices, 16, pre,
                                                            [_Probe()])])
    torch.testing.assert_close(plain, first[:, 0])
