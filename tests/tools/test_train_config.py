"""tools/train.py's config handling: work dir, resume, TensorBoard backend."""
import importlib.util
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                            'tools'))
from train import build_config, parse_args  # noqa: E402

CFG = 'coupleface::arcface/iresnet18-w8_1xb128_synthfaces-56px.py'


def test_work_dir_resume_and_backends(tmp_path):
    cfg = build_config(parse_args([CFG, '--work-dir', str(tmp_path), '--resume']))
    assert cfg.work_dir == str(tmp_path) and cfg.resume is True and cfg.load_from is None
    # (no checkpoint yet: MMEngine's own search, which finds none and starts afresh)
    types = [b['type'] for b in cfg.visualizer.vis_backends]
    assert types[0] == 'LocalVisBackend'
    has_tb = importlib.util.find_spec('tensorboard') is not None
    assert ('TensorboardVisBackend' in types) == has_tb


def test_resume_from_missing_path_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match='checkpoint not found'):
        build_config(parse_args([CFG, '--resume', str(tmp_path / 'x.pth')]))


def test_local_rank_spellings():
    assert parse_args([CFG, '--local-rank', '1']).local_rank == 1
    assert parse_args([CFG, '--local_rank', '1']).local_rank == 1


def test_resume_survives_an_empty_last_checkpoint_pointer(tmp_path):
    import os
    import time

    from train import find_resume_checkpoint
    assert find_resume_checkpoint(str(tmp_path)) is None
    old, new = tmp_path / 'iter_2.pth', tmp_path / 'iter_4.pth'
    old.write_bytes(b'x')
    time.sleep(0.01)
    new.write_bytes(b'x')
    os.utime(old, (1, 1))
    (tmp_path / 'last_checkpoint').write_text(str(old))
    assert find_resume_checkpoint(str(tmp_path)) == str(old)  # a valid pointer is obeyed
    (tmp_path / 'last_checkpoint').write_text('')  # killed during the pointer write
    assert find_resume_checkpoint(str(tmp_path)) == str(new)
    cfg = build_config(parse_args([CFG, '--work-dir', str(tmp_path), '--resume']))
    assert cfg.load_from == str(new) and cfg.resume is True
