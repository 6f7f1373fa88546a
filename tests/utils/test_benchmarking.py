"""coupleface.utils.benchmarking: peak memory in a child, RSS helpers, interleaved timing,
ratio and table formatting."""
import math
import sys

import pytest

from coupleface.utils import benchmarking as bm

ARRAY_BYTES = 64 * 2**20


linux_only = pytest.mark.skipif(not sys.platform.startswith('linux'), reason='/proc needed')


@linux_only
def test_peak_memory_of_a_known_allocation_in_a_child():
    # np.ones writes every page of the array
    res = bm.peak_memory_in_child('numpy:ones', dict(shape=ARRAY_BYTES, dtype='uint8'))
    assert res['exact'] is True
    # the array is all of the peak, plus a little interpreter overhead
    assert ARRAY_BYTES <= res['peak_bytes'] < ARRAY_BYTES + 32 * 2**20


def test_jobs_run_in_children_with_warmup_in_order():
    jobs = [dict(target='json:dumps', kwargs=dict(obj=[i]), warmup=dict(obj=-1))
            for i in range(3)]
    for isolate in (True, False):
        assert bm.run_jobs_in_children(jobs, isolate=isolate) == ['[0]', '[1]', '[2]']


def test_failing_child_raises_with_its_stderr():
    with pytest.raises(RuntimeError, match='ZeroDivisionError'):
        bm.run_json_child(['-c', '1 / 0'])


def test_child_env_pins_the_mmap_threshold_and_this_coupleface(monkeypatch):
    monkeypatch.delenv('MALLOC_MMAP_THRESHOLD_', raising=False)
    env = bm.child_env(threads=3)
    assert env['MALLOC_MMAP_THRESHOLD_'] == '65536' and env['OMP_NUM_THREADS'] == '3'
    import os.path as osp

    import coupleface
    assert env['PYTHONPATH'].split(osp.pathsep)[0] == osp.dirname(
        osp.dirname(coupleface.__file__))
    assert 'MALLOC_MMAP_THRESHOLD_' not in bm.child_env(mmap_threshold=None)


@linux_only
def test_peak_memory_block_in_process():
    import numpy as np
    with bm.PeakMemory('cpu') as mem:
        arr = np.ones(ARRAY_BYTES, dtype=np.uint8)
    del arr
    assert mem.exact and mem.bytes >= ARRAY_BYTES * 0.9  # heap reuse may hide a little
    assert bm.peak_rss_bytes() >= bm.rss_bytes() > 0
    assert bm.status_kib('NoSuchField') is None


def test_round_robin_times_every_variant_each_round():
    calls = []
    cpu = {}
    times = bm.round_robin({'a': lambda: calls.append('a'), 'b': lambda: calls.append('b')},
                           repeats=3, warmup=2, seed=1, cpu=cpu)
    assert len(calls) == 10 and sorted(times) == ['a', 'b']
    assert all(len(t) == 3 and min(t) >= 0 for t in times.values())
    assert all(len(c) == 3 for c in cpu.values())
    # the same seed gives the same orders
    again = []
    bm.round_robin({'a': lambda: again.append('a'), 'b': lambda: again.append('b')},
                   repeats=3, warmup=2, seed=1)
    assert again == calls


def test_median_spread_and_ratio():
    assert bm.median([3.0, 1.0, 2.0]) == 2.0 and math.isnan(bm.median([]))
    assert bm.spread([1.0, 2.0, 3.0]) == pytest.approx(1.0)
    assert bm.format_ratio(1.15, 1.0) == '1.150'
    assert bm.format_ratio(3.0, 2.0, digits=2) == '1.50'
    assert bm.format_ratio(1.0, 0.0) == 'nan'


def test_tables_and_words(capsys):
    table = bm.md_table(['name', 'x'], [['a', 1], ['b', 2]])
    assert table.splitlines() == ['| name | x |', '|---|---:|', '| a | 1 |', '| b | 2 |']
    assert bm.md_table(['a', 'b'], [], 'rl').splitlines()[1] == '|---:|---|'
    bm.emit('Title', ['note'], table, ['after'])
    out = capsys.readouterr().out
    assert out.startswith('\n### Title\n\nnote\n\n| name | x |') and out.endswith('after\n')
    assert bm.plural(1) == '1 thread' and bm.plural(2, 'run') == '2 runs'
    assert bm.mib(3 * 2**20) == '3.0' and bm.mib(2**30 * 2) == '2,048.0'


def test_machine_info():
    info = bm.machine_info()
    assert info['cpu'] and info['cpu_count'] >= 1 and info['date'].endswith('UTC')
    assert info['cpu_description'].startswith(info['cpu'])
