"""The schedule bases hold the recipes their comments and the docs name.

``ms1m_20e.py``: insightface arcface_torch's MS1M recipe (SGD lr 0.1, momentum 0.9, weight
decay 5e-4, batch 8 x 128 = 1024, 20 epochs, per-iteration polynomial decay with power 2 and
no warm-up, gradient clipping at norm 5); ``ms1m_40e_mbf.py``: its MobileFaceNet variant
(40 epochs, weight decay 1e-4); ``synthfaces.py``: the short CPU schedule. The learning rate
of every step is checked against insightface's PolyScheduler formula ``0.1 * (1 - t / T) ** 2``:
MMEngine's PolyLR reaches 0 at the last iteration ``T - 1`` (``1 - t / (T - 1)``), one
iteration earlier than insightface's, a difference of one step in ~100,000 on MS1M.
"""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.optim.scheduler import PolyLR

import coupleface  # noqa: F401
from coupleface.utils import config_root

SCHEDULES = osp.join(config_root(), '_base_', 'schedules')
# name: (max_epochs, weight_decay, base_batch_size)
RECIPES = {'ms1m_20e.py': (20, 5e-4, 1024), 'ms1m_40e_mbf.py': (40, 1e-4, 1024),
           'synthfaces.py': (8, 5e-4, 128)}


def test_every_schedule_is_tested():
    assert {osp.basename(p) for p in glob.glob(osp.join(SCHEDULES, '*.py'))} == set(RECIPES)


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_schedule_values(name):
    cfg = Config.fromfile(osp.join(SCHEDULES, name))
    epochs, weight_decay, base_batch = RECIPES[name]
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ('SGD', 0.1, 0.9, weight_decay)
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=5, norm_type=2)
    assert cfg.train_cfg.max_epochs == epochs and cfg.train_cfg.by_epoch
    assert cfg.auto_scale_lr == dict(base_batch_size=base_batch, enable=False)
    poly = cfg.param_scheduler[-1]
    assert (poly.type, poly.power, poly.eta_min, poly.end) == ('PolyLR', 2.0, 0.0, epochs)
    assert all(s.convert_to_iter_based for s in cfg.param_scheduler)  # per iteration


@pytest.mark.parametrize('name', ['ms1m_20e.py', 'ms1m_40e_mbf.py'])
def test_ms1m_lr_is_insightface_polyscheduler(name):
    """lr(it) = 0.1 * (1 - it / (total - 1)) ** 2 from the first iteration, no warm-up."""
    cfg = Config.fromfile(osp.join(SCHEDULES, name))
    assert len(cfg.param_scheduler) == 1 and cfg.param_scheduler[0].begin == 0
    iters_per_epoch = 7
    total = iters_per_epoch * cfg.train_cfg.max_epochs
    wrapper = build_optim_wrapper(torch.nn.Linear(2, 2), cfg.optim_wrapper)
    poly = {k: v for k, v in cfg.param_scheduler[0].items()
            if k not in ('type', 'convert_to_iter_based')}
    scheduler = PolyLR.build_iter_from_epoch(wrapper.optimizer, epoch_length=iters_per_epoch,
                                             **poly)
    for it in range(total):
        lr = wrapper.get_lr()['lr'][0]
        assert lr == pytest.approx(0.1 * (1 - it / (total - 1)) ** 2, abs=1e-12), it
        assert abs(lr - 0.1 * (1 - it / total) ** 2) <= 0.2 / total, it  # insightface's
        wrapper.optimizer.step()
        scheduler.step()
