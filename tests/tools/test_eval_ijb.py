"""tools/eval_ijb.py: embeds the fixture set with a tiny model, prints the tables, writes JSON."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from coupleface.registry import MODELS
from coupleface.setup_env import register_all_modules
from coupleface.utils.cli import run_cli

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
REPO = osp.dirname(TESTS)
SCRIPT = osp.join(REPO, 'tools', 'eval_ijb.py')
sys.path.insert(0, TESTS)
from _ijb_fixture import copy_fixture, replace_line, shared_ijb_fixture  # noqa: E402

MODEL = dict(type='FaceRecognizer', backbone=dict(type='IResNet', arch=18, base_channels=8,
                                                  input_size=112, embedding_size=32))


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    register_all_modules()
    tmp = tmp_path_factory.mktemp('eval_ijb')
    config = tmp / 'tiny_iresnet18.py'
    config.write_text(f'model = {MODEL!r}\n')
    torch.manual_seed(0)
    model = MODELS.build(MODEL)
    checkpoint = tmp / 'tiny.pth'
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    return shared_ijb_fixture(), str(config), str(checkpoint), tmp


def test_eval_ijb_prints_tables_and_writes_json(setup):
    fx, config, checkpoint, tmp = setup
    out_dir = tmp / 'out'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, SCRIPT, config, checkpoint, '--root', fx.root, '--name', 'ijbc',
         '--batch-size', '32', '--workers', '1', '--out-dir', str(out_dir), '--save-scores'],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert '85 images, 18 templates, 153 pairs' in out
    assert 'images/s' in out and 'img/s' in proc.stderr  # summary + tqdm throughput
    lines = out.splitlines()
    row = next(ln for ln in lines if ln.strip().startswith('1e-01'))
    assert len(row.split()) == 5 and 0.0 <= float(row.split()[1]) <= 100.0
    assert any(ln.strip().startswith('1e-04') and 'not measurable' in ln for ln in lines)
    assert any(ln.startswith('AUC:') for ln in lines)
    assert any(ln.startswith('G1+G2') for ln in lines)
    with open(out_dir / 'ijbc_results.json') as f:
        result = json.load(f)
    assert result['num_templates'] == 18 and result['num_pairs'] == 153
    assert result['metrics']['ijbc/tar@far=1e-06'] is None  # NaN -> null
    assert 0.0 <= result['metrics']['ijbc/tar@far=1e-01'] <= 100.0
    assert result['tar_at_far']['1e-01']['measurable'] is True
    assert osp.isfile(out_dir / 'ijbc_scores.npz')


def test_eval_ijb_bad_meta_is_one_line_error(setup, tmp_path, capsys):
    fx, config, checkpoint, _ = setup
    bad = copy_fixture(fx, str(tmp_path / 'bad'))
    replace_line(bad.meta_path('template_pair_label'), 4, '1000 1234567 1')
    spec = importlib.util.spec_from_file_location('eval_ijb_tool', SCRIPT)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    code = run_cli(lambda: tool.main([config, checkpoint, '--root', bad.root, '--workers', '0',
                                      '--no-progress']))
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.count('\n') == 0 and 'ijbc_template_pair_label.txt:4' in err and '1234567' in err
