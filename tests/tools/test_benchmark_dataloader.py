"""tools/analysis_tools/benchmark_dataloader.py: a tiny side-by-side run prints the reader
line and one well-formed table row per worker count, every ratio the rate over the raw
decode's."""
import importlib.util
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_dataloader.py')


def _tool():
    spec = importlib.util.spec_from_file_location('benchmark_dataloader', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_run_prints_rates_and_ratios(capsys):
    _tool().main(['--make-synthetic', '96', '--num-samples', '48', '--batch-size', '16',
                  '--repeats', '1', '--workers', '0', '--no-rss', '--device-decode', 'cpu'])
    out = capsys.readouterr().out
    assert 'reader (seek+read+header parse)' in out and "decode='cpu'" in out
    assert '(g) device decode on cpu' in out
    rows = [line for line in out.splitlines() if line.startswith('| 0 |')]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip('|').split('|')]
    rates = [float(c) for c in cells[1:7]]  # a, b, p, f, g, c
    ratios = [float(c) for c in cells[7:]]
    assert all(r > 0 for r in rates) and len(ratios) == 5
    for rate, ratio in zip(rates[:5], ratios):
        assert abs(rate / rates[5] - ratio) <= 0.006  # printed with two decimals
