"""Every method config under configs/ parses and builds its model (and its hooks).

A recognizer config is built whole and embeds a batch; a distiller config builds its parts
without loading its teacher checkpoint or bank (the student, the teacher architecture, the
connector, the losses) and checks that the embedding sizes meet. Config names follow
mmpretrain's ``{model}_{N}xb{B}_{data}.py``: ``B`` is the per-GPU batch, ``N x B`` the batch
``auto_scale_lr`` refers to.
"""
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import coupleface  # noqa: F401
from coupleface.registry import DATA_SAMPLERS, DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS
from coupleface.utils import config_root

NAME_RE = re.compile(r'_(\d+)xb(\d+)_')
CONFIGS = sorted(p for p in glob.glob(osp.join(config_root(), '**', '*.py'), recursive=True)
                 if '_base_' not in p)


def _rel(path):
    return osp.relpath(path, config_root())


@pytest.mark.parametrize('path', CONFIGS, ids=_rel)
def test_config_builds_model_and_hooks(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'coupleface'
    with DefaultScope.overwrite_default_scope('coupleface'):
        if cfg.model.type == 'FaceRecognizer':
            model = MODELS.build(cfg.model)
            size = cfg.get('img_size', 112)  # the pipeline's image size
            model.eval()
            with torch.no_grad():
                out = model(torch.zeros(2, 3, size, size), mode='tensor')
            assert out.shape[0] == 2 and out.shape[1] == model.head.in_channels
        elif cfg.model.type == 'CoupleFaceDistiller':
            _check_distiller_parts(cfg)
        for hook in cfg.get('custom_hooks', []):
            assert HOOKS.get(hook['type']) is not None, hook['type']
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            loader = cfg.get(key)
            if not loader:
                continue
            ds = loader['dataset']
            assert DATASETS.get(ds['type']) is not None, ds['type']
            assert DATA_SAMPLERS.get(loader['sampler']['type']) is not None
            for t in ds.get('pipeline', []):
                TRANSFORMS.build(t)
        for key in ('val_evaluator', 'test_evaluator'):
            if cfg.get(key):
                assert METRICS.get(cfg[key]['type']) is not None


def _embed(model_cfg, size):
    model = MODELS.build(model_cfg)
    model.eval()
    with torch.no_grad():
        return model(torch.zeros(2, 3, size, size), mode='tensor').shape[1]


def _check_distiller_parts(cfg):
    """Student, teacher architecture (no checkpoint), connector and losses build and fit."""
    model = cfg.model
    size = cfg.train_dataloader.dataset.pipeline[0].size
    dim = _embed(model.student, size)
    # a head in the teacher's space (AdaDistillHead) may sit behind the connector
    through_connector = model.student.head.type == 'AdaDistillHead' and model.get('connector')
    if not through_connector:
        assert dim == model.student.head.in_channels
    if model.get('connector'):
        connector = MODELS.build(model.connector)
        assert connector.in_channels == dim
        dim = connector.out_channels
    if through_connector:
        assert dim == model.student.head.in_channels
    if model.get('teacher'):
        assert model.teacher.checkpoint, 'teacher=dict(model=..., checkpoint=...)'
        assert _embed(model.teacher.model, size) == dim, 'student and teacher sizes differ'
    else:
        assert model.teacher_bank.path
    losses = [model.get('fcd_loss'), model.get('rad_loss'),
              *(model.get('extra_losses') or {}).values()]
    for loss in filter(None, losses):  # none at all is valid (e.g. a teacher-aware head)
        MODELS.build(loss)
    sampler = cfg.train_dataloader.sampler
    hooks = [h['type'] for h in cfg.get('custom_hooks', [])]
    if sampler.type in ('RelationSampler', 'PartnerSampler'):
        assert sampler.batch_size == cfg.train_dataloader.batch_size
        assert 'RelationMiningHook' in hooks
    if sampler.type == 'PartnerSampler':  # the classifier skips exactly the partner images
        assert model.partner_samples == sampler.num_partners > 0
        assert sampler.batch_size > sampler.num_partners
    else:
        assert not model.get('partner_samples')


@pytest.mark.parametrize('path', CONFIGS, ids=_rel)
def test_name_matches_batch_sizes(path):
    match = NAME_RE.search(osp.basename(path))
    assert match, f'{_rel(path)}: not named {{model}}_{{N}}xb{{B}}_{{data}}.py'
    gpus, batch = map(int, match.groups())
    cfg = Config.fromfile(path)
    assert cfg.train_dataloader.batch_size == batch
    assert cfg.auto_scale_lr.base_batch_size == gpus * batch
