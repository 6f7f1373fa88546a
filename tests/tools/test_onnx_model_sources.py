"""The tools on an ONNX model and a config-less backbone.pth: numbers equal the PyTorch path.

A teacher bank from an ONNX teacher (insightface's released recognizers are ONNX files)
equals the PyTorch teacher's; ``tools/test.py`` scores an ONNX model and a ``--network``
backbone like the checkpoint; a 56 px export warns that insightface's router will not load
it; ``--device`` defaults alike everywhere.
"""
import importlib.util
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from _onnx_fixture import CONFIG, REPO, SIZE, write_model_files  # noqa: E402

from coupleface.datasets.bin_io import write_bin  # noqa: E402
from coupleface.models.distillers.teacher_bank import TeacherBank  # noqa: E402
from coupleface.utils.cli import default_device, run_cli  # noqa: E402
from coupleface.utils.file_hash import file_sha256  # noqa: E402
from coupleface.utils.onnx_export import insightface_router_problem  # noqa: E402


def _tool(*parts):
    spec = importlib.util.spec_from_file_location(parts[-1][:-3], osp.join(REPO, 'tools', *parts))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('onnx_tools')
    files = write_model_files(root)
    rng = np.random.default_rng(0)
    images = []
    for ident in range(4):
        os.makedirs(root / 'faces' / f'id{ident}')
        for k in range(3):
            img = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
            cv2.imwrite(str(root / 'faces' / f'id{ident}' / f'{k}.png'), img)
            images.append(cv2.imencode('.png', img)[1].tobytes())
    images += [cv2.imencode('.png', rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))[1]
               .tobytes() for _ in range(40 - len(images))]
    write_bin(str(root / 'pairs.bin'), images, [True, False] * 10)  # 10 folds need 20 pairs
    pipeline = [dict(type='LoadFaceImage', size=SIZE), dict(type='PackFaceInputs')]
    (root / 'cfg.py').write_text(
        f'_base_ = [{CONFIG!r}]\n'
        'train_dataloader = dict(dataset=dict(_delete_=True, type="ImageFolderFaceDataset", '
        f'data_root={str(root / "faces")!r}, use_cache=False, pipeline={pipeline!r}))\n'
        'test_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False, '
        f'dataset=dict(data_root={str(root)!r}, ann_files=["pairs.bin"], names=["tiny"]))\n')
    files.update(root=root, cfg=str(root / 'cfg.py'))
    return files


def _bank(setup, name, *model_args):
    prefix = str(setup['root'] / 'banks' / name)
    _tool('extract_embeddings.py').main([setup['cfg'], *model_args, '--out', prefix,
                                         '--workers', '0', '--batch-size', '4',
                                         '--device', 'cpu'])
    bank = TeacherBank(prefix)
    bank.path = prefix
    return bank


def test_onnx_and_bare_backbone_teacher_banks_equal_the_pytorch_teachers(setup):
    from mmengine.config import Config

    from coupleface.datasets.clean_view import clean_view_embeddings
    from coupleface.registry import DATASETS, MODELS
    from coupleface.setup_env import register_all_modules

    register_all_modules()
    tool = _tool('extract_embeddings.py')
    args = tool.parse_args([setup['cfg'], setup['onnx'], '--out', 'unused'])
    cfg = Config.fromfile(setup['cfg'])
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    preprocessor = MODELS.build(dict(type='FaceDataPreprocessor'))
    onnx_teacher, info = tool.build_teacher(args, None, SIZE)
    assert info['teacher_sha256'] == file_sha256(setup['onnx'])
    torch_teacher = setup['model']
    batches = list(clean_view_embeddings(dataset, range(len(dataset)), SIZE, preprocessor,
                                         [onnx_teacher, torch_teacher], flip=True,
                                         batch_size=5))
    got = torch.cat([b[0] for b in batches])
    expected = torch.cat([b[1] for b in batches])
    delta = float(torch.max(torch.abs(got - expected)))
    print(f'teacher bank (fp32 rows, {tuple(got.shape)}) ONNX vs PyTorch: max |delta| = '
          f'{delta:.2e}')
    assert got.shape == (12, 2, 64) and delta < 1e-4

    # the written banks (float16): equal up to one float16 rounding step
    reference = _bank(setup, 'pytorch', setup['ckpt'])
    for name, model_args in (('onnx', [setup['onnx']]),
                             ('backbone', [setup['backbone'], '--network', 'r18'])):
        bank = _bank(setup, name, *model_args)
        a = np.load(bank.path + '.npy').astype(np.float32)
        b = np.load(reference.path + '.npy').astype(np.float32)
        ulp = np.spacing(np.abs(b).astype(np.float16)).astype(np.float32)
        print(f'bank file {name} vs pytorch: max |delta| = {np.max(np.abs(a - b)):.2e}, '
              f'{np.mean(a == b):.4f} of the values identical')
        # the fp32 difference (< 1e-5, above) plus one float16 rounding step of the value
        assert np.all(np.abs(a - b) <= ulp + 1e-5) and np.mean(a == b) > 0.95
        assert bank.labels.tolist() == reference.labels.tolist()


def test_test_tool_scores_onnx_and_network_backbones_like_the_checkpoint(setup, tmp_path):
    test = _tool('test.py')
    common = ['--work-dir', str(tmp_path / 'work')]
    reference = test.main([setup['cfg'], setup['ckpt'], *common])
    onnx_metrics = test.main([setup['cfg'], setup['onnx'], *common])
    backbone_metrics = test.main([setup['cfg'], setup['backbone'], '--network', 'r18', *common])
    assert set(onnx_metrics) == set(reference) == set(backbone_metrics)
    for key, value in reference.items():
        assert onnx_metrics[key] == pytest.approx(value, abs=1e-4, nan_ok=True), key
        assert backbone_metrics[key] == pytest.approx(value, abs=1e-4, nan_ok=True), key


def test_a_56px_export_warns_that_insightfaces_router_will_not_load_it(setup, tmp_path, capsys):
    assert insightface_router_problem(112) is None and insightface_router_problem(128) is None
    assert 'divisible by 16' in insightface_router_problem(120)
    assert 'Landmark' in insightface_router_problem(192)
    p2o = _tool('deployment', 'pytorch2onnx.py')
    out = str(tmp_path / 'x.onnx')
    assert run_cli(lambda: p2o.main([CONFIG, setup['ckpt'], '--out', out])) == 0
    err = capsys.readouterr().err
    assert "insightface's model router" in err and 'this export takes 56 px' in err
    assert '--shape 112' in err
    # a config-less bare backbone exports too (no router warning at 112 px)
    big = tmp_path / 'r18_112.pth'
    from coupleface.models.backbones import IResNet
    torch.save(IResNet(arch=18, base_channels=8, embedding_size=32).state_dict(), big)
    assert run_cli(lambda: p2o.main([str(big), '--out', str(tmp_path / 'y.onnx')])) == 0
    assert 'router' not in capsys.readouterr().err


def test_embed_and_verify_take_an_onnx_model_without_config(setup, tmp_path):
    embed = _tool('embed.py')
    result = embed.main([setup['onnx'], str(setup['root'] / 'faces'), '--out',
                         str(tmp_path / 'emb'), '--no-progress', '--device', 'cpu'])
    reference = embed.main([CONFIG, setup['ckpt'], str(setup['root'] / 'faces'), '--out',
                            str(tmp_path / 'ref'), '--no-flip', '--no-progress'])
    assert np.max(np.abs(result['embeddings'] - reference['embeddings'])) < 1e-4
    verify = _tool('verify.py')
    faces = sorted((setup['root'] / 'faces' / 'id0').iterdir())
    out = verify.main([setup['backbone'], str(faces[0]), str(faces[1]), '--threshold', '0.3',
                       '--input-size', str(SIZE)])
    assert -1 <= out['score'] <= 1


@pytest.mark.parametrize('tool', ['embed.py', 'verify.py', 'eval_ijb.py', 'eval_all_pairs.py',
                                  'extract_embeddings.py'])
def test_device_defaults_alike(tool):
    module = _tool(tool)
    argv = {'embed.py': ['m.onnx', 'dir', '--out', 'o'],
            'verify.py': ['m.onnx', 'a', 'b', '--threshold', '0.3'],
            'eval_ijb.py': ['m.onnx', '--root', 'r'],
            'eval_all_pairs.py': ['m.onnx', 'set'],
            'extract_embeddings.py': ['cfg.py', 'm.onnx', '--out', 'o']}[tool]
    args = module.parse_args(argv)
    assert args.device == default_device() == ('cuda' if torch.cuda.is_available() else 'cpu')
    assert args.checkpoint == 'm.onnx'
