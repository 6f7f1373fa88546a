"""`coupleface::` config paths resolve (source checkout and editable installs)."""
import os.path as osp

import pytest
from mmengine.config import Config

import coupleface  # noqa: F401
from coupleface.utils import config_root, resolve_config_path


def test_config_root_is_repo_configs():
    assert osp.isdir(config_root())
    assert osp.basename(config_root()) == 'configs'


def test_resolve_and_inherit(tmp_path):
    base = osp.join(config_root(), '_base_', 'default_runtime.py')
    assert resolve_config_path('coupleface::_base_/default_runtime.py') == base
    child = tmp_path / 'child.py'
    child.write_text("_base_ = 'coupleface::_base_/default_runtime.py'\nfoo = 1\n")
    cfg = Config.fromfile(str(child))
    assert cfg.foo == 1
    assert cfg.default_scope == 'coupleface'


def test_missing_config_is_clear():
    with pytest.raises(FileNotFoundError, match='no_such.py'):
        resolve_config_path('coupleface::no_such.py')


def test_other_project_inherits_coupleface_config_and_overrides_student(tmp_path):
    """A config outside the repo inherits ours via coupleface::, swaps the student, builds."""
    import torch
    from mmengine.registry import DefaultScope

    from coupleface.registry import MODELS

    base = 'coupleface::coupleface/iresnet18-w8_coupleface-iresnet18-w32_1xb128_synthfaces-56px.py'
    parent = Config.fromfile(resolve_config_path(base))
    with DefaultScope.overwrite_default_scope('coupleface'):
        teacher = MODELS.build(parent.model.teacher.model)
    teacher_path = tmp_path / 'teacher.pth'
    torch.save(teacher.state_dict(), teacher_path)

    project = tmp_path / 'other_project' / 'configs'
    project.mkdir(parents=True)
    child = project / 'mbf_student.py'
    child.write_text(
        f"_base_ = '{base}'\n"
        "model = dict(\n"
        "    student=dict(backbone=dict(_delete_=True, type='MobileFaceNet', input_size=56,\n"
        "                               embedding_size=128)),\n"
        f"    teacher=dict(checkpoint='{teacher_path}'))\n")
    cfg = Config.fromfile(str(child))
    assert cfg.model.student.backbone.type == 'MobileFaceNet'
    assert cfg.model.rad_loss.type == 'RelationAwareDistillationLoss'  # inherited
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    assert type(model.student.backbone).__name__ == 'MobileFaceNet'
    assert model.teacher is not None
    model.eval()
    with torch.no_grad():
        emb = model(torch.zeros(2, 3, 56, 56), mode='tensor')
    assert emb.shape == (2, 128)
