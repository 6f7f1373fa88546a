"""MXFaceDataset on insightface and header-less RecordIO sets written in the test."""
import pickle

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

import coupleface.datasets.transforms.loading as loading
from coupleface.datasets.mx_face_dataset import MXFaceDataset, read_property_file
from coupleface.datasets.mx_record import MXIndexedRecordIO
from coupleface.datasets.mx_record_codec import IRHeader, pack, unpack
from coupleface.datasets.mx_record_writer import MXIndexedRecordIOWriter, write_insightface_rec
from coupleface.datasets.transforms import ImageDecodeError, LoadFaceImage, PackFaceInputs
from coupleface.registry import DATASETS

H, W = 16, 20  # not square: catches an H/W swap in the property check
LABELS = [0, 0, 0, 1, 1, 3, 3, 3, 3, 3]  # identity 2 has no image


def make_images(n, seed=0):
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 256, (n, H, W, 3), dtype=np.uint8)
    pngs = [cv2.imencode('.png', im)[1].tobytes() for im in imgs]
    return imgs, pngs


@pytest.fixture
def insightface_set(tmp_path):
    imgs, pngs = make_images(len(LABELS))
    info = write_insightface_rec(str(tmp_path / 'train'), zip(LABELS, pngs), num_classes=4)
    return tmp_path, imgs, pngs, info


def pipeline(**load_kwargs):
    return [LoadFaceImage(size=None, **load_kwargs), PackFaceInputs()]


def test_writer_layout_is_insightface(insightface_set):
    root, imgs, pngs, info = insightface_set
    assert info['num_images'] == 10 and info['num_classes'] == 4 and info['image_size'] == (H, W)
    assert read_property_file(str(root / 'property')) == (4, H, W)
    reader = MXIndexedRecordIO(str(root / 'train.idx'), str(root / 'train.rec'))
    assert reader.keys == list(range(15)) and reader.offset(0) == 0  # header first in the file
    header, payload = unpack(reader.read_idx(0))
    assert header.flag == 2 and header.label.tolist() == [11.0, 15.0] and payload == b''
    ranges = [unpack(reader.read_idx(k))[0].label.tolist() for k in range(11, 15)]
    assert ranges == [[1, 4], [4, 6], [6, 6], [6, 11]]
    for key in (1, 5, 10):
        header, payload = unpack(reader.read_idx(key))
        assert (header.flag, header.label, header.id) == (0, LABELS[key - 1], key)
        assert payload == pngs[key - 1]


def test_insightface_layout_round_trip(insightface_set):
    root, imgs, pngs, _ = insightface_set
    ds = DATASETS.build(dict(type='MXFaceDataset', data_root=str(root), pipeline=pipeline()))
    assert isinstance(ds, MXFaceDataset) and ds.layout == 'insightface'
    assert len(ds) == 10 and ds.num_classes == 4 and ds.metainfo['num_classes'] == 4
    np.testing.assert_array_equal(ds.get_gt_labels(), LABELS)
    np.testing.assert_array_equal(ds.get_rec_keys(), np.arange(1, 11))
    c2i = ds.class_to_indices
    assert [a.tolist() for a in c2i] == [[0, 1, 2], [3, 4], [], [5, 6, 7, 8, 9]]
    assert all(a.dtype == np.int64 for a in c2i)
    info = ds.get_data_info(4)
    assert info['rec_key'] == 5 and info['gt_label'] == 1 and info['img_bytes'] == pngs[4]
    assert ds.get_data_info(-1)['sample_idx'] == 9
    for i in (0, 4, 9):
        out = ds[i]
        np.testing.assert_array_equal(out['inputs'].permute(1, 2, 0).numpy(), imgs[i])
        assert int(out['data_samples'].gt_label) == LABELS[i]
        assert out['data_samples'].sample_idx == i
    assert ds.load_data_list()[3] == dict(rec_key=4, gt_label=1)


def test_label_arrays_in_insightface_layout(tmp_path):
    # insightface image records may carry [label, ...] arrays: the identity is label[0]
    imgs, pngs = make_images(3)
    idx, rec = str(tmp_path / 'train.idx'), str(tmp_path / 'train.rec')
    with MXIndexedRecordIOWriter(idx, rec) as w:
        w.write_idx(0, pack(IRHeader(2, [4, 6], 0, 0), b''))
        for key, (label, png) in enumerate(zip([0, 1, 1], pngs), 1):
            w.write_idx(key, pack(IRHeader(2, [label, 0.5], key, 0), png))
        w.write_idx(4, pack(IRHeader(2, [1, 2], 4, 0), b''))
        w.write_idx(5, pack(IRHeader(2, [2, 4], 5, 0), b''))
    ds = MXFaceDataset(str(tmp_path), pipeline=pipeline())
    assert ds.layout == 'insightface' and ds.get_gt_labels().tolist() == [0, 1, 1]
    assert ds.num_classes == 2


def test_headerless_layout(tmp_path):
    # im2rec-style: every key an image (key 0 too, with a 2-value label array), idx order kept
    imgs, pngs = make_images(6, seed=1)
    labels = [2, 0, 1, 1, 0, 2]
    order = [3, 0, 5, 1, 4, 2]
    idx, rec = str(tmp_path / 'train.idx'), str(tmp_path / 'train.rec')
    with MXIndexedRecordIOWriter(idx, rec) as w:
        for key in order:
            label = [labels[key], 99.0] if key % 2 == 0 else float(labels[key])
            w.write_idx(key, pack(IRHeader(0, label, key, 0), pngs[key]))
    ds = MXFaceDataset(str(tmp_path), pipeline=pipeline())
    assert ds.layout == 'headerless' and ds.num_classes == 3
    assert ds.get_rec_keys().tolist() == order
    assert ds.get_gt_labels().tolist() == [labels[k] for k in order]
    assert [a.tolist() for a in ds.class_to_indices] == [[3, 4], [0, 5], [1, 2]]
    out = ds[2]  # key 5
    np.testing.assert_array_equal(out['inputs'].permute(1, 2, 0).numpy(), imgs[5])


def test_property_mismatch(insightface_set):
    root, *_ = insightface_set
    prop = root / 'property'
    prop.write_text('5,16,20\n')
    with pytest.raises(ValueError, match=r'property: says 5 classes but .*train\.rec has 4'):
        MXFaceDataset(str(root))
    prop.write_text('4,112,112\n')
    with pytest.raises(ValueError, match=r'property: says images are 112x112 but record key 1 '
                                         r'of .* is 16x20'):
        MXFaceDataset(str(root))
    prop.write_text('4;112\n')
    with pytest.raises(ValueError, match='num_classes,height,width'):
        MXFaceDataset(str(root))
    assert len(MXFaceDataset(str(root), property_file=None)) == 10
    prop.unlink()
    assert len(MXFaceDataset(str(root))) == 10  # optional


def test_label_range_errors(tmp_path):
    _, pngs = make_images(2)
    idx, rec = str(tmp_path / 'train.idx'), str(tmp_path / 'train.rec')
    with MXIndexedRecordIOWriter(idx, rec) as w:  # N=2, C=1, but key 2 says identity 1
        w.write_idx(0, pack(IRHeader(2, [3, 4], 0, 0), b''))
        w.write_idx(1, pack(IRHeader(0, 0.0, 1, 0), pngs[0]))
        w.write_idx(2, pack(IRHeader(0, 1.0, 2, 0), pngs[1]))
        w.write_idx(3, pack(IRHeader(2, [1, 3], 3, 0), b''))
    with pytest.raises(ValueError, match=r'train\.rec: record key 2 has label 1\.0; labels '
                                         r'must be 0\.\.0'):
        MXFaceDataset(str(tmp_path))
    with MXIndexedRecordIOWriter(idx, rec) as w:  # header-less with a fractional label
        w.write_idx(0, pack(IRHeader(0, 0.0, 0, 0), pngs[0]))
        w.write_idx(1, pack(IRHeader(0, 1.5, 1, 0), pngs[1]))
    with pytest.raises(ValueError, match=r'record key 1 has label 1\.5; labels must be '
                                         'integers >= 0'):
        MXFaceDataset(str(tmp_path))


def test_writer_rejects_ungrouped_labels(tmp_path):
    _, pngs = make_images(3)
    with pytest.raises(ValueError, match='non-decreasing'):
        write_insightface_rec(str(tmp_path / 'x'), zip([0, 1, 0], pngs))
    assert not (tmp_path / 'x.rec').exists()  # nothing half-written


def test_lazy_subset_and_pickle(insightface_set):
    root, imgs, pngs, _ = insightface_set
    ds = MXFaceDataset(str(root), pipeline=pipeline(), lazy_init=True)
    assert not ds._fully_initialized and ds._reader is None
    assert len(ds) == 10 and ds._fully_initialized
    sub = ds.get_subset([9, 3])
    assert sub.get_gt_labels().tolist() == [3, 1] and len(ds) == 10
    assert [a.tolist() for a in sub.class_to_indices] == [[], [1], [], [0]]
    assert sub.get_data_info(1)['img_bytes'] == pngs[3]
    part = MXFaceDataset(str(root), indices=3)
    assert part.get_rec_keys().tolist() == [1, 2, 3] and part.num_classes == 4
    clone = pickle.loads(pickle.dumps(ds))
    assert clone.reader._file is None
    np.testing.assert_array_equal(clone[7]['inputs'].permute(1, 2, 0).numpy(), imgs[7])


def _broken_set(tmp_path):
    imgs, pngs = make_images(4)
    pngs[2] = b'\x89PNG but broken'
    write_insightface_rec(str(tmp_path / 'train'), zip([0, 0, 1, 1], pngs))
    return imgs


def test_undecodable_record_is_skipped_in_training(tmp_path, monkeypatch):
    _broken_set(tmp_path)
    logs = []
    monkeypatch.setattr(loading, 'print_log', lambda msg, **kw: logs.append(msg))
    ds = MXFaceDataset(str(tmp_path), property_file=None,
                       pipeline=pipeline(on_error='skip', max_failures=2))
    np.random.seed(0)
    out = ds[2]  # record key 3 is broken: mmengine re-fetches a random other sample
    assert out['data_samples'].sample_idx != 2 and len(logs) == 1
    assert 'record key 3 (sample 2)' in logs[0] and '1/2' in logs[0]
    ds[2]
    with pytest.raises(ImageDecodeError, match=r'3 images failed to decode in this process, '
                                               r'more than max_failures=2; last: record key 3'):
        ds[2]
    # evaluation keeps the default: a broken record is an error naming it
    test_ds = MXFaceDataset(str(tmp_path), property_file=None, pipeline=pipeline(),
                            test_mode=True)
    with pytest.raises(ImageDecodeError, match='record key 3'):
        test_ds[2]


def test_dataloader_workers(insightface_set):
    root, imgs, _, _ = insightface_set
    ds = MXFaceDataset(str(root), pipeline=pipeline())
    ds.reader.read_idx(1)  # the parent holds an open handle before the fork
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2,
                                         collate_fn=pseudo_collate,
                                         multiprocessing_context='fork')
    seen = {}
    for batch in loader:
        for x, s in zip(batch['inputs'], batch['data_samples']):
            seen[s.sample_idx] = (x.permute(1, 2, 0).numpy(), int(s.gt_label))
    assert sorted(seen) == list(range(10))
    for i, (img, label) in seen.items():
        np.testing.assert_array_equal(img, imgs[i])
        assert label == LABELS[i]
