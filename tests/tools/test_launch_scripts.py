"""The launch scripts' command lines, with srun and python replaced by stubs that print
their arguments (no cluster needed): the right tool, arguments kept whole, the launcher."""
import os
import os.path as osp
import subprocess

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools')


@pytest.fixture
def stubs(tmp_path):
    for name in ('srun', 'python'):
        stub = tmp_path / name
        stub.write_text('#!/usr/bin/env bash\necho "[%s]"\nprintf \'%%s\\n\' "$@"\n' % name)
        stub.chmod(0o755)
    return dict(os.environ, PATH=f'{tmp_path}:{os.environ["PATH"]}')


def _run(env, script, *args):
    out = subprocess.run(['bash', osp.join(TOOLS, script), *args], env=env,
                         capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


@pytest.mark.parametrize('script,tool,args,expect_tail', [
    ('slurm_train.sh', 'train.py', ['gpu', 'job', 'a.py', 'work dir', '--amp'],
     ['a.py', '--work-dir=work dir', '--amp', '--launcher=slurm']),
    ('slurm_test.sh', 'test.py', ['gpu', 'job', 'a.py', 'w.pth', '--out-dir', 'x y'],
     ['a.py', 'w.pth', '--out-dir', 'x y', '--launcher=slurm']),
])
def test_slurm_scripts(stubs, script, tool, args, expect_tail):
    lines = _run(dict(stubs, GPUS='16'), script, *args)
    assert lines[0] == '[srun]'
    assert lines[1:3] == ['-p', 'gpu'] and '--job-name=job' in lines
    assert '--ntasks=16' in lines and '--gres=gpu:8' in lines
    i = lines.index('python')
    assert lines[i + 1:i + 3] == ['-u', osp.join(TOOLS, tool)]
    assert lines[i + 3:] == expect_tail


@pytest.mark.parametrize('script,tool,args,expect_tail', [
    ('dist_train.sh', 'train.py', ['a.py', '2', '--amp'], ['a.py', '--launcher', 'pytorch',
                                                           '--amp']),
    ('dist_test.sh', 'test.py', ['a.py', 'w.pth', '2', '--out-dir', 'x y'],
     ['a.py', 'w.pth', '--launcher', 'pytorch', '--out-dir', 'x y']),
])
def test_dist_scripts(stubs, script, tool, args, expect_tail):
    lines = _run(stubs, script, *args)
    assert lines[:3] == ['[python]', '-m', 'torch.distributed.run']
    assert '--nproc_per_node=2' in lines and '--master_port=29500' in lines
    i = lines.index(osp.join(TOOLS, tool))
    assert lines[i + 1:] == expect_tail
