"""tools/extract_embeddings.py: a teacher-bank config has no teacher to extract with."""
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_bank_config_is_a_one_line_error(tmp_path):
    cfg = ('configs/coupleface/iresnet18-w8_coupleface-bank-iresnet18-w32_1xb128_'
           'synthfaces-56px.py')
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'extract_embeddings.py'), cfg,
         str(tmp_path / 'missing.pth'), '--out', str(tmp_path / 'bank')],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith('error: ') and 'teacher bank (model.teacher is None)' in lines[-1]
    assert 'Traceback' not in proc.stderr
    assert not (tmp_path / 'bank.npy').exists()
