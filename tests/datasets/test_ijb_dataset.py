"""IJBDataset: reads the insightface IJB layout, aligns through the pipeline, rejects bad files."""
import os
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from coupleface.datasets.ijb import (
    IJB_META_KEYS,
    IJBDataset,
    IJBFormatError,
    ijb_meta_files,
    ijb_test_pipeline,
    read_template_pair_list,
)
from coupleface.registry import DATASETS
from coupleface.setup_env import register_all_modules
from coupleface.utils.face_template import face_template

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from _ijb_fixture import copy_fixture, replace_line, shared_ijb_fixture  # noqa: E402


@pytest.fixture(scope='module')
def fx():
    register_all_modules()
    return shared_ijb_fixture()


def test_reads_every_image_with_its_template_media_landmarks_and_faceness(fx):
    ds = DATASETS.build(dict(type='IJBDataset', data_root=fx.root, name='ijbc'))
    assert len(ds) == len(fx.images)
    meta = ds.metainfo
    assert meta['name'] == 'ijbc' and meta['num_images'] == len(fx.images)
    assert meta['num_templates'] == 18 and meta['num_pairs'] == len(fx.pairs) == 153
    assert meta['pair_file'] == fx.meta_path('template_pair_label')
    assert sorted(meta['gallery_files']) == ['G1', 'G2'] and meta['probe_file'].endswith(
        'ijbc_1N_probe_mixed.csv')
    for i in (0, 7, len(ds) - 1):
        item, want = ds.get_data_info(i), fx.images[i]
        assert item['sample_idx'] == i
        assert item['img_path'] == osp.join(fx.root, 'loose_crop', want['name'])
        assert item['template_id'] == want['template_id']
        assert item['media_id'] == want['media_id']
        assert item['faceness'] == pytest.approx(want['faceness'], abs=1e-9)
        assert item['landmarks'].shape == (5, 2) and item['landmarks'].dtype == np.float32
        # The 5-point file is shuffled: the join is by image name.
        np.testing.assert_allclose(item['landmarks'], want['landmarks'], atol=1e-3)


def test_pipeline_aligns_loose_crops_through_a_worker_dataloader(fx):
    ds = IJBDataset(fx.root, name='ijbc', pipeline=ijb_test_pipeline(112))
    loader = torch.utils.data.DataLoader(ds, batch_size=16, num_workers=1,
                                         collate_fn=pseudo_collate)
    batch = next(iter(loader))
    assert len(batch['inputs']) == 16 and batch['inputs'][0].shape == (3, 112, 112)
    sample = batch['data_samples'][3]
    for key in IJB_META_KEYS:
        assert key in sample.metainfo
    assert sample.template_id == fx.images[3]['template_id']
    # Landmarks moved to the aligned frame sit on the template.
    out = IJBDataset(fx.root, pipeline=ijb_test_pipeline(112)[:2]).__getitem__(3)
    assert out['img'].shape == (112, 112, 3)
    np.testing.assert_allclose(out['landmarks'], face_template(112), atol=1.5)


def test_meta_file_names_follow_insightface():
    files = ijb_meta_files('/d/IJBB', 'IJBB')
    assert files['face_tid_mid'] == '/d/IJBB/meta/ijbb_face_tid_mid.txt'
    assert files['name_5pts_score'] == '/d/IJBB/meta/ijbb_name_5pts_score.txt'
    assert files['template_pair_label'] == '/d/IJBB/meta/ijbb_template_pair_label.txt'
    assert files['galleries']['S1'] == '/d/IJBB/meta/ijbb_1N_gallery_S1.csv'
    assert ijb_meta_files('/d', 'ijbc')['galleries']['G2'] == '/d/meta/ijbc_1N_gallery_G2.csv'
    with pytest.raises(ValueError, match='ijbb'):
        ijb_meta_files('/d', 'lfw')


def test_pair_list_reader(fx):
    t1, t2, label = read_template_pair_list(fx.meta_path('template_pair_label'))
    assert t1.dtype == np.int64 and label.dtype == bool
    assert [(int(a), int(b), int(c)) for a, b, c in zip(t1, t2, label)] == fx.pairs


def _one_line_error(exc_type, tmp_path, fx, kind, lineno, text, match, copy_images=False):
    bad = copy_fixture(fx, str(tmp_path / 'bad'), copy_images=copy_images)
    if kind is not None:
        replace_line(bad.meta_path(kind), lineno, text)
    with pytest.raises(exc_type) as info:
        IJBDataset(bad.root, name='ijbc')
    msg = str(info.value)
    assert '\n' not in msg, msg
    assert match in msg, msg
    return bad, msg


@pytest.mark.parametrize('kind,lineno,text,match', [
    ('face_tid_mid', 3, '3.jpg 1000', 'ijbc_face_tid_mid.txt:3: expected'),
    ('face_tid_mid', 5, '5.jpg 10x0 40003', "ijbc_face_tid_mid.txt:5: template_id must be an "
                                           "integer, got '10x0'"),
    ('name_5pts_score', 2, 'a.jpg 1 2 3 4 5 6 7 8 9 10', 'ijbc_name_5pts_score.txt:2: expected'),
    ('name_5pts_score', 4, '9.jpg 1 2 3 4 5 6 7 8 9 nan 0.9', 'ijbc_name_5pts_score.txt:4: '
                                                                'landmarks and faceness'),
    ('template_pair_label', 7, '1000 1007', 'ijbc_template_pair_label.txt:7: expected'),
    ('template_pair_label', 9, '1000 abc 1', "ijbc_template_pair_label.txt:9: template_id2 "
                                            "must be an integer, got 'abc'"),
    ('template_pair_label', 11, '1000 1007 2', 'ijbc_template_pair_label.txt:11: label must be '
                                              '0 or 1'),
    ('template_pair_label', 12, '1000 999999 0', 'ijbc_template_pair_label.txt:12: '
                                                'template_id2 999999 is not a template'),
])
def test_malformed_meta_lines_name_file_and_line(tmp_path, fx, kind, lineno, text, match):
    _one_line_error(IJBFormatError, tmp_path, fx, kind, lineno, text, match)


def test_image_without_landmarks_names_the_line(tmp_path, fx):
    name = fx.images[5]['name']
    bad = copy_fixture(fx, str(tmp_path / 'bad'))
    path = bad.meta_path('name_5pts_score')
    with open(path) as f:
        lines = [ln for ln in f if not ln.startswith(name + ' ')]
    with open(path, 'w') as f:
        f.writelines(lines)
    with pytest.raises(IJBFormatError, match=rf'ijbc_face_tid_mid.txt:6: image {name!r} has no '
                                             'landmarks'):
        IJBDataset(bad.root)


def test_missing_image_names_file_and_line(tmp_path, fx):
    bad = copy_fixture(fx, str(tmp_path / 'bad'), copy_images=True)
    os.remove(osp.join(bad.root, 'loose_crop', fx.images[9]['name']))
    with pytest.raises(FileNotFoundError, match=r'ijbc_face_tid_mid.txt:10: image .* is '
                                                'missing'):
        IJBDataset(bad.root)
    # Without the check, the dataset builds (the loader would fail on that image).
    assert len(IJBDataset(bad.root, check_images=False)) == len(fx.images)


def test_missing_meta_file_is_named(tmp_path, fx):
    bad = copy_fixture(fx, str(tmp_path / 'bad'))
    os.remove(bad.meta_path('template_pair_label'))
    with pytest.raises(FileNotFoundError, match='ijbc_template_pair_label.txt'):
        IJBDataset(bad.root)
