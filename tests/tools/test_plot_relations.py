"""tools/analysis_tools/plot_relations.py: teacher vs student relation heatmaps of a mined
identity group, from a relations.npz or mined on the fly, on tiny random-weight models."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from coupleface.mining import save_relations
from coupleface.utils.cli import run_cli

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'analysis_tools', 'plot_relations.py')
NUM_IDS, IMGS, SIZE = 6, 4, 32


def _tool():
    spec = importlib.util.spec_from_file_location('plot_relations', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pr = _tool()

STUDENT = dict(type='FaceRecognizer',
               backbone=dict(type='IResNet', arch=18, input_size=SIZE, base_channels=4,
                             embedding_size=8),
               head=dict(type='ArcFaceHead', num_classes=NUM_IDS, in_channels=8))
TEACHER = dict(type='FaceRecognizer',
               backbone=dict(type='IResNet', arch=18, input_size=SIZE, base_channels=8,
                             embedding_size=16))


def _calibrated(cfg, seed):
    """A random-weight recognizer whose BN statistics fit random faces (finite outputs)."""
    from coupleface.registry import MODELS
    from coupleface.setup_env import register_all_modules

    register_all_modules(init_default_scope=False)
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.momentum = None
    model.train()
    with torch.no_grad():
        model.extract_feat(torch.rand(16, 3, SIZE, SIZE) * 2 - 1)
    return model.eval()


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """SynthFaces (6 ids x 4 images, 32 px), a distiller config, checkpoints, relations."""
    root = tmp_path_factory.mktemp('plot_relations')
    data = str(root / 'synth')
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'make_synthfaces.py'), data, '--format',
         'folder', '--num-ids', str(NUM_IDS), '--imgs-per-id', str(IMGS), '--val-pairs', '0',
         '--test-pairs', '0', '--size', str(SIZE), '--workers', '1', '--no-progress'],
        capture_output=True, text=True, cwd=REPO, timeout=120,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-2000:]

    student = _calibrated(STUDENT, 0)
    student_ckpt = str(root / 'student.pth')  # keyed like a distiller checkpoint
    torch.save(dict(state_dict={f'student.{k}': v for k, v in student.state_dict().items()}),
               student_ckpt)
    teacher_ckpt = str(root / 'teacher.pth')
    torch.save(dict(state_dict=_calibrated(TEACHER, 1).state_dict()), teacher_ckpt)

    pipeline = [dict(type='LoadFaceImage', size=SIZE), dict(type='RandomFlip', prob=0.5),
                dict(type='PackFaceInputs')]
    config = str(root / 'distill.py')
    with open(config, 'w') as f:
        f.write(f'''
model = dict(
    type='CoupleFaceDistiller',
    data_preprocessor=dict(type='FaceDataPreprocessor'),
    student={STUDENT!r},
    teacher=dict(model={TEACHER!r}, checkpoint={teacher_ckpt!r}),
    connector=dict(type='LinearConnector', in_channels=8, out_channels=16),
    fcd_loss=dict(type='FeatureConsistencyLoss'))
train_dataloader = dict(
    batch_size=8, num_workers=0,
    dataset=dict(type='ImageFolderFaceDataset', data_root={data + '/train'!r},
                 pipeline={pipeline!r}))
''')
    bank_config = str(root / 'bank.py')
    with open(bank_config, 'w') as f:
        f.write("_base_ = ['./distill.py']\n"
                "model = dict(teacher=None, teacher_bank=dict(path='unused'))\n")

    # identity i's mined neighbours: i+1, i+2, i+3 (mod 6), most similar first
    neighbours = (np.arange(NUM_IDS)[:, None] + np.arange(1, 4)[None]) % NUM_IDS
    similarities = np.tile(np.array([0.6, 0.5, 0.4], np.float32), (NUM_IDS, 1))
    similarities[4, 0] = 0.9  # identity 4 is the most confusable anchor
    relations = str(root / 'relations.npz')
    save_relations(relations, neighbours, similarities,
                   np.random.default_rng(0).standard_normal((NUM_IDS, 16)),
                   meta=dict(num_classes=NUM_IDS, k=3))
    return dict(config=config, bank_config=bank_config, student=student_ckpt,
                teacher=teacher_ckpt, relations=relations, root=root)


def test_relations_file_group_and_heatmaps(tiny):
    out = str(tiny['root'] / 'rel_2.png')
    res = pr.main(['--config', tiny['config'], '--student-ckpt', tiny['student'],
                   '--relations', tiny['relations'], '--identity', '2', '--neighbours', '3',
                   '--images-per-id', '3', '--out', out])
    assert res['group'] == [2, 3, 4, 5]
    assert res['ids'] == [g for g in (2, 3, 4, 5) for _ in range(3)]
    for key in ('teacher', 'student'):
        sim = res[key]
        assert sim.shape == (12, 12)
        np.testing.assert_allclose(np.diag(sim), 1.0, atol=1e-5)
        np.testing.assert_allclose(sim, sim.T, atol=1e-6)
    assert res['mean_abs_diff'] > 0  # different random models relate faces differently
    import matplotlib.image as mpimg
    img = mpimg.imread(out)
    assert img.ndim == 3 and img.shape[1] > 1.5 * img.shape[0]  # three panels side by side

    # the images are the first k of each identity, in the dataset order
    from mmengine.config import Config

    from coupleface.registry import DATASETS
    from coupleface.setup_env import register_all_modules
    register_all_modules(init_default_scope=True)
    dataset = DATASETS.build(Config.fromfile(tiny['config']).train_dataloader.dataset)
    labels = np.asarray(dataset.get_gt_labels())
    assert labels[res['indices']].tolist() == res['ids']


def test_default_anchor_is_most_confusable_and_teacher_from_config(tiny):
    res = pr.main(['--config', tiny['config'], '--student-ckpt', tiny['student'],
                   '--relations', tiny['relations'], '--neighbours', '2',
                   '--out', str(tiny['root'] / 'rel_default.png')])
    assert res['group'] == [4, 5, 0]
    assert len(res['ids']) == 3 * IMGS


def test_mines_on_the_fly_with_the_teacher(tiny, capsys):
    res = pr.main(['--config', tiny['config'], '--student-ckpt', tiny['student'],
                   '--teacher-ckpt', tiny['teacher'], '--neighbours', '2', '--images-per-id',
                   '2', '--out', str(tiny['root'] / 'rel_mined.png')])
    assert 'mining 2 neighbours of 6 identities' in capsys.readouterr().out
    group = res['group']
    assert len(group) == 3 and len(set(group)) == 3
    assert res['teacher'].shape == (6, 6) and osp.isfile(res['out'])

    # the neighbours are the anchor's nearest identities by teacher center cosine, and the
    # anchor the identity with the most similar nearest neighbour
    from mmengine.config import Config

    from coupleface.apis.model_loading import init_recognizer
    from coupleface.registry import DATASETS
    cfg = Config.fromfile(tiny['config'])
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    labels = np.asarray(dataset.get_gt_labels())
    teacher = init_recognizer(dict(model=TEACHER), tiny['teacher'])
    (emb, ) = pr.embed([teacher], dataset, range(len(labels)), SIZE, teacher.data_preprocessor)
    emb = emb.numpy()
    centers = np.stack([emb[labels == i].mean(0) for i in range(NUM_IDS)])
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    sim = centers @ centers.T
    np.fill_diagonal(sim, -np.inf)
    # the most similar pair is mutual (sim is symmetric): either member is that anchor, the
    # one whose last bits come out larger
    top = sim.max(1)
    assert group[0] in np.flatnonzero(top >= top.max() - 1e-6).tolist()
    assert group[1:] == np.argsort(-sim[group[0]])[:2].tolist()


def test_cfg_options_override_the_config(tiny):
    # the config's teacher checkpoint is replaced through --cfg-options; a missing one fails
    res = pr.main(['--config', tiny['config'], '--student-ckpt', tiny['student'],
                   '--relations', tiny['relations'], '--identity', '1', '--neighbours', '1',
                   '--images-per-id', '2', '--out', str(tiny['root'] / 'rel_opts.png'),
                   '--cfg-options', f"model.teacher.checkpoint={tiny['teacher']}"])
    assert res['group'] == [1, 2]
    with pytest.raises((FileNotFoundError, SystemExit, ValueError)):
        pr.main(['--config', tiny['config'], '--student-ckpt', tiny['student'],
                 '--relations', tiny['relations'], '--out', str(tiny['root'] / 'x.png'),
                 '--cfg-options', 'model.teacher.checkpoint=/nonexistent/teacher.pth'])


def test_errors_are_one_line(tiny, capsys):
    base = ['--config', tiny['config'], '--student-ckpt', tiny['student'],
            '--relations', tiny['relations'], '--out', str(tiny['root'] / 'x.png')]
    assert run_cli(lambda: pr.main(base + ['--identity', '99'])) == 1
    assert 'outside [0, 6)' in capsys.readouterr().err
    bank = ['--config', tiny['bank_config'], '--student-ckpt', tiny['student'],
            '--relations', tiny['relations'], '--out', str(tiny['root'] / 'y.png')]
    assert run_cli(lambda: pr.main(bank)) == 1
    assert '--teacher-config' in capsys.readouterr().err
    # ... which then works with the teacher's config
    res = pr.main(bank + ['--teacher-config', tiny['config'], '--teacher-ckpt',
                          tiny['teacher']])
    assert len(res['group']) == 4
