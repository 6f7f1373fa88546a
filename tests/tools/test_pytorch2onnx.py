"""tools/deployment/pytorch2onnx.py: onnxruntime parity at batch 1 and 8, graph contract, CLI."""
import importlib.util
import os.path as osp
import re
import sys

import numpy as np
import onnx
import pytest
import torch
from mmengine.config import Config

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from _onnx_fixture import calibrate_bn  # noqa: E402

from coupleface.apis.model_loading import build_recognizer  # noqa: E402
from coupleface.utils.cli import run_cli
from coupleface.utils.onnx_runtime import onnx_session

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'deployment', 'pytorch2onnx.py')


def _tool():
    spec = importlib.util.spec_from_file_location('pytorch2onnx', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


p2o = _tool()




def _config(backbone, size, flip_test=True, head=False):
    model = dict(type='FaceRecognizer', backbone=backbone, flip_test=flip_test)
    if head:
        model['head'] = dict(type='ArcFaceHead', num_classes=3,
                             in_channels=backbone.get('embedding_size', 512))
    pipeline = [dict(type='LoadFaceImage', size=size), dict(type='PackFaceInputs')]
    return dict(model=model, test_dataloader=dict(dataset=dict(
        type='VerificationBinDataset', ann_files=['unused.bin'], pipeline=pipeline)))


MODELS_UNDER_TEST = {
    'iresnet18_112': (dict(type='IResNet', arch=18, base_channels=16, input_size=112), 112),
    'iresnet18_64': (dict(type='IResNet', arch=18, base_channels=8, input_size=64,
                          embedding_size=128), 64),
    'mobilefacenet_112': (dict(type='MobileFaceNet', input_size=112), 112),
}


@pytest.mark.parametrize('name', sorted(MODELS_UNDER_TEST))
def test_parity_batch_1_and_8_from_a_batch_1_export(name, tmp_path):
    backbone, size = MODELS_UNDER_TEST[name]
    torch.manual_seed(0)
    model = calibrate_bn(build_recognizer(_config(backbone, size)), size)
    path = p2o.export_onnx(model, str(tmp_path / f'{name}.onnx'), size)

    desc = p2o.describe_onnx(path)
    dim = model.backbone.embedding_size
    assert desc['opset'] >= 17
    assert desc['inputs'] == [('input', ['batch', 3, size, size])]
    assert desc['outputs'] == [('embedding', ['batch', dim])]
    assert desc['initializer_types'] == ['FLOAT']
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert props['input_normalisation'] == '(x - 127.5) / 127.5'
    assert props['input_size'] == str(size)

    diffs = p2o.check_onnx(model, path, size, batches=(1, 8))
    assert set(diffs) == {(k, b) for k in ('random', 'synthfaces') for b in (1, 8)}
    assert max(diffs.values()) < 1e-4, diffs

    # the batch-8 rows equal batch-1 runs, and the graph is the plain embedding (no flip)
    session = onnx_session(path)
    x = p2o.synthfaces_inputs(8, size, seed=1)
    (batch8, ) = session.run(None, {'input': x})
    singles = np.concatenate([session.run(None, {'input': x[i:i + 1]})[0] for i in range(8)])
    np.testing.assert_allclose(batch8, singles, atol=1e-4, rtol=0)
    with torch.no_grad():
        plain = model.extract_feat(torch.from_numpy(x)).numpy()
        fused = model.embed(torch.from_numpy(x)).numpy()  # flip_test=True in the config
    np.testing.assert_allclose(batch8, plain, atol=1e-4, rtol=0)
    assert np.abs(batch8 - fused).max() > 1e-2


def test_preprocessing_matches_the_data_preprocessor():
    from coupleface.datasets.synthfaces.generator import render_identity_image

    faces = [render_identity_image(i, 0, size=64) for i in range(2)]
    model = build_recognizer(_config(MODELS_UNDER_TEST['iresnet18_64'][0], 64))
    data = model.data_preprocessor(
        dict(inputs=[torch.from_numpy(f.transpose(2, 0, 1).copy()) for f in faces]), False)
    np.testing.assert_allclose(p2o.preprocess_bgr(faces), data['inputs'].numpy(), atol=1e-6)


def test_cli_exports_the_student_of_a_distiller_checkpoint(tmp_path, capsys):
    size = 64
    student_backbone = dict(type='IResNet', arch=18, base_channels=8, input_size=size,
                            embedding_size=32)
    teacher_backbone = dict(type='IResNet', arch=18, base_channels=4, input_size=size,
                            embedding_size=16)
    teacher_path = str(tmp_path / 'teacher.pth')
    torch.save(build_recognizer(_config(teacher_backbone, size)).backbone.state_dict(),
               teacher_path)
    cfg = _config(student_backbone, size, head=True)
    cfg['model'] = dict(type='CoupleFaceDistiller', student=cfg['model'],
                        teacher=dict(model=dict(type='FaceRecognizer',
                                                backbone=teacher_backbone),
                                     checkpoint=teacher_path),
                        connector=dict(type='LinearConnector', in_channels=32, out_channels=16),
                        fcd_loss=dict(type='FeatureConsistencyLoss'))
    from coupleface.registry import MODELS
    torch.manual_seed(0)
    distiller = MODELS.build(cfg['model'])
    calibrate_bn(distiller.student, size)
    ckpt = str(tmp_path / 'distiller.pth')
    torch.save({'state_dict': distiller.state_dict(), 'meta': {}}, ckpt)
    cfg_path = str(tmp_path / 'distiller_cfg.py')
    Config(cfg).dump(cfg_path)
    out = str(tmp_path / 'student.onnx')

    # in-process (the script's main; a subprocess would mostly time imports)
    assert run_cli(lambda: p2o.main([cfg_path, ckpt, '--out', out, '--check',
                                     '--batch', '1,8'])) == 0
    stdout = capsys.readouterr().out
    assert 'TorchScript exporter' in stdout
    diffs = re.findall(r'(random|synthfaces)\s+batch\s+(\d+): max abs diff (\S+)', stdout)
    assert sorted((k, int(b)) for k, b, _ in diffs) == [
        ('random', 1), ('random', 8), ('synthfaces', 1), ('synthfaces', 8)]
    assert all(float(d) < 1e-4 for _, _, d in diffs)
    assert 'check passed' in stdout
    props = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert props['checkpoint_kind'] == 'distiller'
    assert props['distilled_teacher_checkpoint'] == osp.abspath(teacher_path)
    # the exported graph is the student's
    session = onnx_session(out)
    x = p2o.synthfaces_inputs(2, size)
    with torch.no_grad():
        expected = distiller.student.eval().extract_feat(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(session.run(None, {'input': x})[0], expected, atol=1e-4)


def test_old_opset_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        p2o.parse_args(['cfg.py', 'ckpt.pth', '--out', 'x.onnx', '--opset', '13'])
    with pytest.raises(ValueError, match='opset must be >= 17'):
        p2o.export_onnx(torch.nn.Identity(), 'x.onnx', 112, opset=13)


def test_checkpoint_of_another_architecture_is_one_line(tmp_path, capsys):
    backbone, size = MODELS_UNDER_TEST['iresnet18_64']
    cfg_path = str(tmp_path / 'cfg.py')
    Config(_config(backbone, size)).dump(cfg_path)
    ckpt = str(tmp_path / 'mbf.pth')
    mbf = build_recognizer(_config(dict(type='MobileFaceNet', input_size=size), size))
    torch.save({'state_dict': mbf.state_dict()}, ckpt)
    assert run_cli(lambda: p2o.main([cfg_path, ckpt, '--out', str(tmp_path / 'x.onnx')])) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('error: CheckpointKeyError: ')
    assert 'missing keys: backbone.conv1.weight' in err
    assert not osp.exists(tmp_path / 'x.onnx')
