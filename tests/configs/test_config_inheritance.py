"""How the configs under configs/ inherit, read from their ``_base_`` lists (not resolved).

- a method config (outside ``configs/_base_``) inherits through at most ``MAX_DEPTH`` other
  method configs before it reaches the ``_base_`` files, and a ``_base_`` file's own chain is
  at most ``MAX_DEPTH`` deep;
- the distillers take their student and teacher from a ``_base_/models/distiller_*.py`` base:
  no method config of the distillation folders restates them under ``_delete_=True`` (on
  ``model``, ``model.student``, ``model.teacher`` or ``model.teacher.model``); replacing a
  part of the student (its head, for AdaDistill) is fine;
- every ``_base_/models`` file is a base of some method config.
"""
import ast
import glob
import os.path as osp
import re

import pytest

from coupleface.utils import config_root

MAX_DEPTH = 3
DISTILLER_DIRS = ('fcd', 'ekd', 'rkd', 'adadistill', 'coupleface')
ROOT = config_root()
BASE_ROOT = osp.join(ROOT, '_base_')
ALL = sorted(glob.glob(osp.join(ROOT, '**', '*.py'), recursive=True))
METHOD = [p for p in ALL if not p.startswith(BASE_ROOT + osp.sep)]
BASES = [p for p in ALL if p.startswith(BASE_ROOT + osp.sep)]
DISTILLERS = [p for p in METHOD if osp.relpath(p, ROOT).split(osp.sep)[0] in DISTILLER_DIRS]
PLACEHOLDER_RE = re.compile(r'\{\{[^}]*\}\}')  # {{_base_.x}}: not Python until MMEngine subs it


def _rel(path):
    return osp.relpath(path, ROOT)


def _module(path):
    with open(path, encoding='utf-8') as f:
        return ast.parse(PLACEHOLDER_RE.sub('None', f.read()), filename=path)


def _assigned(path, name):
    """The value node of the top-level ``name = ...`` of a config file, or None."""
    for node in _module(path).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return node.value
    return None


def _bases(path):
    node = _assigned(path, '_base_')
    if node is None:
        return []
    value = ast.literal_eval(node)
    paths = [value] if isinstance(value, str) else value
    assert all('::' not in p for p in paths), f'{_rel(path)}: cross-package base'
    return [osp.normpath(osp.join(osp.dirname(path), p)) for p in paths]


def _method_depth(path):
    """Method configs between ``path`` and the ``_base_`` files (0: inherits bases only)."""
    parents = [p for p in _bases(path) if not p.startswith(BASE_ROOT + osp.sep)]
    return max((1 + _method_depth(p) for p in parents), default=0)


def _depth(path):
    return max((1 + _depth(p) for p in _bases(path)), default=0)


def _dict_items(node):
    """``{key: value node}`` of a ``dict(...)`` call or a ``{...}`` literal, else None."""
    if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'dict':
        return {kw.arg: kw.value for kw in node.keywords if kw.arg is not None}
    if isinstance(node, ast.Dict):
        return {k.value: v for k, v in zip(node.keys, node.values)
                if isinstance(k, ast.Constant)}
    return None


def _deletes(items):
    flag = (items or {}).get('_delete_')
    return isinstance(flag, ast.Constant) and flag.value is True


@pytest.mark.parametrize('path', METHOD, ids=_rel)
def test_method_config_inheritance_depth(path):
    assert _method_depth(path) <= MAX_DEPTH, f'{_rel(path)} inherits through too many configs'


@pytest.mark.parametrize('path', BASES, ids=_rel)
def test_base_config_inheritance_depth(path):
    assert _depth(path) <= MAX_DEPTH


@pytest.mark.parametrize('path', DISTILLERS, ids=_rel)
def test_distiller_does_not_restate_student_or_teacher(path):
    model = _dict_items(_assigned(path, 'model'))
    if model is None:  # inherits the model unchanged
        return
    assert not _deletes(model), f'{_rel(path)}: model=dict(_delete_=True, ...)'
    for key in ('student', 'teacher'):
        assert not _deletes(_dict_items(model.get(key))), f'{_rel(path)}: model.{key}'
    teacher = _dict_items(model.get('teacher')) or {}
    assert not _deletes(_dict_items(teacher.get('model'))), f'{_rel(path)}: teacher.model'


def test_distillers_inherit_a_distiller_base():
    """Each distiller config reaches a ``_base_/models/distiller_*.py`` file."""
    def reaches(path):
        return any(osp.basename(p).startswith('distiller_') or reaches(p)
                   for p in _bases(path))

    missing = [_rel(p) for p in DISTILLERS if not reaches(p)]
    assert not missing


def test_every_model_base_is_used():
    used = {b for p in ALL for b in _bases(p)}
    models = glob.glob(osp.join(BASE_ROOT, 'models', '*.py'))
    assert models and not [_rel(p) for p in models if p not in used]
