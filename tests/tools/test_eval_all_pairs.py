"""tools/eval_all_pairs.py and make_synthfaces --all-pairs-ids: labelled unseen-identity sets
scored over all pairs, equal to tar_at_far on the explicit list of the embedder's scores."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from coupleface.apis import FaceEmbedder
from coupleface.datasets import MXFaceDataset
from coupleface.evaluation.functional import tar_at_far
from coupleface.registry import MODELS
from coupleface.utils.cli import run_cli

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'arcface', 'iresnet18-w8_1xb128_synthfaces-56px.py')


def _tool(name):
    spec = importlib.util.spec_from_file_location(f'tool_{name}',
                                                  osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('all_pairs')
    data = str(tmp / 'synth')
    assert _tool('make_synthfaces').main([
        data, '--num-ids', '3', '--imgs-per-id', '2', '--val-pairs', '0', '--test-pairs', '0',
        '--size', '56', '--all-pairs-ids', '12', '--all-pairs-imgs', '4', '--workers', '1',
        '--no-progress']) == 0
    torch.manual_seed(0)
    cfg = Config.fromfile(CONFIG)
    model = MODELS.build(cfg.model).eval()
    ckpt = str(tmp / 'model.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    return data, ckpt, tmp


def test_sets_hold_unseen_labelled_identities(setup):
    data, _, _ = setup
    with open(osp.join(data, 'meta.json')) as f:
        meta = json.load(f)
    assert meta['counts']['all_pairs_images_per_set'] == 48
    val = MXFaceDataset(data_root=osp.join(data, 'all_pairs_val'), rec_file='ids.rec',
                        idx_file='ids.idx', test_mode=True)
    test = MXFaceDataset(data_root=osp.join(data, 'all_pairs_test'), rec_file='ids.rec',
                         idx_file='ids.idx', test_mode=True)
    assert len(val) == len(test) == 48
    assert [val.get_data_info(i)['gt_label'] for i in range(8)] == [0] * 4 + [1] * 4
    # other identities than the validation set's: other images
    assert val.get_data_info(0)['img_bytes'] != test.get_data_info(0)['img_bytes']


def test_figures_equal_tar_at_far_on_the_explicit_pair_list(setup):
    data, ckpt, tmp = setup
    out = str(tmp / 'res.json')
    result = _tool('eval_all_pairs').main([CONFIG, ckpt, osp.join(data, 'all_pairs_test'),
                                           '--fars', '0.1', '0.01', '1e-3', '1e-4', '--out', out,
                                           '--batch-size', '20', '--chunk-size', '7',
                                           '--no-progress'])
    # 48 images of 12 identities: 12 * 6 = 72 genuine, 1128 - 72 = 1056 impostor pairs
    assert result['num_genuine'] == 72 and result['num_impostor'] == 1056
    dataset = MXFaceDataset(data_root=osp.join(data, 'all_pairs_test'), rec_file='ids.rec',
                            idx_file='ids.idx', test_mode=True)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    emb = FaceEmbedder(CONFIG, ckpt).embed([info['img_bytes'] for info in infos]).astype(
        np.float64)
    labels = [info['gt_label'] for info in infos]
    scores, same = [], []
    for i in range(48):
        for j in range(i + 1, 48):
            scores.append(float(emb[i] @ emb[j]))
            same.append(labels[i] == labels[j])
    ref = tar_at_far(np.array(scores), np.array(same), fars=(0.1, 0.01, 1e-3))
    with open(out) as f:
        saved = json.load(f)
    for far, key in ((0.1, '0.1'), (0.01, '0.01'), (1e-3, '0.001')):
        assert saved['tar_at_far'][key]['tar'] == pytest.approx(ref[far]['tar'], abs=1e-9)
        assert saved['tar_at_far'][key]['far_actual'] == pytest.approx(ref[far]['far_actual'])
        assert saved['tar_at_far'][key]['threshold'] == pytest.approx(ref[far]['threshold'],
                                                                      abs=1e-5)
    assert not saved['tar_at_far']['0.0001']['measurable']  # 1056 impostors < 1 / 1e-4


def test_missing_set_is_a_one_line_error_naming_the_generator(setup, capsys):
    _, ckpt, tmp = setup
    tool = _tool('eval_all_pairs')
    assert run_cli(lambda: tool.main([CONFIG, ckpt, str(tmp / 'nope')])) == 1
    err = capsys.readouterr().err.strip()
    assert '\n' not in err and 'nope/ids.rec not found' in err and '--all-pairs-ids' in err
