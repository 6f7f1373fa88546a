"""run_cache: a reused teacher or bank must come from the same data, config and inputs."""
import json
import os.path as osp

import pytest

from coupleface.utils.run_cache import StaleOutputError, check_record, fingerprint, write_record

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEACHER = osp.join(REPO, 'configs', 'arcface', 'iresnet18-w32_1xb128_synthfaces-56px.py')


def _data(tmp_path, name: str, difficulty: float) -> str:
    root = tmp_path / name
    root.mkdir()
    (root / 'meta.json').write_text(json.dumps(dict(
        settings=dict(num_ids=300, imgs_per_id=16, difficulty=difficulty), seconds=1.5)))
    return str(root)


def test_fingerprint_sees_data_settings_config_overrides_and_extra_inputs(tmp_path):
    data = _data(tmp_path, 'a', 0.7)
    base = fingerprint(TEACHER, ['model.head.num_classes=300'], data, dict(teacher_sha256='x'))
    assert base == fingerprint(TEACHER, ['model.head.num_classes=300'], data,
                               dict(teacher_sha256='x'))  # deterministic
    same_settings = _data(tmp_path, 'copy', 0.7)  # another folder, same SynthFaces settings
    assert fingerprint(TEACHER, ['model.head.num_classes=300'], same_settings,
                       dict(teacher_sha256='x')) == base
    harder = fingerprint(TEACHER, ['model.head.num_classes=300'], _data(tmp_path, 'b', 0.8),
                         dict(teacher_sha256='x'))
    assert harder['data'] != base['data'] and harder['config'] == base['config']
    longer = fingerprint(TEACHER, ['model.head.num_classes=300', 'train_cfg.max_epochs=12'],
                         data, dict(teacher_sha256='x'))
    assert longer['config'] != base['config'] and longer['data'] == base['data']
    other_teacher = fingerprint(TEACHER, ['model.head.num_classes=300'], data,
                                dict(teacher_sha256='y'))
    assert other_teacher['extra'] != base['extra']


def test_check_record_refuses_other_inputs_and_changed_files(tmp_path):
    data = _data(tmp_path, 'a', 0.7)
    ckpt = tmp_path / 'epoch_4.pth'
    ckpt.write_bytes(b'weights')
    parts = fingerprint(TEACHER, [], data)
    with pytest.raises(StaleOutputError, match='has no epoch_4.pth.record.json'):
        check_record(str(ckpt), parts)
    write_record(str(ckpt), parts)
    check_record(str(ckpt), parts)  # same inputs, same file: reused
    with pytest.raises(StaleOutputError, match='made from another data than'):
        check_record(str(ckpt), fingerprint(TEACHER, [], _data(tmp_path, 'b', 0.8)))
    with pytest.raises(StaleOutputError, match='made from another config than'):
        check_record(str(ckpt), fingerprint(TEACHER, ['train_cfg.max_epochs=12'], data))
    ckpt.write_bytes(b'other weights')
    with pytest.raises(StaleOutputError, match='changed since it was recorded'):
        check_record(str(ckpt), parts)
