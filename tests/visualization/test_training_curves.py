"""Training curves from MMEngine JSON logs: parsing against a hand-written log, the figure's
data, errors that name the problem; the analyze_logs and get_flops tools end to end."""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from coupleface.visualization import available_keys, load_json_log, plot_curves, train_time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LINES = [
    dict(lr=0.1, loss=4.0, loss_cls=3.0, loss_fcd=1.0, time=2.0, data_time=0.1, epoch=1,
         iter=10, step=10),
    dict(lr=0.05, loss=3.0, loss_cls=2.5, loss_fcd=0.5, time=1.0, data_time=0.1, epoch=1,
         iter=20, step=20),
    {'synth_val/accuracy': 90.5, 'data_time': 0.01, 'time': 0.2, 'step': 1},
    dict(lr=0.01, loss=2.0, loss_cls=1.8, loss_fcd=0.2, time=3.0, data_time=0.1, epoch=2,
         iter=30, step=30),
    {'synth_val/accuracy': 93.0, 'data_time': 0.01, 'time': 0.2, 'step': 2},
]


@pytest.fixture
def work_dir(tmp_path):
    log = tmp_path / 'run' / '20261207_120000' / 'vis_data' / '20261207_120000.json'
    log.parent.mkdir(parents=True)
    log.write_text('\n'.join(json.dumps(r) for r in LINES) + '\n')
    (log.parent / 'scalars.json').write_text('{}\n')
    return tmp_path / 'run', log


def test_load_json_log_splits_train_and_val(work_dir):
    _, path = work_dir
    log = load_json_log(str(path))
    assert log['train']['loss_fcd'] == [1.0, 0.5, 0.2]
    assert log['train']['loss_fcd@x'] == [10.0, 20.0, 30.0]
    assert log['val']['synth_val/accuracy'] == [90.5, 93.0]
    assert log['val']['synth_val/accuracy@x'] == [1.0, 2.0]
    assert 'time' not in log['train'] and 'epoch' not in log['train']
    assert available_keys(log) == ['lr', 'loss', 'loss_cls', 'loss_fcd', 'synth_val/accuracy']


def test_train_time(work_dir):
    t = train_time(str(work_dir[1]))
    assert t == dict(mean=2.0, max=3.0, min=1.0, n=3)


def test_plot_curves_draws_the_values(work_dir):
    log = load_json_log(str(work_dir[1]))
    fig = plot_curves([log, log], ['loss', 'synth_val/accuracy'], legends=['a', 'b'])
    ax_loss, ax_val = fig.axes
    np.testing.assert_array_equal(ax_loss.lines[0].get_ydata(), [4.0, 3.0, 2.0])
    np.testing.assert_array_equal(ax_val.lines[1].get_xdata(), [1.0, 2.0])
    assert [t.get_text() for t in ax_loss.get_legend().get_texts()] == ['a', 'b']
    with pytest.raises(KeyError, match="'nope' is in none of the logs; they have"):
        plot_curves([log], ['nope'])


def test_bad_line_names_file_and_line(tmp_path):
    p = tmp_path / 'x.json'
    p.write_text('{"iter": 1, "loss": 1}\nnot json\n')
    with pytest.raises(ValueError, match=r'x.json:2: not a JSON log line'):
        load_json_log(str(p))


def test_analyze_logs_tool(work_dir, tmp_path):
    run, path = work_dir
    script = osp.join(ROOT, 'tools/analysis_tools/analyze_logs.py')
    out = tmp_path / 'c.png'
    proc = subprocess.run([sys.executable, script, 'plot_curve', str(run), '--keys', 'loss_cls',
                           'synth_val/accuracy', '--out', str(out)], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    proc = subprocess.run([sys.executable, script, 'cal_train_time', str(path)],
                          capture_output=True, text=True, cwd=ROOT)
    assert '2.0000 s/iter (slowest 3.0000, fastest 1.0000, 3 logged lines)' in proc.stdout
    proc = subprocess.run([sys.executable, script, 'plot_curve', str(tmp_path / 'none')],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1 and 'neither a JSON log nor a work dir' in proc.stderr


def test_get_flops_counts_a_hand_computed_network():
    sys.path.insert(0, osp.join(ROOT, 'tools/analysis_tools'))
    try:
        from get_flops import count
    finally:
        sys.path.pop(0)
    import torch
    from torch import nn

    class Rec(nn.Module):  # conv 3->8, 3x3, stride 1, no padding, on 10x10: 8x8 outputs
        def __init__(self):
            super().__init__()
            self.backbone = nn.Conv2d(3, 8, 3, bias=False)
            self.head = nn.Linear(8, 100)  # excluded

        def extract_feat(self, x):
            return self.backbone(x).mean(dim=(2, 3))

    c = count(Rec(), 10)
    assert c['flops'] == 8 * 8 * 8 * 3 * 3 * 3  # outputs x (in channels x kernel)
    assert c['params'] == 8 * 3 * 3 * 3 and c['embedding'] == 8
    torch.manual_seed(0)


def test_get_flops_tool_on_a_config():
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools/analysis_tools/get_flops.py'),
                           'configs/arcface/iresnet18-w8_1xb128_synthfaces-56px.py'],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-1000:]
    assert 'input 3 x 56 x 56' in proc.stdout
    assert '0.242 M params, 64-d embedding' in proc.stdout
