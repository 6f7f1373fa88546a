"""SynthFaces configs log often enough for CPU speed (38 iterations an epoch, 1-5 s each):
the first training line must not wait minutes (issue 16)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

import coupleface  # noqa: F401  (coupleface:: config paths)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', '*', '*synthfaces*.py')))


def test_there_are_synthfaces_configs():
    assert len(CONFIGS) >= 15


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.basename(p))
def test_logger_interval_suits_cpu_speed(path):
    cfg = Config.fromfile(path)
    assert cfg.default_hooks.logger.interval <= 10
