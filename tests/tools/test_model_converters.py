"""extract_student + to_insightface: a distilled student becomes an insightface backbone.pth.

The insightface layouts are written here from insightface arcface_torch's definitions
(``backbones/iresnet.py``: ``IResNet(IBasicBlock, layers)``, widths 64/128/256/512,
``fc_scale = 7 * 7``; ``backbones/mobilefacenet.py``: ``MobileFaceNet(blocks, scale)``,
``get_mbf``), not from our model classes, and checked with a strict load and a functional
forward of insightface's computation.
"""
import importlib.util
import os.path as osp
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from coupleface.benchmarks.common import calibrate_bn as shared_calibrate_bn
from coupleface.registry import MODELS
from coupleface.utils.checkpoint_load import safe_torch_load
from coupleface.utils.checkpoint_state_dict import load_state_dict_flexible
from coupleface.utils.cli import run_cli

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool(name):
    path = osp.join(REPO, 'tools', 'model_converters', f'{name}.py')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


extract_student = _tool('extract_student')
to_insightface = _tool('to_insightface')


# ---------------------------------------------------------------------------
# insightface layouts: key -> (shape, is_buffer)
# ---------------------------------------------------------------------------

def _bn(table, name, c):
    table[f'{name}.weight'] = ((c, ), False)
    table[f'{name}.bias'] = ((c, ), False)
    table[f'{name}.running_mean'] = ((c, ), True)
    table[f'{name}.running_var'] = ((c, ), True)
    table[f'{name}.num_batches_tracked'] = ((), True)


def insightface_iresnet_table(layers, num_features=512):
    """insightface ``iresnet.IResNet(IBasicBlock, layers, num_features=...)``."""
    t = OrderedDict()
    t['conv1.weight'] = ((64, 3, 3, 3), False)
    _bn(t, 'bn1', 64)
    t['prelu.weight'] = ((64, ), False)
    inplanes = 64
    for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
        for j in range(blocks):
            p = f'layer{i + 1}.{j}'
            _bn(t, f'{p}.bn1', inplanes)
            t[f'{p}.conv1.weight'] = ((planes, inplanes, 3, 3), False)
            _bn(t, f'{p}.bn2', planes)
            t[f'{p}.prelu.weight'] = ((planes, ), False)
            t[f'{p}.conv2.weight'] = ((planes, planes, 3, 3), False)
            _bn(t, f'{p}.bn3', planes)
            if j == 0:  # stride 2 in every stage -> conv1x1 + BN shortcut
                t[f'{p}.downsample.0.weight'] = ((planes, inplanes, 1, 1), False)
                _bn(t, f'{p}.downsample.1', planes)
            inplanes = planes
    _bn(t, 'bn2', 512)
    t['fc.weight'] = ((num_features, 512 * 7 * 7), False)
    t['fc.bias'] = ((num_features, ), False)
    _bn(t, 'features', num_features)
    return t


def insightface_mbf_table(blocks=(1, 4, 6, 2), scale=2, num_features=512):
    """insightface ``get_mbf(fp16, num_features, blocks, scale)``."""
    t = OrderedDict()

    def conv_block(p, cin, cout, k, groups=1, act=True):
        t[f'{p}.layers.0.weight'] = ((cout, cin // groups, k, k), False)
        _bn(t, f'{p}.layers.1', cout)
        if act:
            t[f'{p}.layers.2.weight'] = ((cout, ), False)

    def depthwise(p, cin, cout, groups):
        conv_block(f'{p}.layers.0', cin, groups, 1)
        conv_block(f'{p}.layers.1', groups, groups, 3, groups=groups)
        conv_block(f'{p}.layers.2', groups, cout, 1, act=False)

    def residual(p, c, n, groups):
        for j in range(n):
            depthwise(f'{p}.layers.{j}', c, c, groups)

    c1, c2 = 64 * scale, 128 * scale
    conv_block('layers.0', 3, c1, 3)
    if blocks[0] == 1:
        conv_block('layers.1', c1, c1, 3, groups=64)
    else:
        residual('layers.1', c1, blocks[0], 128)
    depthwise('layers.2', c1, c1, 128)
    residual('layers.3', c1, blocks[1], 128)
    depthwise('layers.4', c1, c2, 256)
    residual('layers.5', c2, blocks[2], 256)
    depthwise('layers.6', c2, c2, 512)
    residual('layers.7', c2, blocks[3], 256)
    conv_block('conv_sep', c2, 512, 1)
    conv_block('features.layers.0', 512, 512, 7, groups=512, act=False)
    t['features.layers.2.weight'] = ((num_features, 512), False)
    _bn(t, 'features.layers.3', num_features)
    return t


def module_from_table(table):
    """An ``nn.Module`` holding exactly the table's parameters and buffers."""
    root = nn.Module()
    for key, (shape, is_buffer) in table.items():
        *path, leaf = key.split('.')
        module = root
        for name in path:
            if name not in module._modules:
                module.add_module(name, nn.Module())
            module = module._modules[name]
        dtype = torch.long if leaf == 'num_batches_tracked' else torch.float32
        tensor = torch.zeros(shape, dtype=dtype)
        if is_buffer:
            module.register_buffer(leaf, tensor)
        else:
            module.register_parameter(leaf, nn.Parameter(tensor))
    return root


# ---------------------------------------------------------------------------
# insightface's forward passes, functionally
# ---------------------------------------------------------------------------

def _bnf(x, sd, p):
    return F.batch_norm(x, sd[f'{p}.running_mean'], sd[f'{p}.running_var'], sd[f'{p}.weight'],
                        sd[f'{p}.bias'], False, 0.0, 1e-5)


def iresnet_forward(sd, x, layers):
    x = F.prelu(_bnf(F.conv2d(x, sd['conv1.weight'], padding=1), sd, 'bn1'), sd['prelu.weight'])
    for i, blocks in enumerate(layers):
        for j in range(blocks):
            p = f'layer{i + 1}.{j}'
            out = F.conv2d(_bnf(x, sd, f'{p}.bn1'), sd[f'{p}.conv1.weight'], padding=1)
            out = F.prelu(_bnf(out, sd, f'{p}.bn2'), sd[f'{p}.prelu.weight'])
            out = F.conv2d(out, sd[f'{p}.conv2.weight'], stride=2 if j == 0 else 1, padding=1)
            out = _bnf(out, sd, f'{p}.bn3')
            if j == 0:
                x = _bnf(F.conv2d(x, sd[f'{p}.downsample.0.weight'], stride=2), sd,
                         f'{p}.downsample.1')
            x = out + x
    x = torch.flatten(_bnf(x, sd, 'bn2'), 1)
    return _bnf(F.linear(x, sd['fc.weight'], sd['fc.bias']), sd, 'features')


def mbf_forward(sd, x, blocks):
    def conv_block(x, p, stride=1, padding=0, groups=1, act=True):
        x = F.conv2d(x, sd[f'{p}.layers.0.weight'], stride=stride, padding=padding,
                     groups=groups)
        x = _bnf(x, sd, f'{p}.layers.1')
        return F.prelu(x, sd[f'{p}.layers.2.weight']) if act else x

    def depthwise(x, p, stride, residual):
        groups = sd[f'{p}.layers.1.layers.0.weight'].shape[0]
        y = conv_block(x, f'{p}.layers.0')
        y = conv_block(y, f'{p}.layers.1', stride, 1, groups=groups)
        y = conv_block(y, f'{p}.layers.2', act=False)
        return x + y if residual else y

    x = conv_block(x, 'layers.0', 2, 1)
    if blocks[0] == 1:
        x = conv_block(x, 'layers.1', 1, 1, groups=64)
    else:
        for j in range(blocks[0]):
            x = depthwise(x, f'layers.1.layers.{j}', 1, True)
    for index, num in ((2, None), (3, blocks[1]), (4, None), (5, blocks[2]), (6, None),
                       (7, blocks[3])):
        if num is None:
            x = depthwise(x, f'layers.{index}', 2, False)
        else:
            for j in range(num):
                x = depthwise(x, f'layers.{index}.layers.{j}', 1, True)
    x = conv_block(x, 'conv_sep')
    x = conv_block(x, 'features.layers.0', groups=512, act=False).flatten(1)
    return _bnf(F.linear(x, sd['features.layers.2.weight']), sd, 'features.layers.3')


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def calibrate_bn(model, size=112, seed=0):
    """Realistic BatchNorm statistics (random weights otherwise blow activations up)."""
    return shared_calibrate_bn(model, size, batches=1, batch_size=4, seed=seed)


PUBLISHED = {
    # insightface name: (our backbone config, insightface table, insightface forward)
    'r18': (dict(type='IResNet', arch=18),
            insightface_iresnet_table((2, 2, 2, 2)),
            lambda sd, x: iresnet_forward(sd, x, (2, 2, 2, 2))),
    'mbf': (dict(type='MobileFaceNet', arch='mbf'),
            insightface_mbf_table((1, 4, 6, 2), 2),
            lambda sd, x: mbf_forward(sd, x, (1, 4, 6, 2))),
}


def _student(backbone):
    return dict(type='FaceRecognizer', backbone=backbone, flip_test=True,
                head=dict(type='ArcFaceHead', num_classes=3, in_channels=512))


def _distiller_checkpoint(tmp_path, student_backbone):
    teacher_backbone = dict(type='IResNet', arch=18, base_channels=4, embedding_size=16)
    teacher_path = str(tmp_path / 'teacher_backbone.pth')
    torch.save(MODELS.build(teacher_backbone).state_dict(), teacher_path)
    torch.manual_seed(0)
    distiller = MODELS.build(dict(
        type='CoupleFaceDistiller', student=_student(student_backbone),
        teacher=dict(model=dict(type='FaceRecognizer', backbone=teacher_backbone),
                     checkpoint=teacher_path),
        connector=dict(type='LinearConnector', in_channels=512, out_channels=16),
        fcd_loss=dict(type='FeatureConsistencyLoss')))
    calibrate_bn(distiller.student)
    path = str(tmp_path / 'distiller.pth')
    torch.save({'state_dict': distiller.state_dict(), 'meta': {'epoch': 20, 'seed': 7}}, path)
    return path, distiller


@pytest.mark.parametrize('name', sorted(PUBLISHED))
def test_distilled_student_loads_into_insightface_layout(name, tmp_path, capsys):
    backbone, table, forward = PUBLISHED[name]
    ckpt, distiller = _distiller_checkpoint(tmp_path, backbone)

    student_path = str(tmp_path / 'student.pth')
    assert run_cli(lambda: extract_student.main([ckpt, student_path])) == 0
    student = safe_torch_load(student_path)
    assert set(student) == {'state_dict', 'meta'}
    keys = list(student['state_dict'])
    assert {k.split('.')[0] for k in keys} == {'backbone', 'head'}
    assert not any('connector' in k or 'extra_state' in k for k in keys)
    assert student['meta']['teacher'] == distiller.state_dict()['_extra_state']
    assert student['meta']['epoch'] == 20
    assert student['meta']['extracted_from']['checkpoint'] == osp.abspath(ckpt)
    assert 'connector.proj.weight' in capsys.readouterr().out  # reported as dropped
    recognizer = MODELS.build(_student(backbone))
    load_state_dict_flexible(recognizer, student_path, strict=True)  # plain recognizer ckpt

    out = str(tmp_path / 'backbone.pth')
    assert run_cli(lambda: to_insightface.main([student_path, out])) == 0
    printed = capsys.readouterr().out
    assert 'warning' not in printed  # published widths and 112 px: insightface can load it
    bare = safe_torch_load(out)
    assert all(isinstance(v, torch.Tensor) for v in bare.values())
    assert all(v.dtype == torch.float32 for k, v in bare.items()
               if not k.endswith('num_batches_tracked'))
    insightface_model = module_from_table(table)
    insightface_model.load_state_dict(bare, strict=True)  # keys AND shapes of insightface's
    assert list(bare) == list(table)

    x = torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        ours = distiller.student.eval().extract_feat(x)
        theirs = forward(insightface_model.state_dict(), x)
    assert ours.abs().max() > 0.1  # a real signal, not all zeros
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-4)

    # the distiller checkpoint converts directly too (student.* keys), identically
    direct = str(tmp_path / 'direct_backbone.pth')
    assert run_cli(lambda: to_insightface.main([ckpt, direct])) == 0
    for k, v in safe_torch_load(direct).items():
        torch.testing.assert_close(v, bare[k], rtol=0, atol=0)


def test_narrow_student_keeps_keys_and_warns(tmp_path, capsys):
    model = MODELS.build(_student(dict(type='IResNet', arch=18, base_channels=8, input_size=64)))
    ckpt = str(tmp_path / 'narrow.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    out = str(tmp_path / 'backbone.pth')
    assert run_cli(lambda: to_insightface.main([ckpt, out])) == 0
    printed = capsys.readouterr().out
    assert "get_model('r18', num_features=512)" in printed
    assert 'warning: base_channels=8, input_size=64' in printed
    bare = safe_torch_load(out)
    assert list(bare) == list(insightface_iresnet_table((2, 2, 2, 2)))  # same keys
    for k, v in model.backbone.state_dict().items():
        torch.testing.assert_close(bare[k], v, rtol=0, atol=0)


def test_other_backbones_refused(tmp_path, capsys):
    resnet = dict(type='FaceRecognizer',
                  backbone=dict(type='mmpretrain.ResNet', depth=18, base_channels=8,
                                stem_channels=8, out_indices=(3, )),
                  neck=dict(type='EmbeddingNeck', in_channels=64, feat_size=2,
                            embedding_size=32))
    model = MODELS.build(resnet)
    ckpt = str(tmp_path / 'resnet.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    out = str(tmp_path / 'backbone.pth')
    assert run_cli(lambda: to_insightface.main([ckpt, out])) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'has a neck (neck.' in err
    # with its config: refused by type, before reading weights
    from mmengine.config import Config
    cfg = str(tmp_path / 'resnet_cfg.py')
    Config(dict(model=resnet)).dump(cfg)
    assert run_cli(lambda: to_insightface.main([ckpt, out, '--config', cfg])) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'the model is mmpretrain.ResNet + EmbeddingNeck' not in err
    assert 'the model is ResNet + EmbeddingNeck' in err
    # a bare state dict of another layout
    torch.save(model.backbone.state_dict(), ckpt)
    assert run_cli(lambda: to_insightface.main([ckpt, out])) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'neither an IResNet nor a MobileFaceNet' in err
    assert not osp.exists(out)


def test_extract_student_refuses_a_recognizer_checkpoint(tmp_path, capsys):
    model = MODELS.build(_student(dict(type='IResNet', arch=18, base_channels=4, input_size=32)))
    ckpt = str(tmp_path / 'rec.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    assert run_cli(lambda: extract_student.main([ckpt, str(tmp_path / 'out.pth')])) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'not a distiller checkpoint' in err


def test_to_insightface_with_config_checks_strictly(tmp_path, capsys):
    from mmengine.config import Config
    backbone = dict(type='MobileFaceNet', input_size=64, embedding_size=64)
    model = MODELS.build(dict(_student(backbone), head=None))
    ckpt = str(tmp_path / 'mbf.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    cfg = str(tmp_path / 'mbf_cfg.py')
    Config(dict(model=dict(type='FaceRecognizer', backbone=backbone))).dump(cfg)
    out = str(tmp_path / 'backbone.pth')
    assert run_cli(lambda: to_insightface.main([ckpt, out, '--config', cfg])) == 0
    assert 'warning: input_size=64' in capsys.readouterr().out
    bare = safe_torch_load(out)
    assert list(bare) == list(insightface_mbf_table(num_features=64))
    shapes = {k: tuple(v.shape) for k, v in bare.items()}
    expected = {k: s for k, (s, _) in insightface_mbf_table(num_features=64).items()}
    diff = {k for k in shapes if shapes[k] != expected[k]}
    assert diff == {'features.layers.0.layers.0.weight'}  # the 4x4 GDC kernel at 64 px
    # a config of another size: the strict load fails with the shape listed
    Config(dict(model=dict(type='FaceRecognizer', backbone=dict(backbone, input_size=112)))
           ).dump(cfg)
    assert run_cli(lambda: to_insightface.main([ckpt, out, '--config', cfg])) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'features.layers.0.layers.0.weight' in err
