"""docs/get_started.md runs as written: every ```bash block marked ``<!-- run by tests -->``
runs, in page order, in one fresh bash shell (set -e) in a scratch folder that links the
repository's configs, tools and .venv, so it writes nothing into the checkout."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAGE = osp.join(ROOT, 'docs', 'get_started.md')
MARK = '<!-- run by tests -->'


def marked_blocks(text):
    """The ```bash blocks right after the marker line, in order."""
    return re.findall(re.escape(MARK) + r'\s*\n```bash\n(.*?)```', text, flags=re.S)


def test_the_page_marks_the_first_model_commands():
    blocks = marked_blocks(open(PAGE, encoding='utf-8').read())
    assert len(blocks) >= 2
    assert blocks[0].strip() == 'source .venv/bin/activate'
    joined = '\n'.join(blocks)
    for tool in ('make_synthfaces.py', 'train.py', 'test.py', 'analyze_logs.py'):
        assert tool in joined


@pytest.mark.slow
def test_marked_blocks_run_in_a_fresh_shell(tmp_path):
    for name in ('configs', 'tools'):
        os.symlink(osp.join(ROOT, name), tmp_path / name)
    venv = osp.dirname(osp.dirname(sys.executable))  # the environment running the tests
    os.symlink(venv, tmp_path / '.venv')
    script = 'set -euo pipefail\n' + '\n'.join(
        marked_blocks(open(PAGE, encoding='utf-8').read()))
    env = {k: v for k, v in os.environ.items() if k not in ('VIRTUAL_ENV', 'PYTHONPATH')}
    proc = subprocess.run(['bash', '-c', script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    out = tmp_path / 'work_dirs' / 'quickstart'
    assert (out / 'epoch_2.pth').is_file()
    metrics = (out / 'test' / 'metrics.md').read_text()
    assert 'accuracy' in metrics.lower()
    assert (out / 'loss.png').read_bytes()[:4] == b'\x89PNG'
    assert 'G multiply-adds' in proc.stdout
