"""tools/analysis_tools/benchmark.py: a smoke run of every section (coupleface/benchmarks/)
at tiny sizes; the printed Markdown tables are well formed and the JSON holds the ratios, fits
and capacity. The sections' formulas are tested in tests/benchmarks/."""
import importlib.util
import json
import os.path as osp
import re

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark.py')
TITLES = {
    'step': 'Train step', 'loader': 'Data loader', 'rad': 'RAD + FCD memory and time',
    'mining': 'Relation mining', 'head': 'Classification head', 'students': 'Students'
}


def _tool():
    spec = importlib.util.spec_from_file_location('benchmark', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _tool()

TINY = ['--threads', '1', '--repeats', '1', '--warmup', '1', '--no-isolate',
        '--student', 'mobilefacenet', '--teacher', 'iresnet18', '--batch-size', '8',
        '--img-size', '32', '--num-classes', '40', '--bank-samples', '64', '--partner-samples', '4',
        '--loader-samples', '128', '--loader-workers', '0',
        '--rad-sizes', '32,64', '--rad-local', '32',
        '--mining-sizes', '100,300', '--mining-dtypes', 'float32',
        '--head-classes', '200', '--head-batch', '8',
        '--students', 'mobilefacenet,iresnet18', '--latency-runs', '2']


def markdown_tables(text: str):
    """Every run of consecutive lines starting with '|', as lists of cell lists."""
    tables, current = [], []
    for line in text.splitlines() + ['']:
        if line.startswith('|'):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return [[[c.strip() for c in row.strip().strip('|').split('|')] for row in t]
            for t in tables]


def sections_of(text: str):
    """``{title: text up to the next '### ' heading}``."""
    parts = re.split(r'^### (.+)$', text, flags=re.M)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2])}


def test_every_section_prints_wellformed_tables_and_json(tmp_path, capsys):
    out = str(tmp_path / 'results.json')
    results = bench.main(TINY + ['--out', out])
    text = capsys.readouterr().out
    sections = sections_of(text)
    assert set(TITLES.values()) <= set(sections), sorted(sections)
    for title in TITLES.values():
        tables = markdown_tables(sections[title])
        assert tables, title
        for table in tables:
            header, sep, *rows = table
            assert rows, (title, table)
            assert all(re.fullmatch(r':?-{3,}:?', c) for c in sep), (title, sep)
            assert len(sep) == len(header), (title, header, sep)
            assert all(len(r) == len(header) for r in rows), (title, table)
    assert 'CPU: ' in text and 'Target: bank variant <= 1.15x' in text

    with open(out) as f:
        saved = json.load(f)
    assert set(TITLES) <= set(saved) and saved['machine']['cpu_count'] >= 1

    step = results['step']
    # (a), its control copy (a'), (b), (c), (d), (e) with 4 partner images (--partner-samples)
    assert len(step['variants']) == 6
    partner = step['variants']['(e) CoupleFace, teacher bank, + 4 partner images']
    assert step['partner_ratio'] == partner['ratio']
    assert step['partner_target_met'] == (partner['ratio'] <= 1.15)
    assert 'With 4 partner images per batch of' in text
    assert step['variants']['(a) student alone']['ratio'] == 1.0
    assert step['noise_floor_ratio'] > 0
    assert step['bank_ratio'] == step['variants']['(d) CoupleFace, teacher bank']['ratio']
    assert set(step['components']) == {'bank lookup (memmap -> tensor)', 'FCD + RAD fwd+bwd',
                                       'data preprocessor'}
    step_rows = markdown_tables(sections['Train step'])[0][2:]
    assert [r[0] for r in step_rows] == list(step['variants'])

    rad = results['rad']
    # 32x32, 64x64 and the simulated rank: 32 anchors x 64 partners
    assert [(p['local'], p['global']) for p in rad['points']] == [(32, 32), (64, 64), (32, 64)]
    assert all(p['peak_bytes'] > 0 for p in rad['points'])
    assert {'bytes_per_pair', 'bytes_per_row', 'loglog_slope_fixed_local'} <= set(rad['fit'])

    assert [(r['size'], r['dtype']) for r in results['mining']['runs']] == \
        [(100, 'float32'), (300, 'float32')]

    head = results['head']
    assert [r['head'] for r in head['rows']] == [
        'dense ArcFace', 'PartialFC r=1.0', 'PartialFC r=0.3', 'PartialFC r=0.1']
    computed = {r['head']: r['computed'] for r in head['rows']}
    # the sampling shrinks the logits; every variant keeps all centers with their state
    assert computed['PartialFC r=0.1']['logit_matrix'] < computed['dense ArcFace'][
        'logit_matrix']
    assert len({c['params'] for c in computed.values()}) == 1
    capacity = head['capacity']
    assert capacity['PartialFC r=0.1']['max_identities'] > \
        capacity['PartialFC r=1.0']['max_identities']
    assert capacity['target_met'] == (capacity['PartialFC r=0.1']['max_identities'] >= 10**7)

    students = results['students']['models']
    assert list(students) == ['mobilefacenet', 'iresnet18']
    assert students['iresnet18']['params'] > students['mobilefacenet']['params'] > 0
    assert all(m['flops'] > 0 and m['latency_ms'] > 0 for m in students.values())


def test_arguments():
    args = bench.parse_args(['--quick'])
    assert args.mining_sizes == [1000, 10_000, 50_000] and args.repeats == 3
    args = bench.parse_args(['--big'])
    assert args.mining_sizes[-1] == 100_000 and args.head_classes[-1] == 1_000_000
    with pytest.raises(SystemExit):
        bench.parse_args(['--sections', 'step,nope'])
