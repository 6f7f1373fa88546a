"""Run ``tools/train.py`` with test instrumentation: ``python _train_killable.py ARGS...``.

Environment:
    CF_PROGRESS_FILE: after every training iteration, the number of iterations
        completed so far is written there (temp file + rename), so a test can SIGKILL
        the process at a chosen point and know how much work was done.
    CF_SLOW_CHECKPOINT: a checkpoint file name (e.g. ``iter_6.pth``). When
        ``coupleface.utils.checkpoint_save.atomic_save`` has written that checkpoint's temp
        file and is about to rename it, ``<CF_PROGRESS_FILE>.in_checkpoint_write`` is
        created and the process sleeps, so the test can kill it mid-write.
"""
import os
import os.path as osp
import runpy
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_real_replace = os.replace


def _write_progress(path: str, value: int) -> None:
    tmp = f'{path}.{os.getpid()}.tmp'
    with open(tmp, 'w') as f:
        f.write(str(value))
    _real_replace(tmp, path)


def _install() -> None:
    from mmengine.runner import EpochBasedTrainLoop

    progress = os.environ.get('CF_PROGRESS_FILE')
    slow = os.environ.get('CF_SLOW_CHECKPOINT')
    if progress:
        run_iter = EpochBasedTrainLoop.run_iter

        def run_iter_with_progress(self, idx, data_batch):
            run_iter(self, idx, data_batch)
            _write_progress(progress, self._iter)

        EpochBasedTrainLoop.run_iter = run_iter_with_progress
    if slow:
        def slow_replace(src, dst, *args, **kwargs):
            if osp.basename(os.fspath(dst)) == slow and osp.exists(src):
                open(f'{progress}.in_checkpoint_write', 'w').close()
                time.sleep(600)  # the test SIGKILLs us here
            return _real_replace(src, dst, *args, **kwargs)

        os.replace = slow_replace


if __name__ == '__main__':
    _install()
    sys.argv = [osp.join(REPO, 'tools', 'train.py'), *sys.argv[1:]]
    sys.path.insert(0, REPO)
    runpy.run_path(sys.argv[0], run_name='__main__')
